"""Retention: transcripts and recordings go after two months; billing rows stay."""

from __future__ import annotations

from datetime import date

import pytest
from ledger_builders import interaction

from ledger.months import Month
from ledger.reports import judge_month, render_sc32
from ledger.retention import purge, retention_cutoff


@pytest.mark.parametrize(("today", "cutoff"), [
    (date(2024, 5, 15), date(2024, 3, 15)),
    (date(2024, 4, 30), date(2024, 2, 29)),  # clamped to the end of a shorter month
    (date(2024, 1, 31), date(2023, 11, 30)),
    (date(2024, 3, 1), date(2024, 1, 1)),
])
def test_retention_cutoff_is_two_calendar_months(today, cutoff):
    assert retention_cutoff(today, 2) == cutoff


@pytest.fixture
def recorded(any_ledger, state_dir):
    """Calls around the cut-off of 2024-05-15 (2024-03-15 00:00 Paris), each with audio."""
    recordings = state_dir / "recordings"
    recordings.mkdir(parents=True)
    outside = state_dir / "elsewhere.wav"
    outside.write_bytes(b"RIFF")
    calls = {"old": "2024-03-14 23:59:59.999", "edge": "2024-03-15 00:00",
             "new": "2024-05-01 10:00", "stray": "2024-03-01 09:00"}
    for call_id, start in calls.items():
        audio = outside if call_id == "stray" else recordings / f"{call_id}.wav"
        audio.write_bytes(b"RIFF")
        any_ledger.record_interaction(interaction(call_id, start=start,
                                                  transcript=f"texte {call_id}",
                                                  recording_path=audio))
    return any_ledger, recordings, outside


def test_purge_deletes_old_transcripts_and_recordings_but_keeps_billing(recorded):
    ledger, recordings, outside = recorded
    before = [render_sc32(judge_month(ledger, Month(2024, m)), "csv") for m in (3, 5)]
    result = purge(ledger, date(2024, 5, 15), recordings)
    assert (result.cutoff, result.transcripts, result.recordings, result.files_deleted) == \
        (date(2024, 3, 15), 2, 2, 1)
    assert result.summary() == (
        "Appels antérieurs au 2024-03-15 : 2 transcription(s) et 2 enregistrement(s) supprimés "
        "(1 fichier(s) audio) ; lignes de facturation conservées.")
    assert ledger.read_transcript("old", reader="test") is None
    assert ledger.read_transcript("stray", reader="test") is None
    assert ledger.read_transcript("edge", reader="test") == "texte edge"
    assert ledger.read_transcript("new", reader="test") == "texte new"
    assert sorted(p.name for p in recordings.iterdir()) == ["edge.wav", "new.wav"]
    assert outside.exists()  # never deleted outside the recordings directory
    assert [render_sc32(judge_month(ledger, Month(2024, m)), "csv") for m in (3, 5)] == before


def test_dry_run_counts_and_deletes_nothing(recorded):
    ledger, recordings, _ = recorded
    result = purge(ledger, date(2024, 5, 15), recordings, dry_run=True)
    assert (result.transcripts, result.recordings, result.dry_run) == (2, 2, True)
    assert "seraient supprimés" in result.summary()
    assert ledger.read_transcript("old", reader="test") == "texte old"
    assert (recordings / "old.wav").exists()


def test_purge_twice_finds_nothing_the_second_time(recorded):
    ledger, recordings, _ = recorded
    purge(ledger, date(2024, 5, 15), recordings)
    again = purge(ledger, date(2024, 5, 15), recordings)
    assert (again.transcripts, again.recordings, again.files_deleted) == (0, 0, 0)
