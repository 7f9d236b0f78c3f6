"""The SC3.2 rule: which bot interactions are productive, and for how long.

Pure code: contacts and times come in as integers (epoch milliseconds, UTC), verdicts come
out; nothing here reads a clock, a file or a database, so every edge (exactly 75 %, a DST
night, midnight in Paris versus UTC) is a plain function call in the tests. The whole
rule is in ``classify``; docs/ledger.md states it in words for the auditor.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta, timezone
from enum import Enum
from typing import NamedTuple
from zoneinfo import ZoneInfo

MS_PER_HOUR = 3_600_000
MS_PER_DAY = 86_400_000
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_UNKNOWN = 1  # never a real offset: those are whole seconds, not 1 ms


class Channel(str, Enum):
    BOT = "bot"
    """An interaction of the bot: counted, and may be productive."""
    ADVISOR = "advisor"
    """A contact with a human advisor recorded by the platform: only used by rule 3."""


class Reason(str, Enum):
    """Why an interaction is or is not productive: the first rule that failed."""

    PRODUCTIVE = "productive"
    NOT_LISTENED = "listened_75"
    """Rule 1: the caller heard 75 % of the message or less (or there was no message)."""
    HANDOFF = "handoff"
    """Rule 2: the interaction ended in a hand-off to an advisor."""
    LATER_ADVISOR = "later_advisor"
    """Rule 3: a later contact of the same caller that day reached an advisor."""
    LATER_CALL = "later_call"
    """Rule 3, strict reading: the same caller called again later that day."""


class Contact(NamedTuple):
    """One row of the ledger as the rule sees it (a NamedTuple: months hold 500 k of them)."""

    channel: str
    """``bot`` or ``advisor`` (:class:`Channel` values)."""
    caller_key: str | None
    """Pseudonym of the caller; None when the number was withheld (never linked)."""
    started_at_ms: int
    """Epoch milliseconds, UTC."""
    ended_at_ms: int
    message_ms: int
    """Duration of the bot's message (0 for advisor contacts)."""
    listened_ms: int
    """How much of it went out on the line before the caller hung up or barged in."""
    handoff: bool
    motif: str = ""
    """Carried for the reports (by-motif counts); the rule ignores it."""
    call_id: str = ""
    """Carried for the auditor's detail; the rule ignores it."""


class Verdict(NamedTuple):
    productive: bool
    reason: Reason
    day: int
    """Calendar day of ``started_at`` in the report's time zone, as days since 1970-01-01."""
    productive_ms: int
    """``ended_at − started_at`` when productive, else 0."""


def listened_enough(message_ms: int, listened_ms: int) -> bool:
    """Rule 1, strictly more than 75 %, in integers: exactly 75 % and empty messages fail."""
    return message_ms > 0 and 4 * listened_ms > 3 * message_ms


class Calendar:
    """Calendar days of a time zone for epoch milliseconds, fast enough for a month of rows.

    The UTC offset is looked up once per UTC hour and reused when it is the same at both
    ends of that hour (every real transition falls on an hour boundary in UTC for Paris;
    an hour that holds a transition is computed exactly, row by row).
    """

    def __init__(self, tz: ZoneInfo | str = "Europe/Paris"):
        self.tz = ZoneInfo(tz) if isinstance(tz, str) else tz
        self._offsets: dict[int, int | None] = {}

    def day_of(self, epoch_ms: int) -> int:
        """Days since 1970-01-01 of the local calendar date at this instant."""
        hour = epoch_ms // MS_PER_HOUR
        offset = self._offsets.get(hour, _UNKNOWN)
        if offset == _UNKNOWN:
            start = self._offset_ms(hour * MS_PER_HOUR)
            end = self._offset_ms(hour * MS_PER_HOUR + MS_PER_HOUR - 1)
            offset = start if start == end else None
            self._offsets[hour] = offset
        if offset is None:
            offset = self._offset_ms(epoch_ms)
        return (epoch_ms + offset) // MS_PER_DAY

    def date_of(self, epoch_ms: int) -> date:
        return day_to_date(self.day_of(epoch_ms))

    def day_bounds_ms(self, day: date) -> tuple[int, int]:
        """First and one-past-last epoch millisecond of a local day (23 h or 25 h on DST days)."""
        start = datetime.combine(day, datetime.min.time(), self.tz)
        end = datetime.combine(day + timedelta(days=1), datetime.min.time(), self.tz)
        return to_epoch_ms(start), to_epoch_ms(end)

    def _offset_ms(self, epoch_ms: int) -> int:
        moment = _EPOCH + timedelta(milliseconds=epoch_ms)
        offset = moment.astimezone(self.tz).utcoffset()
        assert offset is not None
        return offset // timedelta(milliseconds=1)


def day_to_date(day: int) -> date:
    return date.fromordinal(_EPOCH_ORDINAL + day)


def date_to_day(value: date) -> int:
    return value.toordinal() - _EPOCH_ORDINAL


def to_epoch_ms(moment: datetime) -> int:
    """Aware datetime to integer epoch milliseconds (sub-millisecond parts are truncated)."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("naive datetime: ledger times must carry their UTC offset")
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def from_epoch_ms(epoch_ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=epoch_ms)


def classify(
    contacts: Sequence[Contact],
    calendar: Calendar,
    *,
    any_later_call: bool = False,
) -> list[Verdict | None]:
    """Judge every bot interaction; advisor contacts get None (they are never counted).

    Rule 3 needs the caller's other contacts of the same day, so pass whole days: all
    contacts whose ``started_at`` falls on the days being judged, in any order. "Later"
    means a strictly later ``started_at``; a contact starting in the same millisecond is
    not later. ``any_later_call`` is the strict reading: any later same-day contact voids,
    not only one that reached an advisor.
    """
    day_of = calendar.day_of
    days = [day_of(c.started_at_ms) for c in contacts]
    latest = _latest_voiding_start(contacts, days, any_later_call)
    later_reason = Reason.LATER_CALL if any_later_call else Reason.LATER_ADVISOR
    bot, productive = Channel.BOT.value, Reason.PRODUCTIVE
    refusals: dict[tuple[Reason, int], Verdict] = {}  # one shared object per (reason, day)
    verdicts: list[Verdict | None] = []
    append = verdicts.append
    for contact, day in zip(contacts, days, strict=True):
        channel, key, started, ended, message, listened, handoff = contact[:7]
        if channel != bot:
            append(None)
            continue
        if not listened_enough(message, listened):  # rule 1
            reason = Reason.NOT_LISTENED
        elif handoff:  # rule 2
            reason = Reason.HANDOFF
        elif key is not None and latest.get((key, day), -1) > started:  # rule 3
            reason = later_reason
        else:
            append(Verdict(True, productive, day, ended - started))
            continue
        verdict = refusals.get((reason, day))
        if verdict is None:
            verdict = refusals[(reason, day)] = Verdict(False, reason, day, 0)
        append(verdict)
    return verdicts


def _latest_voiding_start(
    contacts: Iterable[Contact], days: Iterable[int], any_later_call: bool
) -> dict[tuple[str, int], int]:
    """Per (caller, day): the latest start of a contact that would void an earlier one."""
    latest: dict[tuple[str, int], int] = {}
    advisor = Channel.ADVISOR.value
    for contact, day in zip(contacts, days, strict=True):
        channel, key, started, _ended, _message, _listened, handoff = contact[:7]
        if key is None:
            continue  # withheld: never linked
        if not (any_later_call or channel == advisor or handoff):
            continue
        if started > latest.get((key, day), -1):
            latest[(key, day)] = started
    return latest
