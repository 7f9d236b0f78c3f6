"""A database that goes away mid-run: calls keep being recorded, nothing lost or counted twice.

The PostgreSQL server is really stopped (pg_ctl stop) and restarted; no fake.
"""

from __future__ import annotations

import json
import logging
import threading
from datetime import date

import pytest
import sqlalchemy as sa
from ledger_builders import (
    NUMBER_FORMS,
    SECRET_SENTENCE,
    assert_no_number,
    interaction,
    ledger_settings_for,
)

from ledger import Ledger, RecordResult
from ledger.months import Month
from ledger.records import CallStats
from ledger.reports import judge_month, render_sc32
from ledger.schema import interactions, transcripts
from ledger.spool import ACTIVE, Spool
from ledger.stats import read_calls


def count(ledger: Ledger, table=interactions) -> int:
    with ledger.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()


def march_total(ledger: Ledger) -> str:
    return render_sc32(judge_month(ledger, Month(2024, 3)), "csv").splitlines()[-1]


@pytest.fixture
def retry_at_once(state_dir):
    """Settings whose every write tries the database again (no pause after a failure)."""
    return ledger_settings_for(state_dir, db_retry_ms=0)


def test_statistics_and_satisfaction_travel_with_their_spooled_call(pg_server, pg_url,
                                                                     retry_at_once):
    """What the supervisors read of a call (turns, reply times, the satisfaction key) is not
    lost when the database is down at the end of the call: it is spooled with the row."""
    stats = CallStats(turns=3, misunderstood_turns=2, reply_ms=(800, 5200, 950),
                      no_input_prompts=1, frustration_words=1)
    ledger = Ledger.open(retry_at_once, pg_url, require_database=True)
    try:
        pg_server.stop()
        try:
            assert ledger.record_interaction(interaction(
                "down-asked", stats=stats, satisfaction_asked=True, satisfaction=2)) \
                is RecordResult.SPOOLED
            assert ledger.record_interaction(interaction(
                "down-silent", start="2024-03-01 10:30", satisfaction_asked=True)) \
                is RecordResult.SPOOLED
        finally:
            pg_server.start()
        result = ledger.replay_spool()
        assert (result.events, result.inserted) == (2, 2)
        day = paris_day(ledger)
        assert (day["down-asked"].stats, day["down-asked"].satisfaction) == (stats, 2)
        assert ledger.satisfaction("down-asked") == (True, 2)
        assert ledger.satisfaction("down-silent") == (True, None)
        assert day["down-silent"].stats is None
        assert ledger.replay_spool().events == 0  # once, not twice
    finally:
        ledger.close()


def paris_day(ledger: Ledger) -> dict:
    return {c.call_id: c for c in read_calls(ledger, date(2024, 3, 1), date(2024, 3, 1))}


def test_postgres_stopped_mid_run_spools_then_replays_exactly_once(
        pg_server, pg_url, retry_at_once, caplog):
    caplog.set_level(logging.DEBUG)
    ledger = Ledger.open(retry_at_once, pg_url, require_database=True)
    try:
        for i in range(5):
            assert ledger.record_interaction(interaction(
                f"up-{i}", start=f"2024-03-01 10:0{i}", caller=NUMBER_FORMS[i])) \
                is RecordResult.STORED

        pg_server.stop()
        try:
            down = [ledger.record_interaction(interaction(
                f"down-{i}", start=f"2024-03-01 11:0{i}", caller=NUMBER_FORMS[i],
                transcript=SECRET_SENTENCE)) for i in range(5)]
            assert down == [RecordResult.SPOOLED] * 5
            spooled = (ledger.spool.directory / ACTIVE).read_bytes()
            assert [json.loads(line)["call_id"] for line in spooled.splitlines()] == \
                [f"down-{i}" for i in range(5)]
            assert ledger.replay_spool().events == 0  # still down: nothing lost, nothing done
            assert (ledger.spool.directory / ACTIVE).exists() or \
                any(ledger.spool.directory.glob("pending-*.jsonl"))
        finally:
            pg_server.start()

        # The first write after recovery catches up with the spool.
        assert ledger.record_interaction(interaction("after", start="2024-03-01 12:00")) \
            is RecordResult.STORED
        assert not ledger.spool.has_pending()
        assert count(ledger) == 11
        assert count(ledger, transcripts) == 5
        assert ledger.read_transcript("down-3", reader="test") == SECRET_SENTENCE
        # Same caller all day, no advisor: all 11 are productive, 60 s each.
        assert march_total(ledger) == "total,11,11,660.000,0.1833"

        # A crash between the commit and the spool file's deletion replays it again.
        (ledger.spool.directory / ACTIVE).write_bytes(spooled)
        replay = ledger.replay_spool()
        assert (replay.events, replay.inserted, replay.duplicates) == (5, 0, 5)
        assert count(ledger) == 11
        assert march_total(ledger) == "total,11,11,660.000,0.1833"
        assert_no_number([("spool", spooled), ("logs", caplog.text.encode())])
    finally:
        ledger.close()


def test_voice_service_starts_with_the_database_down(pg_server, pg_url, retry_at_once):
    pg_server.stop()
    try:
        ledger = Ledger.open(retry_at_once, pg_url)  # no exception: calls must be taken
        assert ledger.record_interaction(interaction("c1")) is RecordResult.SPOOLED
    finally:
        pg_server.start()
    try:
        assert ledger.record_interaction(interaction("c2", start="2024-03-01 10:05")) \
            is RecordResult.STORED
        assert count(ledger) == 2
    finally:
        ledger.close()


def test_after_a_failure_calls_spool_without_waiting_until_the_retry_delay(
        pg_server, pg_url, state_dir, caplog):
    caplog.set_level(logging.WARNING)
    ledger = Ledger.open(ledger_settings_for(state_dir, db_retry_ms=600_000), pg_url)
    try:
        pg_server.stop()
        try:
            assert ledger.record_interaction(interaction("c1")) is RecordResult.SPOOLED
            assert ledger.record_interaction(interaction("c2", start="2024-03-01 10:05")) \
                is RecordResult.SPOOLED
        finally:
            pg_server.start()
        assert ledger.record_interaction(interaction("c3", start="2024-03-01 10:10")) \
            is RecordResult.SPOOLED  # still within the retry delay
        assert "call c1 spooled: ledger database unreachable (OperationalError)" in caplog.text
        assert "call c2 spooled: ledger database unreachable (down moments ago, not retried " \
               "yet)" in caplog.text
        assert ledger.replay_spool().inserted == 3  # an explicit replay does not wait
        assert ledger.record_interaction(interaction("c4", start="2024-03-01 10:15")) \
            is RecordResult.STORED
        assert count(ledger) == 4
    finally:
        ledger.close()


def test_spool_is_replayed_when_the_ledger_opens_again(pg_server, pg_url, settings):
    ledger = Ledger.open(settings, pg_url)
    pg_server.stop()
    try:
        assert ledger.record_interaction(interaction("c1")) is RecordResult.SPOOLED
    finally:
        pg_server.start()
        ledger.close()
    reopened = Ledger.open(settings, pg_url)  # e.g. the service restarted
    try:
        assert count(reopened) == 1
        assert not reopened.spool.has_pending()
    finally:
        reopened.close()


def test_concurrent_calls_spool_whole_lines(pg_server, pg_url, settings):
    ledger = Ledger.open(settings, pg_url)
    results: list[RecordResult] = []
    lock = threading.Lock()

    def call(worker: int) -> None:
        for i in range(10):
            result = ledger.record_interaction(interaction(
                f"w{worker}-{i}", start=f"2024-03-02 1{worker}:{i:02d}",
                transcript="x" * 5000))
            with lock:
                results.append(result)

    pg_server.stop()
    try:
        threads = [threading.Thread(target=call, args=(w,)) for w in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert results == [RecordResult.SPOOLED] * 40
        lines = (ledger.spool.directory / ACTIVE).read_text().splitlines()
        assert sorted(json.loads(line)["call_id"] for line in lines) == \
            sorted(f"w{w}-{i}" for w in range(4) for i in range(10))
    finally:
        pg_server.start()
    try:
        assert ledger.replay_spool().inserted == 40
        assert count(ledger) == 40
    finally:
        ledger.close()


def test_torn_last_line_is_set_aside_and_later_events_survive(sqlite_ledger):
    spool: Spool = sqlite_ledger.spool
    spool.directory.mkdir(parents=True, exist_ok=True)
    good = interaction("c1")
    row, extras = sqlite_ledger._bot_row(good)
    from ledger.api import _event

    spool.append(_event(row, extras))
    with (spool.directory / ACTIVE).open("ab") as handle:
        handle.write(b'{"v":1,"kind":"row","call_id":"torn","chan')  # crash mid-write
    row2, extras2 = sqlite_ledger._bot_row(interaction("c2", start="2024-03-01 10:05"))
    spool.append(_event(row2, extras2))

    result = sqlite_ledger.replay_spool()
    assert (result.events, result.inserted) == (2, 2)
    damaged = (spool.directory / "damaged.jsonl").read_text().splitlines()
    assert len(damaged) == 1 and '"torn' in json.loads(damaged[0])["raw"]
    assert not spool.has_pending()
