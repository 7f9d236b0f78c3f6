"""Opening hours on their edges: closing minute, public holidays, closures, DST changes."""

from __future__ import annotations

from datetime import date, datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from telephony_adapter.hours import (
    HoursError,
    OpeningHours,
    current_time,
    easter_sunday,
    french_public_holidays,
    is_open,
    load_closures,
    next_opening,
)
from telephony_adapter.options import TelephonyOptions

PARIS = ZoneInfo("Europe/Paris")
DATA = Path(__file__).resolve().parents[1] / "data" / "telephony"


def paris(*args: int) -> datetime:
    return datetime(*args, tzinfo=PARIS)


def test_open_at_16_29_and_closed_at_16_30():
    assert is_open(paris(2025, 3, 5, 16, 29, 59), set())
    assert not is_open(paris(2025, 3, 5, 16, 30), set())


def test_open_from_9_00_sharp():
    assert not is_open(paris(2025, 3, 5, 8, 59, 59), set())
    assert is_open(paris(2025, 3, 5, 9, 0), set())


def test_weekend_is_closed():
    assert not is_open(paris(2025, 3, 8, 10, 0), set())  # Saturday
    assert not is_open(paris(2025, 3, 9, 10, 0), set())  # Sunday


def test_easter_dates_match_the_calendar():
    assert easter_sunday(2024) == date(2024, 3, 31)
    assert easter_sunday(2025) == date(2025, 4, 20)
    assert easter_sunday(2026) == date(2026, 4, 5)
    assert easter_sunday(2038) == date(2038, 4, 25)  # latest possible date


def test_movable_holidays_2025_are_closed():
    holidays = french_public_holidays(2025)
    assert {date(2025, 4, 21), date(2025, 5, 29), date(2025, 6, 9)} <= holidays
    assert len(holidays) == 11
    for day in (date(2025, 4, 21), date(2025, 5, 29), date(2025, 6, 9)):  # Mon, Thu, Mon
        assert not is_open(paris(day.year, day.month, day.day, 10, 0), set())


def test_fixed_holiday_on_a_weekday_is_closed():
    assert not is_open(paris(2025, 7, 14, 10, 0), set())  # Monday 14 July
    assert not is_open(paris(2025, 12, 25, 10, 0), set())  # Thursday


def test_operator_closure_day_is_closed():
    assert not is_open(paris(2025, 12, 26, 10, 0), {date(2025, 12, 26)})
    assert is_open(paris(2025, 12, 26, 10, 0), set())


def test_utc_instant_is_judged_in_paris_time_across_dst():
    # 07:30 UTC is 08:30 in winter (CET) but 09:30 in summer (CEST, from 30 March 2025).
    assert not is_open(datetime(2025, 3, 28, 7, 30, tzinfo=timezone.utc), set())
    assert is_open(datetime(2025, 3, 31, 7, 30, tzinfo=timezone.utc), set())
    # Autumn: 15:45 UTC is 17:45 CEST on Friday 24 Oct, 16:45 CET on Monday 27 Oct: both closed,
    # but 15:15 UTC is 16:15 CET on the 27th: open.
    assert not is_open(datetime(2025, 10, 24, 15, 45, tzinfo=timezone.utc), set())
    assert is_open(datetime(2025, 10, 27, 15, 15, tzinfo=timezone.utc), set())


def test_naive_datetime_is_refused():
    with pytest.raises(ValueError):
        is_open(datetime(2025, 3, 5, 10, 0), set())


def test_next_opening_after_friday_closing_is_monday_9():
    assert next_opening(paris(2025, 3, 7, 16, 30), set()) == paris(2025, 3, 10, 9, 0)


def test_next_opening_before_9_is_the_same_day():
    assert next_opening(paris(2025, 3, 5, 7, 0), set()) == paris(2025, 3, 5, 9, 0)


def test_next_opening_skips_easter_monday_and_closures():
    # Friday 18 April 2025 evening: Monday 21 is lundi de Pâques, Tuesday 22 closed by the operator.
    assert next_opening(paris(2025, 4, 18, 17, 0), {date(2025, 4, 22)}) == paris(2025, 4, 23, 9, 0)


def test_next_opening_across_dst_is_9_local():
    opening = next_opening(paris(2025, 3, 28, 17, 0), set())
    assert opening == paris(2025, 3, 31, 9, 0)
    assert opening.utcoffset().total_seconds() == 7200  # summer time by then


def test_next_opening_when_open_is_now():
    now = paris(2025, 3, 5, 11, 0)
    assert next_opening(now, set()) == now


def test_hours_come_from_options():
    hours = OpeningHours.from_options(
        TelephonyOptions(opening_time="08:30", closing_time="12:00", open_weekdays=(5,))
    )
    assert is_open(paris(2025, 3, 8, 8, 30), set(), hours)  # a Saturday morning line
    assert not is_open(paris(2025, 3, 8, 12, 0), set(), hours)
    assert not is_open(paris(2025, 3, 5, 10, 0), set(), hours)


def test_malformed_hours_setting_is_reported_in_french():
    with pytest.raises(HoursError, match=r"heure invalide « 9h » ; attendu HH:MM"):
        OpeningHours.from_options(TelephonyOptions(opening_time="9h"))


def test_closures_file_with_comments_is_read():
    assert load_closures(DATA / "closures.txt") == {date(2025, 12, 26), date(2026, 5, 15)}


def test_closures_file_errors_name_every_bad_line(tmp_path):
    path = tmp_path / "fermetures.txt"
    path.write_text("2025-12-26\n26/12/2025  # pont\n\n2026-02-30\n", encoding="utf-8")
    with pytest.raises(HoursError) as caught:
        load_closures(path)
    assert str(caught.value).splitlines() == [
        f"{path}:2 : date invalide « 26/12/2025 » ; attendu une date AAAA-MM-JJ par ligne "
        "(ex. 2025-12-26).",
        f"{path}:4 : date invalide « 2026-02-30 » ; attendu une date AAAA-MM-JJ par ligne "
        "(ex. 2025-12-26).",
    ]


def test_missing_closures_file_is_reported(tmp_path):
    with pytest.raises(HoursError, match="fichier des jours de fermeture introuvable"):
        load_closures(tmp_path / "absent.txt")


def test_frozen_clock_comes_from_options():
    now = current_time(TelephonyOptions(now="2025-03-03T18:00:00+01:00"))
    assert now == datetime(2025, 3, 3, 17, 0, tzinfo=timezone.utc)
    assert not is_open(now, set())


def test_frozen_clock_without_offset_is_refused():
    with pytest.raises(HoursError, match="n'est pas une date-heure ISO avec décalage"):
        current_time(TelephonyOptions(now="2025-03-03T18:00:00"))


def test_real_clock_is_aware_utc():
    assert current_time(TelephonyOptions()).tzinfo is timezone.utc
