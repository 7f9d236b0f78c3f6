"""The Alembic migrations build exactly the schema the code queries, on both databases."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from ledger import db
from ledger.schema import VERSION_TABLE, metadata


def test_migrated_schema_matches_the_code(any_ledger):
    with any_ledger.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE,
                                                         "compare_type": True})
        assert compare_metadata(context, metadata) == []


def test_upgrade_is_idempotent_and_versioned(any_ledger):
    db.upgrade(any_ledger.engine)
    db.upgrade(any_ledger.engine)
    assert db.current_revision(any_ledger.engine) == db.head_revision()
    tables = set(sa.inspect(any_ledger.engine).get_table_names())
    assert tables >= {"ledger_alembic_version", "ledger_interactions", "ledger_transcripts",
                      "ledger_recordings", "ledger_orders", "ledger_journal", "ledger_meta",
                      "ledger_closed_months"}
    assert tables - {"ledger_alembic_version"} == set(metadata.tables)



def test_sqlite_ledger_uses_wal(sqlite_ledger):
    with sqlite_ledger.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL


def test_database_checks_refuse_impossible_rows(any_ledger):
    import pytest
    from sqlalchemy.exc import IntegrityError

    from ledger.schema import interactions

    row = {"call_id": "x", "channel": "bot", "caller_key": None, "started_at_ms": 10,
           "ended_at_ms": 5, "motif": "rsa", "message_ms": 1, "listened_ms": 1,
           "handoff": False, "outcome": None, "source": "test", "recorded_at_ms": 0}
    for bad in ({"ended_at_ms": 5}, {"ended_at_ms": 20, "listened_ms": 2},
                {"ended_at_ms": 20, "channel": "robot"}):
        with pytest.raises(IntegrityError), any_ledger.engine.begin() as conn:
            conn.execute(interactions.insert().values(**{**row, **bad}))
