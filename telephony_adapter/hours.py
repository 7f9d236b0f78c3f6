"""When the line is open: 9:00–16:30 on weekdays, except French public holidays and closures.

The rules take "now" as an argument and read nothing, so they can be tested on a DST night
or a lundi de Pentecôte; the edges (the closures file, the clock) are the two functions at
the bottom. A time exactly at closing is closed: a call at 16:30:00 hears the hours message.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

from bot.errors import VoicebotError
from telephony_adapter.options import TelephonyOptions

_MAX_DAYS_AHEAD = 400  # next_opening gives up after this: a year of closures is a config error


@dataclass(frozen=True)
class OpeningHours:
    opening: time = time(9, 0)
    """Local opening time (inclusive)."""
    closing: time = time(16, 30)
    """Local closing time (exclusive)."""
    weekdays: frozenset[int] = frozenset({0, 1, 2, 3, 4})
    """Open days, Monday = 0."""
    zone: ZoneInfo = ZoneInfo("Europe/Paris")

    @classmethod
    def from_options(cls, options: TelephonyOptions) -> OpeningHours:
        return cls(
            opening=_parse_hhmm(options.opening_time, "opening_time"),
            closing=_parse_hhmm(options.closing_time, "closing_time"),
            weekdays=frozenset(options.open_weekdays),
            zone=ZoneInfo(options.timezone),
        )


DEFAULT_HOURS = OpeningHours()
"""The 3230's usual hours, used when a caller passes none (frozen, so safe to share)."""


def is_open(now: datetime, closures: set[date], hours: OpeningHours = DEFAULT_HOURS) -> bool:
    """Whether a call arriving at ``now`` (an aware datetime) reaches the bot."""
    local = _local(now, hours)
    in_hours = hours.opening <= local.time() < hours.closing
    return in_hours and _open_day(local.date(), closures, hours)


def next_opening(
    now: datetime, closures: set[date], hours: OpeningHours = DEFAULT_HOURS
) -> datetime:
    """The next moment the line opens, as an aware local datetime (``now`` itself if open)."""
    local = _local(now, hours)
    if is_open(local, closures, hours):
        return local
    day = local.date()
    if local.time() >= hours.opening:
        day += timedelta(days=1)
    for _ in range(_MAX_DAYS_AHEAD):
        if _open_day(day, closures, hours):
            return datetime.combine(day, hours.opening, tzinfo=hours.zone)
        day += timedelta(days=1)
    raise ValueError(f"no opening day within {_MAX_DAYS_AHEAD} days of {local.date()}")


def french_public_holidays(year: int) -> set[date]:
    """The eleven public holidays of metropolitan France (Alsace-Moselle adds two: list them
    as closures)."""
    easter = easter_sunday(year)
    fixed = {(1, 1), (5, 1), (5, 8), (7, 14), (8, 15), (11, 1), (11, 11), (12, 25)}
    days = {date(year, month, day) for month, day in fixed}
    days |= {easter + timedelta(days=n) for n in (1, 39, 50)}  # Pâques, Ascension, Pentecôte
    return days


def easter_sunday(year: int) -> date:
    """Gregorian Easter (the anonymous "Meeus/Jones/Butcher" computus)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = b // 4, b % 4
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = c // 4, c % 4
    leap = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * leap) // 451
    month, day = divmod(h + leap - 7 * m + 114, 31)
    return date(year, month, day + 1)


def _open_day(day: date, closures: set[date], hours: OpeningHours) -> bool:
    return (
        day.weekday() in hours.weekdays
        and day not in closures
        and day not in french_public_holidays(day.year)
    )


def _local(now: datetime, hours: OpeningHours) -> datetime:
    if now.tzinfo is None:
        raise ValueError("opening hours need an aware datetime, got a naive one")
    return now.astimezone(hours.zone)


def _parse_hhmm(text: str, name: str) -> time:
    try:
        hour, minute = (int(part) for part in text.split(":"))
        return time(hour, minute)
    except ValueError:
        raise HoursError(
            f"TelephonyOptions.{name} : heure invalide « {text} » ; attendu HH:MM (ex. 09:00)."
        ) from None


# --- Edges: the operator's closures file, the clock ---------------------------------------


class HoursError(VoicebotError):
    """The closures file or an hours setting is malformed; the message names the line."""


def load_closures(path: Path | None) -> set[date]:
    """Read the operator's closure days: one ISO date per line, ``#`` comments, blank lines.

    Every malformed line is reported at once, so one edit fixes the whole file.
    """
    if path is None:
        return set()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise HoursError(f"{path} : fichier des jours de fermeture introuvable.") from None
    days: set[date] = set()
    errors: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        value = line.split("#", 1)[0].strip()
        if not value:
            continue
        try:
            days.add(date.fromisoformat(value))
        except ValueError:
            errors.append(
                f"{path}:{number} : date invalide « {value} » ; "
                "attendu une date AAAA-MM-JJ par ligne (ex. 2025-12-26)."
            )
    if errors:
        raise HoursError("\n".join(errors))
    return days


def current_time(options: TelephonyOptions) -> datetime:
    """Now, as an aware UTC datetime: the real clock, or ``options.now`` when frozen."""
    if not options.now:
        return datetime.now(timezone.utc)
    try:
        frozen = datetime.fromisoformat(options.now)
    except ValueError:
        frozen = None
    if frozen is None or frozen.tzinfo is None:
        raise HoursError(
            f"TelephonyOptions.now : « {options.now} » n'est pas une date-heure ISO avec "
            "décalage horaire (ex. 2025-03-03T10:00:00+01:00)."
        )
    return frozen.astimezone(timezone.utc)
