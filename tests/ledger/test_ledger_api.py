"""The Python API the pipeline calls: typed, idempotent, never raising, never storing a number."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import datetime

import pytest
import sqlalchemy as sa
from ledger_builders import (
    NUMBER,
    NUMBER_FORMS,
    SECRET_SENTENCE,
    assert_no_number,
    interaction,
    paris,
)

from ledger import AdvisorContact, Ledger, RecordResult
from ledger.csv_io import CsvInvalidError, import_csv
from ledger.months import Month
from ledger.reports import judge_month, render_sc32
from ledger.schema import interactions, journal, transcripts


def stored(ledger: Ledger) -> list[tuple]:
    with ledger.engine.connect() as conn:
        return conn.execute(sa.select(
            interactions.c.call_id, interactions.c.channel, interactions.c.message_ms,
            interactions.c.listened_ms, interactions.c.handoff, interactions.c.outcome,
            interactions.c.source).order_by(interactions.c.call_id)).all()


def test_record_then_retry_is_stored_once(any_ledger):
    assert any_ledger.record_interaction(interaction("c1")) is RecordResult.STORED
    assert any_ledger.record_interaction(interaction("c1")) is RecordResult.DUPLICATE
    assert stored(any_ledger) == [("c1", "bot", 10_000, 10_000, False, "answered", "api")]


def test_same_call_id_with_other_values_is_a_conflict_set_aside(any_ledger, caplog):
    any_ledger.record_interaction(interaction("c1"))
    with caplog.at_level(logging.ERROR):
        result = any_ledger.record_interaction(interaction("c1", listened_ms=1))
    assert result is RecordResult.CONFLICT
    assert stored(any_ledger)[0][3] == 10_000
    aside = (any_ledger.spool.directory / "conflicts.jsonl").read_text().splitlines()
    assert json.loads(aside[0])["call_id"] == "c1" and json.loads(aside[0])["listened_ms"] == 1
    assert "call c1: another ledger row holds this call id" in caplog.text


def test_invalid_interaction_is_rejected_not_raised(sqlite_ledger, caplog):
    naive = interaction("c-naive")
    naive = type(naive)(**{**naive.__dict__, "started_at": datetime(2024, 3, 1, 10, 0)})
    with caplog.at_level(logging.ERROR):
        assert sqlite_ledger.record_interaction(naive) is RecordResult.REJECTED
        assert sqlite_ledger.record_interaction(
            interaction("c-long", listened_ms=20_000)) is RecordResult.REJECTED
        assert sqlite_ledger.record_interaction(
            interaction("c-nomotif", motif="")) is RecordResult.REJECTED
    assert stored(sqlite_ledger) == []
    rejected = [json.loads(line) for line in
                (sqlite_ledger.spool.directory / "rejected.jsonl").read_text().splitlines()]
    assert [r["call_id"] for r in rejected] == ["c-naive", "c-long", "c-nomotif"]
    assert rejected[1]["reason"] == "listened_s dépasse message_s"
    assert "call c-naive rejected by the ledger: ValueError: naive datetime" in caplog.text


def test_advisor_contact_voids_the_earlier_bot_call(any_ledger):
    any_ledger.record_interaction(interaction("bot-1", start="2024-03-05 10:00"))
    any_ledger.record_interaction(interaction("bot-2", caller=None, start="2024-03-05 10:30"))
    result = any_ledger.record_advisor_contact(AdvisorContact(
        call_id="adv-1", caller_number="06.12.34.56.78", started_at=paris("2024-03-05 11:00"),
        ended_at=paris("2024-03-05 11:05")))
    assert result is RecordResult.STORED
    assert render_sc32(judge_month(any_ledger, Month(2024, 3)), "csv").splitlines()[1:] == [
        "2024-03-05,2,1,60.000,0.0167", "total,2,1,60.000,0.0167"]


def test_async_wrapper_does_not_block_the_event_loop(sqlite_ledger):
    async def main() -> list[RecordResult]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0)

        task = asyncio.create_task(ticker())
        results = await asyncio.gather(*(sqlite_ledger.arecord_interaction(
            interaction(f"c{i}", start=f"2024-03-01 10:{i:02d}")) for i in range(20)))
        task.cancel()
        assert ticks > 20  # the loop kept running while the writes happened in threads
        return results

    assert asyncio.run(main()) == [RecordResult.STORED] * 20
    assert len(stored(sqlite_ledger)) == 20


@pytest.mark.parametrize("identity", ["sip:ivr@sbc.example", "trunk-orange", "alice",
                                      "sip:Alice@192.0.2.1", "1234"])
def test_caller_id_that_is_not_a_number_is_withheld_never_linked(sqlite_ledger, identity):
    """A trunk that sends the same user for every caller must not void their calls."""
    sqlite_ledger.record_interaction(interaction("c1", caller=identity))
    sqlite_ledger.record_advisor_contact(AdvisorContact(
        call_id="a1", caller_number=identity, started_at=paris("2024-03-01 11:00"),
        ended_at=paris("2024-03-01 11:01")))
    assert render_sc32(judge_month(sqlite_ledger, Month(2024, 3)), "csv").splitlines()[1] == \
        "2024-03-01,1,1,60.000,0.0167"
    with sqlite_ledger.engine.connect() as conn:
        keys = set(conn.execute(sa.select(interactions.c.caller_key)).scalars())
    assert keys == {None}


def test_interaction_repr_hides_number_and_transcript():
    text = repr(interaction(transcript=SECRET_SENTENCE))
    assert "612345678" not in text and "allocation" not in text
    assert "call_id='call-1'" in text


# --- transcripts ---------------------------------------------------------------------------------
def test_transcript_is_encrypted_and_reads_are_journaled(sqlite_ledger):
    sqlite_ledger.record_interaction(interaction("c1", transcript=SECRET_SENTENCE))
    with sqlite_ledger.engine.connect() as conn:
        nonce, ciphertext = conn.execute(sa.select(transcripts.c.nonce,
                                                   transcripts.c.ciphertext)).one()
    assert len(nonce) == 12 and b"allocation" not in ciphertext
    assert sqlite_ledger.read_transcript("c1", reader="auditrice") == SECRET_SENTENCE
    assert sqlite_ledger.read_transcript("absent", reader="auditrice") is None
    with sqlite_ledger.engine.connect() as conn:
        details = [json.loads(d) for d in conn.execute(
            sa.select(journal.c.detail).where(journal.c.kind == "transcript_read")).scalars()]
    assert details == [{"call_id": "c1", "found": True, "reader": "auditrice"},
                       {"call_id": "absent", "found": False, "reader": "auditrice"}]


def test_tampered_transcript_fails_its_integrity_check(sqlite_ledger):
    from bot.errors import SettingsError

    sqlite_ledger.record_interaction(interaction("c1", transcript=SECRET_SENTENCE))
    sqlite_ledger.record_interaction(interaction("c2", transcript="autre"))
    with sqlite_ledger.engine.begin() as conn:  # move c1's ciphertext onto c2
        row = conn.execute(sa.select(transcripts).where(transcripts.c.call_id == "c1")).one()
        conn.execute(transcripts.update().where(transcripts.c.call_id == "c2")
                     .values(nonce=row.nonce, ciphertext=row.ciphertext))
    with pytest.raises(SettingsError, match="altérée"):
        sqlite_ledger.read_transcript("c2", reader="test")


def test_transcripts_can_be_switched_off(state_dir):
    from ledger_builders import ledger_settings_for

    ledger = Ledger.open(ledger_settings_for(state_dir, store_transcripts=False))
    try:
        ledger.record_interaction(interaction("c1", transcript=SECRET_SENTENCE))
        assert ledger.read_transcript("c1", reader="test") is None
    finally:
        ledger.close()


def test_key_files_are_created_private_and_reused(settings, state_dir):
    ledger = Ledger.open(settings)
    first = ledger.pseudonymizer.key_id
    ledger.close()
    for name in ("pseudonym.key", "transcript.key"):
        path = state_dir / "secrets" / name
        assert path.stat().st_mode & 0o777 == 0o600
        assert len(path.read_text().strip()) == 64
    assert (state_dir / "secrets").stat().st_mode & 0o777 == 0o700
    assert (state_dir / "ledger.sqlite").stat().st_mode & 0o777 == 0o600
    again = Ledger.open(settings)
    assert again.pseudonymizer.key_id == first
    again.close()


def test_keys_from_settings_are_used(state_dir):
    from ledger_builders import ledger_settings_for

    settings = ledger_settings_for(state_dir, pseudonym_key="x" * 40,
                                   transcript_key="ab" * 32)
    ledger = Ledger.open(settings)
    try:
        assert not (state_dir / "secrets").exists()
        from ledger.pseudonym import Pseudonymizer

        assert ledger.pseudonymizer.key_id == Pseudonymizer(b"x" * 40).key_id
    finally:
        ledger.close()


def test_bad_transcript_key_is_a_french_settings_error(state_dir):
    from ledger_builders import ledger_settings_for

    from bot.errors import SettingsError

    with pytest.raises(SettingsError, match="ledger.transcript_key : clé invalide"):
        Ledger.open(ledger_settings_for(state_dir, transcript_key="1234"))


def test_another_pseudonym_key_refuses_to_open_the_ledger(state_dir, tmp_path):
    from ledger_builders import ledger_settings_for

    from ledger.keys import KeyMismatchError

    url = f"sqlite:///{tmp_path / 'shared.sqlite'}"
    first = Ledger.open(ledger_settings_for(state_dir, pseudonym_key="a" * 32), url)
    first.record_interaction(interaction("c1"))
    first.close()
    with pytest.raises(KeyMismatchError, match="n'est pas celle du registre"):
        Ledger.open(ledger_settings_for(state_dir, pseudonym_key="b" * 32), url)


# --- privacy: no raw number in the database files, the spool or the logs -------------------------
def test_no_raw_number_in_sqlite_files_or_logs(settings, state_dir, tmp_path, caplog):
    import sqlite3

    caplog.set_level(logging.DEBUG)
    ledger = Ledger.open(settings)
    # A second connection held open keeps the WAL file from being checkpointed away.
    keeper = sqlite3.connect(state_dir / "ledger.sqlite")
    keeper.execute("SELECT count(*) FROM sqlite_master").fetchall()
    try:
        for i, form in enumerate(NUMBER_FORMS):
            if form == "612345678":
                continue
            ledger.record_interaction(interaction(f"bot-{i}", caller=form,
                                                  start=f"2024-03-01 10:{i:02d}",
                                                  transcript=SECRET_SENTENCE))
            ledger.record_advisor_contact(AdvisorContact(
                call_id=f"adv-{i}", caller_number=form, started_at=paris("2024-03-01 12:00"),
                ended_at=paris("2024-03-01 12:01")))
        ledger.record_interaction(interaction("bad", caller=NUMBER, listened_ms=99_999))
        ledger.record_interaction(interaction("bot-0", caller=NUMBER, listened_ms=1))  # conflict
        csv_path = tmp_path / "numbers.csv"
        csv_path.write_text(
            "call_id,channel,caller,started_at,ended_at,motif,message_s,listened_s,handoff\n"
            + "".join(f"imp-{i},bot,{form},2024-03-02T10:00:00+01:00,2024-03-02T10:01:00+01:00,"
                      f"rsa,1,1,false\n" for i, form in enumerate(NUMBER_FORMS)
                      if form != "612345678"), encoding="utf-8")
        import_csv(ledger, csv_path)
        bad_csv = tmp_path / "bad.csv"
        bad_csv.write_text(csv_path.read_text().replace("+33612345678", "+33 6 12 34 56 7"))
        with pytest.raises(CsvInvalidError) as caught:
            import_csv(ledger, bad_csv)
        assert "612345" not in str(caught.value)
        assert ledger.read_transcript("bot-0", reader="test") == SECRET_SENTENCE
        while_open = [(p.name, p.read_bytes()) for p in state_dir.rglob("*") if p.is_file()]
    finally:
        keeper.close()
        ledger.close()

    after = [(p.name, p.read_bytes()) for p in state_dir.rglob("*") if p.is_file()]
    names = {name for name, _ in while_open}
    assert {"ledger.sqlite", "ledger.sqlite-wal", "rejected.jsonl", "conflicts.jsonl"} <= names
    assert_no_number(while_open + after + [("logs", caplog.text.encode())])
