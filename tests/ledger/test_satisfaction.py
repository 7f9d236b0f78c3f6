"""The satisfaction key is stored with its call (migration 0004), on SQLite and PostgreSQL:
what the supervisors' dashboard reads."""

from __future__ import annotations

from ledger_builders import interaction, paris

from ledger.records import CallStats
from ledger.rule import to_epoch_ms
from ledger.satisfaction import summarise
from ledger.stats import read_calls


def test_scores_are_stored_with_their_call_and_summarised(any_ledger):
    for number, (start, score) in enumerate([("2024-03-01 10:00", 5), ("2024-03-01 11:00", 2),
                                             ("2024-03-01 12:00", None),
                                             ("2024-03-02 10:00", 1)]):
        call = interaction(f"call-{number}", start=start, satisfaction_asked=True,
                           satisfaction=score)
        assert any_ledger.record_interaction(call).value == "stored"
    assert any_ledger.satisfaction("call-0") == (True, 5)
    assert any_ledger.satisfaction("call-2") == (True, None)  # asked, no key pressed
    assert any_ledger.satisfaction("never-asked") == (False, None)
    day = summarise(any_ledger, to_epoch_ms(paris("2024-03-01 00:00")),
                    to_epoch_ms(paris("2024-03-02 00:00")))
    assert (day.asked, day.scores, day.answered, day.mean) == (3, (5, 2), 2, 3.5)


def test_a_retried_write_changes_nothing(sqlite_ledger):
    call = interaction("call-1", satisfaction_asked=True, satisfaction=4)
    assert sqlite_ledger.record_interaction(call).value == "stored"
    retried = interaction("call-1", satisfaction_asked=True, satisfaction=1)
    assert sqlite_ledger.record_interaction(retried).value == "duplicate"
    assert sqlite_ledger.satisfaction("call-1") == (True, 4)


def test_a_call_hands_in_its_statistics_and_satisfaction_with_its_row(any_ledger):
    stats = CallStats(turns=2, misunderstood_turns=1, reply_ms=(900, 4500), no_input_prompts=1,
                      frustration_words=0)
    any_ledger.record_interaction(interaction("asked", stats=stats, satisfaction_asked=True,
                                              satisfaction=3))
    any_ledger.record_interaction(interaction("silent", start="2024-03-01 11:00",
                                              satisfaction_asked=True))
    any_ledger.record_interaction(interaction("older", start="2024-03-01 12:00"))
    any_ledger.record_interaction(interaction("bad-key", start="2024-03-01 13:00",
                                              satisfaction_asked=True, satisfaction=9))
    facts = {c.call_id: c for c in read_calls(any_ledger, paris("2024-03-01 00:00").date(),
                                                paris("2024-03-01 00:00").date())}
    assert set(facts) == {"asked", "silent", "older", "bad-key"}  # billing never lost
    assert (facts["asked"].stats, facts["asked"].satisfaction) == (stats, 3)
    assert any_ledger.satisfaction("silent") == (True, None)
    assert any_ledger.satisfaction("older") == (False, None) and facts["older"].stats is None
    assert any_ledger.satisfaction("bad-key") == (True, None)  # a key outside 1-5 is no answer
