"""The access log: hash chain, anchors, tamper detection, purge, export, PostgreSQL triggers."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
import time
import uuid
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy.exc import DBAPIError
from throwaway_pg import PostgresMissingError, ThrowawayPostgres

from bot.settings import PROJECT_ROOT
from console.audit_chain import PARIS
from console.audit_log import CSV_COLUMNS, AuditLog
from ledger.schema import console_audit_anchors, console_audit_log

DAY_MS = 86_400_000


def voicebot(settings, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, VOICEBOT_PATHS_STATE_DIR=str(settings.paths.state_dir))
    env.pop("VOICEBOT_CONFIG", None)
    return subprocess.run([sys.executable, "-m", "bot.cli.main", *args], env=env,
                          capture_output=True, text=True, timeout=120, cwd=PROJECT_ROOT)


@pytest.fixture
def audit(console_settings, console_ledger) -> AuditLog:
    return AuditLog.from_settings(console_settings, console_ledger.engine)


def fill(audit: AuditLog, count: int, user: str = "claire") -> None:
    for i in range(count):
        audit.append(user, "superviseur", "lecture_transcription", f"appel-{i}", "10.0.0.7")


def update(audit: AuditLog, seq: int, **values) -> None:
    with audit.engine.begin() as conn:
        conn.execute(console_audit_log.update().where(console_audit_log.c.seq == seq)
                     .values(**values))


def test_entries_chain_each_to_the_previous_hash(audit):
    fill(audit, 3)
    entries = audit.entries()
    assert [e.seq for e in entries] == [1, 2, 3]
    assert entries[0].prev_hash == "0" * 64
    assert entries[1].prev_hash == entries[0].hash and entries[2].prev_hash == entries[1].hash
    assert all(len(e.hash) == 64 and e.hash == e.computed_hash() for e in entries)
    assert audit.verify().ok


def test_a_changed_entry_is_named(audit):
    fill(audit, 5)
    update(audit, 3, object="appel-autre")
    verdict = audit.verify()
    assert not verdict.ok
    assert "l'entrée n° 3" in verdict.problems[0] and "modifiée" in verdict.problems[0]


def test_a_changed_entry_with_its_hash_recomputed_is_named(audit):
    fill(audit, 5)
    entry = audit.entries()[1]
    forged = entry.__class__(**{**entry.__dict__, "user_name": "quelquun"})
    update(audit, 2, user_name="quelquun", hash=forged.computed_hash())
    assert "l'entrée n° 2" in audit.verify().problems[0]


def test_a_deleted_entry_is_named(audit):
    fill(audit, 5)
    with audit.engine.begin() as conn:
        conn.execute(console_audit_log.delete().where(console_audit_log.c.seq == 4))
    problem = audit.verify().problems[0]
    assert "l'entrée n° 4" in problem and "supprimée" in problem


def test_reordered_entries_are_detected(audit):
    fill(audit, 5)
    two, three = audit.entries()[1:3]
    swap = ("at_ms", "user_name", "role", "action", "object", "source", "outcome",
            "prev_hash", "hash")
    update(audit, 2, **{k: getattr(three, k) for k in swap})
    update(audit, 3, **{k: getattr(two, k) for k in swap})
    problem = audit.verify().problems[0]
    assert "l'entrée n° 2" in problem and "déplacée" in problem


def test_deleting_the_latest_entries_is_caught_by_the_anchor(audit):
    fill(audit, 5)
    assert audit.anchor() is not None
    with audit.engine.begin() as conn:
        conn.execute(console_audit_log.delete().where(console_audit_log.c.seq >= 4))
    verdict = audit.verify()
    assert not verdict.ok
    assert "l'entrée n° 5" in verdict.problems[0] and "supprimée" in verdict.problems[0]


def test_rewriting_the_whole_chain_is_caught_by_the_anchors(audit):
    fill(audit, 4)
    audit.anchor()
    # Rewrite everything from entry 1 with hashes recomputed: the chain itself is coherent.
    entries = audit.entries()
    prev = "0" * 64
    for e in entries:
        forged = e.__class__(**{**e.__dict__, "object": "rien", "prev_hash": prev, "hash": ""})
        forged = forged.__class__(**{**forged.__dict__, "hash": forged.computed_hash()})
        update(audit, e.seq, object="rien", prev_hash=prev, hash=forged.hash)
        prev = forged.hash
    verdict = audit.verify()
    assert not verdict.ok
    assert "ancre" in verdict.problems[0] and "l'entrée n° 4" in verdict.problems[0]
    # Rewriting the anchor table too still leaves the file outside the database.
    with audit.engine.begin() as conn:
        conn.execute(console_audit_anchors.update().values(hash=prev))
    assert any(str(audit.anchor_file) in p for p in audit.verify().problems)


def test_anchor_is_written_once_a_day_to_a_table_and_a_file(audit):
    fill(audit, 2)
    first = audit.anchor()
    assert first is not None and first.seq == 2
    fill(audit, 1)
    assert audit.anchor() is None  # today's anchor exists
    tomorrow = datetime.now(PARIS) + timedelta(days=1)
    second = audit.anchor(tomorrow)
    assert second is not None and second.seq == 3
    lines = audit.anchor_file.read_text().splitlines()
    assert [line.split()[1] for line in lines] == ["2", "3"]
    assert lines[1].split()[2] == audit.entries()[-1].hash


def test_purge_keeps_six_months_and_the_rest_verifiable(console_settings, console_ledger):
    now_ms = int(time.time() * 1000)
    old = AuditLog.from_settings(console_settings, console_ledger.engine)
    old.clock_ms = lambda: now_ms - 200 * DAY_MS
    fill(old, 3, "ancien")
    current = AuditLog.from_settings(console_settings, console_ledger.engine)
    fill(current, 2, "recent")
    current.anchor()
    assert current.purge() == 3
    entries = current.entries()
    assert [e.user_name for e in entries] == ["recent", "recent", "voicebot"]
    assert entries[-1].action == "purge_journal" and "entrée n° 3" in entries[-1].object
    assert current.verify().ok, current.verify().problems
    assert current.purge() == 0
    update(current, 4, object="autre")  # the first kept entry
    assert "l'entrée n° 4" in current.verify().problems[0]


def test_verify_command_exit_codes_and_french_message(console_settings, audit):
    fill(audit, 4)
    audit.anchor()
    ok = voicebot(console_settings, "audit", "verify")
    assert ok.returncode == 0, ok.stderr
    assert "intact" in ok.stdout
    update(audit, 2, outcome="refuse")
    broken = voicebot(console_settings, "audit", "verify")
    assert broken.returncode == 1
    assert broken.stderr.startswith("Journal des accès altéré : l'entrée n° 2")


def test_export_command_writes_the_period_as_csv(console_settings, console_ledger, tmp_path):
    now_ms = int(time.time() * 1000)
    older = AuditLog.from_settings(console_settings, console_ledger.engine)
    older.clock_ms = lambda: now_ms - 10 * DAY_MS
    fill(older, 2, "avant")
    fill(AuditLog.from_settings(console_settings, console_ledger.engine), 3, "pendant")
    today = datetime.now(PARIS).date()
    out = tmp_path / "journal.csv"
    done = voicebot(console_settings, "audit", "export", "--from",
                    (today - timedelta(days=1)).isoformat(), "--to", today.isoformat(),
                    "-o", str(out))
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert [r["utilisateur"] for r in rows] == ["pendant"] * 3
    assert rows[0]["objet"] == "appel-0" and rows[0]["adresse_source"] == "10.0.0.7"
    to_stdout = voicebot(console_settings, "audit", "export", "--from",
                         (today - timedelta(days=30)).isoformat(), "--to", today.isoformat())
    rows = list(csv.DictReader(io.StringIO(to_stdout.stdout)))
    assert [r["utilisateur"] for r in rows[:5]] == ["avant"] * 2 + ["pendant"] * 3
    assert rows[5]["action"] == "export_journal" and rows[5]["utilisateur"].startswith("shell")
    assert len(rows) == 6  # the first export is itself in the log
    bad = voicebot(console_settings, "audit", "export", "--from", "01/02/2025", "--to",
                   today.isoformat())
    assert bad.returncode == 2 and "AAAA-MM-JJ" in bad.stderr


def test_audit_page_shows_and_filters_for_auditors(console_app, make_user, login, audit):
    fill(audit, 2, "claire")
    fill(audit, 1, "paul")
    login(console_app, "olga", make_user("olga", "auditeur"))
    page = console_app.get("/audit?utilisateur=paul")
    assert page.status_code == 200
    assert "<td>paul</td>" in page.text and "<td>claire</td>" not in page.text
    today = date.today().isoformat()
    export = console_app.get(f"/audit/export.csv?du={today}&au={today}")
    assert export.status_code == 200 and export.headers["content-type"].startswith("text/csv")
    assert export.text.splitlines()[0] == ",".join(CSV_COLUMNS)
    assert console_app.get("/audit/verification").text.count("Chaîne intacte") == 1
    actions = [e.action for e in audit.entries(user="olga")]
    assert {"consultation_journal", "export_journal"} <= set(actions)
    update(audit, 1, object="falsifié")
    assert "Journal des accès altéré" in console_app.get("/audit/verification").text


# --- PostgreSQL ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pg_server():
    try:
        server = ThrowawayPostgres()
    except PostgresMissingError as exc:
        pytest.fail(str(exc), pytrace=False)
    with server:
        yield server


@pytest.fixture
def pg_audit(pg_server, console_settings):
    from ledger.api import Ledger

    url = pg_server.create_database(f"a_{uuid.uuid4().hex[:12]}")
    ledger = Ledger.open(console_settings, url, require_database=True, replay_spool=False)
    yield AuditLog.from_settings(console_settings, ledger.engine)
    ledger.close()


def test_postgresql_triggers_refuse_update_and_delete(pg_audit):
    fill(pg_audit, 3)
    for statement in (console_audit_log.update().values(object="x"),
                      console_audit_log.delete().where(console_audit_log.c.seq == 2)):
        with pytest.raises(DBAPIError, match="ajout seul"), pg_audit.engine.begin() as conn:
            conn.execute(statement)
    with pytest.raises(DBAPIError), pg_audit.engine.begin() as conn:
        conn.exec_driver_sql("TRUNCATE console_audit_log")
    # Even the purge's flag does not let a recent entry go.
    with pytest.raises(DBAPIError, match="ajout seul"), pg_audit.engine.begin() as conn:
        conn.exec_driver_sql("SELECT set_config('allo_caf.audit_purge', 'on', true)")
        conn.execute(console_audit_log.delete())
    assert len(pg_audit.entries()) == 3 and pg_audit.verify().ok


def test_postgresql_purge_and_verify(pg_audit):
    now_ms = int(time.time() * 1000)
    recent_clock = pg_audit.clock_ms
    pg_audit.clock_ms = lambda: now_ms - 200 * DAY_MS
    fill(pg_audit, 2, "ancien")
    pg_audit.clock_ms = recent_clock
    fill(pg_audit, 2, "recent")
    pg_audit.anchor()
    assert pg_audit.purge() == 2
    assert [e.user_name for e in pg_audit.entries()] == ["recent", "recent", "voicebot"]
    assert pg_audit.verify().ok, pg_audit.verify().problems
