"""Supervisors' statistics in the ledger: what the call path counts at the end of a call, how it
is stored, read back with the SC3.2 verdicts on SQLite and PostgreSQL, and searched."""

from __future__ import annotations

import dataclasses
from datetime import date

from ledger_builders import interaction

from bot.dialogue import Reply
from bot.pipeline import ConversationResult, SpokenMessage, Turn
from ledger.stats import (
    FLAG_FRUSTRATION,
    FLAG_HANGUP,
    FLAG_MISUNDERSTOOD,
    FLAG_SILENCE,
    CallStats,
    conversation_stats,
    count_frustration,
    percentile,
    read_call,
    read_calls,
    search_transcripts,
)

MISUNDERSTOOD = "Je ne comprends pas votre demande, je vous passe un conseiller."
WORDS = ("marre", "n'importe quoi", "ras le bol")


def reply(action: str, motif: str | None, text: str = "…") -> Reply:
    return Reply((text,), action, motif, 0.9)


def test_a_conversation_is_counted_turn_by_turn():
    result = ConversationResult(turns=[
        Turn("euh", reply("clarify", None), response_ms=900),
        Turn("J'en ai MARRE de vos machines", reply("clarify", None), response_ms=1100),
        Turn("", None),  # silence: no reply, not a turn
        Turn("le rsa", reply("handoff", "conseiller", MISUNDERSTOOD), response_ms=700),
    ], messages=[SpokenMessage("no_input", "Êtes-vous toujours là ?", None, None, 2000, 2000,
                               False)])
    stats = conversation_stats(result, MISUNDERSTOOD, WORDS)
    assert stats == CallStats(turns=3, misunderstood_turns=3, reply_ms=(900, 1100, 700),
                              no_input_prompts=1, frustration_words=1)
    answered = ConversationResult(turns=[
        Turn("mon allocation", reply("answer", "aide_logement"), response_ms=800),
        Turn("je veux un conseiller", reply("handoff", "conseiller", "Je vous passe un "
                                            "conseiller."), response_ms=600)])
    assert conversation_stats(answered, MISUNDERSTOOD, WORDS).misunderstood_turns == 0


def test_frustration_words_match_whole_words_without_accents_case_or_punctuation():
    texts = ["C'est N’IMPORTE QUOI !", "j'en ai marre.", "une marreur", "Ras-le-bol"]
    assert count_frustration(texts, WORDS) == 3
    assert count_frustration(["tout va bien"], WORDS) == 0


def test_percentiles_are_nearest_rank_values_that_occurred():
    values = [600, 700, 800, 900, 1000, 1200, 5000]
    assert (percentile(values, 50), percentile(values, 95), percentile(values, 100)) == \
        (900, 5000, 5000)
    assert percentile([42], 95) == 42 and percentile([], 50) is None


def test_statistics_are_stored_once_and_read_back_with_verdicts_and_flags(any_ledger):
    ledger = any_ledger
    calls = [
        interaction("s-1", start="2024-03-05 09:00", transcript="Appelant : mon allocation"
                    "\nBot : versée le 5."),
        interaction("s-2", start="2024-03-05 10:00", message_ms=10_000, listened_ms=3_000,
                    transcript="Appelant : la prime d'activité\nBot : elle est…"),
        interaction("s-3", start="2024-03-05 11:00", handoff=True, motif="rsa",
                    caller="+33698765432"),  # another caller: s-1 is not voided by rule 3
        interaction("s-4", start="2024-03-06 09:00"),  # no statistics (an imported row)
    ]
    stats = {"s-1": CallStats(1, 0, (800,), 0, 0),
             "s-2": CallStats(2, 1, (900, 4500), 0, 0),
             "s-3": CallStats(3, 2, (700, 600, 650), 2, 1)}
    for call in calls:
        call = dataclasses.replace(call, stats=stats.get(call.call_id))
        assert ledger.record_interaction(call).value == "stored"
    # A retried write changes nothing.
    assert ledger.record_interaction(dataclasses.replace(
        calls[0], stats=CallStats(9, 9, (1,), 9, 9))).value == "duplicate"
    found = {c.call_id: c for c in read_calls(ledger, date(2024, 3, 5), date(2024, 3, 6))}
    assert list(found) == ["s-1", "s-2", "s-3", "s-4"]
    assert found["s-1"].stats == stats["s-1"] and found["s-4"].stats is None
    assert [found[k].productive for k in found] == [True, False, False, True]
    assert found["s-1"].flags == ()
    assert found["s-2"].flags == (FLAG_SILENCE, FLAG_HANGUP)
    assert found["s-3"].flags == (FLAG_SILENCE, FLAG_MISUNDERSTOOD, FLAG_FRUSTRATION)
    assert found["s-1"].has_transcript and not found["s-4"].has_transcript
    assert [c.call_id for c in read_calls(ledger, date(2024, 3, 5), date(2024, 3, 6),
                                          motif="rsa")] == ["s-3"]
    assert read_call(ledger, "s-2") == found["s-2"] and read_call(ledger, "nope") is None

    result = search_transcripts(ledger, date(2024, 3, 1), date(2024, 3, 31), "ACTIVITE",
                                "sophie")
    assert [(h.call_id, h.lines) for h in result.hits] == \
        [("s-2", ("Appelant : la prime d'activité",))]
    assert result.scanned == 2 and not result.truncated
    limited = search_transcripts(ledger, date(2024, 3, 1), date(2024, 3, 31), "", "sophie",
                                 limit=1)
    assert [h.call_id for h in limited.hits] == ["s-2"] and limited.truncated  # newest first
