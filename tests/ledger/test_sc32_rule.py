"""The SC3.2 rule at its edges, as pure function calls (no database, no clock)."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
from ledger_builders import PARIS, contact, iso_ms, ms

from ledger.rule import (
    Calendar,
    Reason,
    classify,
    day_to_date,
    listened_enough,
    to_epoch_ms,
)

CAL = Calendar("Europe/Paris")


def judge(*contacts, strict: bool = False):
    return classify(list(contacts), CAL, any_later_call=strict)


def reasons(*contacts, strict: bool = False):
    return [v.reason.value if v else None for v in judge(*contacts, strict=strict)]


# --- rule 1: strictly more than 75 % -------------------------------------------------------------
def test_exactly_75_percent_is_not_productive():
    assert reasons(contact("2024-03-01 10:00", message_ms=20_000, listened_ms=15_000)) == \
        ["listened_75"]


def test_one_millisecond_over_75_percent_is_productive():
    assert reasons(contact("2024-03-01 10:00", message_ms=20_000, listened_ms=15_001)) == \
        ["productive"]


@pytest.mark.parametrize(("message_ms", "listened_ms", "expected"), [
    (4, 3, False),  # 75 % exactly, small integers
    (3, 2, False),  # 66.7 %
    (3, 3, True),
    (7, 6, True),  # 85.7 %
    (1, 1, True),  # a 1 ms message heard in full
    (1, 0, False),
    (0, 0, False),  # no message at all (hang-up before the answer)
    (400_000, 300_000, False),
    (400_000, 300_001, True),
])
def test_listened_enough_is_integer_and_strict(message_ms, listened_ms, expected):
    assert listened_enough(message_ms, listened_ms) is expected


def test_empty_message_is_not_productive_even_if_listened_is_positive():
    assert reasons(contact("2024-03-01 10:00", message_ms=0, listened_ms=5)) == ["listened_75"]


# --- rule 2: hand-off ----------------------------------------------------------------------------
def test_handoff_is_not_productive():
    assert reasons(contact("2024-03-01 10:00", handoff=True)) == ["handoff"]


def test_not_listened_is_reported_before_handoff():
    assert reasons(contact("2024-03-01 10:00", listened_ms=0, handoff=True)) == ["listened_75"]


# --- rule 3: later advisor contact on the same Paris day -----------------------------------------
def test_later_advisor_contact_voids_earlier_interaction():
    assert reasons(contact("2024-03-01 10:00"),
                   contact("2024-03-01 17:00", channel="advisor")) == ["later_advisor", None]


def test_earlier_advisor_contact_does_not_void():
    assert reasons(contact("2024-03-01 09:00", channel="advisor"),
                   contact("2024-03-01 10:00")) == [None, "productive"]


def test_later_bot_handoff_voids_earlier_interaction():
    assert reasons(contact("2024-03-01 10:00"), contact("2024-03-01 11:00", handoff=True)) == \
        ["later_advisor", "handoff"]


def test_later_bot_call_without_handoff_does_not_void():
    assert reasons(contact("2024-03-01 10:00"), contact("2024-03-01 11:00")) == \
        ["productive", "productive"]


def test_strict_switch_voids_on_any_later_same_day_call():
    assert reasons(contact("2024-03-01 10:00"), contact("2024-03-01 11:00"), strict=True) == \
        ["later_call", "productive"]


def test_strict_switch_still_ignores_earlier_calls_and_other_days():
    assert reasons(contact("2024-03-01 09:00", channel="advisor"),
                   contact("2024-03-01 10:00"),
                   contact("2024-03-02 08:00", channel="advisor"), strict=True) == \
        [None, "productive", None]


def test_strict_switch_voids_on_later_non_listened_call():
    assert reasons(contact("2024-03-01 10:00"),
                   contact("2024-03-01 11:00", message_ms=0, listened_ms=0), strict=True) == \
        ["later_call", "listened_75"]


def test_contact_in_the_same_millisecond_is_not_later():
    assert reasons(contact("2024-03-01 10:00"),
                   contact("2024-03-01 10:00", channel="advisor")) == ["productive", None]


def test_contact_one_millisecond_later_is_later():
    assert reasons(contact("2024-03-01T10:00:00.000+01:00"),
                   contact("2024-03-01T10:00:00.001+01:00", channel="advisor")) == \
        ["later_advisor", None]


def test_withheld_numbers_are_never_linked():
    assert reasons(contact("2024-03-01 10:00", caller=None),
                   contact("2024-03-01 11:00", caller=None, channel="advisor"),
                   contact("2024-03-01 12:00", caller=None, handoff=True)) == \
        ["productive", None, "handoff"]


def test_withheld_numbers_are_never_linked_in_strict_mode():
    assert reasons(contact("2024-03-01 10:00", caller=None),
                   contact("2024-03-01 11:00", caller=None), strict=True) == \
        ["productive", "productive"]


def test_other_callers_do_not_void():
    assert reasons(contact("2024-03-01 10:00", caller="A"),
                   contact("2024-03-01 11:00", caller="B", channel="advisor")) == \
        ["productive", None]


def test_order_of_input_does_not_matter():
    later = contact("2024-03-01 17:00", channel="advisor")
    earlier = contact("2024-03-01 10:00")
    assert reasons(later, earlier) == [None, "later_advisor"]


# --- Paris days: midnight and DST ----------------------------------------------------------------
def test_advisor_after_paris_midnight_but_same_utc_day_does_not_void():
    # 23:45 and 00:15 Paris are 22:45Z and 23:15Z on the same UTC day.
    assert reasons(contact("2024-03-02T23:45:00+01:00"),
                   contact("2024-03-03T00:15:00+01:00", channel="advisor")) == \
        ["productive", None]


def test_advisor_same_paris_day_but_previous_utc_day_voids():
    # 00:30 Paris is 23:30Z the day before; 09:00 Paris is the same Paris day.
    assert reasons(contact("2024-03-01T23:30:00Z"),
                   contact("2024-03-02T09:00:00+01:00", channel="advisor")) == \
        ["later_advisor", None]


def test_day_is_the_paris_day_of_started_at():
    verdicts = judge(contact("2024-03-31T22:30:00Z", "2024-03-31T22:31:00Z"),  # 00:30 CEST
                     contact("2024-01-01T23:30:00Z", "2024-01-01T23:31:00Z"),  # 00:30 CET
                     contact("2024-06-30T21:59:59.999Z", "2024-06-30T22:00:30Z"))  # 23:59:59.999
    assert [day_to_date(v.day) for v in verdicts] == \
        [date(2024, 4, 1), date(2024, 1, 2), date(2024, 6, 30)]


def test_spring_forward_night_duration_is_real_time():
    # 01:59:30 CET to 03:00:30 CEST: the clock jumps an hour, one minute passed.
    [verdict] = judge(contact("2024-03-31T01:59:30+01:00", "2024-03-31T03:00:30+02:00"))
    assert verdict.productive_ms == 60_000
    assert day_to_date(verdict.day) == date(2024, 3, 31)


def test_fall_back_night_duration_is_real_time():
    # 02:30 CEST to 02:10 CET: the clock goes back, 40 minutes passed.
    [verdict] = judge(contact("2024-10-27T02:30:00+02:00", "2024-10-27T02:10:00+01:00"))
    assert verdict.productive_ms == 40 * 60_000
    assert day_to_date(verdict.day) == date(2024, 10, 27)


def test_fall_back_day_has_25_hours_and_one_rule3_day():
    first = contact("2024-10-27T00:00:00+02:00")
    last_advisor = contact("2024-10-27T23:59:59+01:00", channel="advisor")
    assert reasons(first, last_advisor) == ["later_advisor", None]
    start, end = CAL.day_bounds_ms(date(2024, 10, 27))
    assert end - start == 25 * 3_600_000


def test_spring_forward_day_has_23_hours():
    start, end = CAL.day_bounds_ms(date(2024, 3, 31))
    assert end - start == 23 * 3_600_000
    assert start == iso_ms("2024-03-30T23:00:00+00:00")


def test_repeated_hour_of_fall_back_belongs_to_the_same_day():
    # 02:30 happens twice on 2024-10-27; both are that Paris day.
    first = iso_ms("2024-10-27T02:30:00+02:00")
    second = iso_ms("2024-10-27T02:30:00+01:00")
    assert second - first == 3_600_000
    assert CAL.date_of(first) == CAL.date_of(second) == date(2024, 10, 27)


def test_calendar_matches_zoneinfo_every_7_minutes_of_2024():
    moment = datetime(2023, 12, 31, tzinfo=timezone.utc)
    end = datetime(2025, 1, 2, tzinfo=timezone.utc)
    step = timedelta(minutes=7, milliseconds=1)
    checked = 0
    while moment < end:
        assert CAL.date_of(to_epoch_ms(moment)) == moment.astimezone(PARIS).date(), moment
        moment += step
        checked += 1
    assert checked > 75_000


def test_calendar_transition_instants_exactly():
    # 2024-03-31T01:00:00Z: 01:59:59.999 CET becomes 03:00:00.000 CEST, same day.
    assert CAL.date_of(iso_ms("2024-03-31T00:59:59.999Z")) == date(2024, 3, 31)
    assert CAL.date_of(iso_ms("2024-03-30T22:59:59.999Z")) == date(2024, 3, 30)
    assert CAL.date_of(iso_ms("2024-03-30T23:00:00.000Z")) == date(2024, 3, 31)
    assert CAL.date_of(iso_ms("2024-10-26T21:59:59.999Z")) == date(2024, 10, 26)
    assert CAL.date_of(iso_ms("2024-10-26T22:00:00.000Z")) == date(2024, 10, 27)
    assert CAL.date_of(iso_ms("2024-10-27T22:59:59.999Z")) == date(2024, 10, 27)
    assert CAL.date_of(iso_ms("2024-10-27T23:00:00.000Z")) == date(2024, 10, 28)


def test_calendar_handles_a_zone_with_half_hour_offsets():
    calendar = Calendar("Asia/Kolkata")  # +05:30: days start at 18:30Z
    assert calendar.date_of(iso_ms("2024-03-01T18:29:59.999Z")) == date(2024, 3, 1)
    assert calendar.date_of(iso_ms("2024-03-01T18:30:00.000Z")) == date(2024, 3, 2)


# --- verdicts ------------------------------------------------------------------------------------
def test_advisor_contacts_are_never_counted():
    assert judge(contact("2024-03-01 10:00", channel="advisor")) == [None]


def test_productive_duration_is_ended_minus_started_to_the_millisecond():
    [verdict] = judge(contact("2024-03-01T10:00:00.000+01:00", "2024-03-01T10:02:30.251+01:00"))
    assert verdict.productive and verdict.productive_ms == 150_251
    assert verdict.reason is Reason.PRODUCTIVE


def test_non_productive_duration_is_zero():
    [verdict] = judge(contact("2024-03-01 10:00", handoff=True))
    assert not verdict.productive and verdict.productive_ms == 0


def test_naive_datetime_is_refused():
    with pytest.raises(ValueError, match="naive"):
        to_epoch_ms(datetime(2024, 3, 1, 10, 0))


def test_ms_helper_uses_paris_wall_clock():
    assert ms("2024-07-01 00:30") == iso_ms("2024-06-30T22:30:00Z")
