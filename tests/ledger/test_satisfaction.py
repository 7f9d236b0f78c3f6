"""The satisfaction key is stored with its call (migration 0004), on SQLite and PostgreSQL:
what the supervisors' dashboard reads."""

from __future__ import annotations

import pytest
from ledger_builders import interaction, paris

from ledger.rule import to_epoch_ms
from ledger.satisfaction import summarise


def test_scores_are_stored_with_their_call_and_summarised(any_ledger):
    for number, (start, score) in enumerate([("2024-03-01 10:00", 5), ("2024-03-01 11:00", 2),
                                             ("2024-03-01 12:00", None),
                                             ("2024-03-02 10:00", 1)]):
        call = interaction(f"call-{number}", start=start)
        any_ledger.record_interaction(call)
        assert any_ledger.record_satisfaction(call.call_id, call.started_at, score)
    assert any_ledger.satisfaction("call-0") == (True, 5)
    assert any_ledger.satisfaction("call-2") == (True, None)  # asked, no key pressed
    assert any_ledger.satisfaction("never-asked") == (False, None)
    day = summarise(any_ledger, to_epoch_ms(paris("2024-03-01 00:00")),
                    to_epoch_ms(paris("2024-03-02 00:00")))
    assert (day.asked, day.scores, day.answered, day.mean) == (3, (5, 2), 2, 3.5)


def test_a_retried_write_changes_nothing_and_a_bad_score_is_refused(sqlite_ledger):
    call = interaction("call-1")
    sqlite_ledger.record_interaction(call)
    assert sqlite_ledger.record_satisfaction("call-1", call.started_at, 4)
    assert sqlite_ledger.record_satisfaction("call-1", call.started_at, 1)
    assert sqlite_ledger.satisfaction("call-1") == (True, 4)
    with pytest.raises(ValueError):
        sqlite_ledger.record_satisfaction("call-1", call.started_at, 6)
