"""Reading and writing ledger rows with SQLAlchemy Core; no policy, no formatting.

Inserts are idempotent by ``call_id``: a row already present with the same billing fields
is a duplicate (nothing written); with different fields it is a conflict (nothing written,
reported). That is what makes spool replay and re-imports exact.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ledger.crypto import Sealed
from ledger.records import CallStats, Row
from ledger.rule import Contact
from ledger.schema import (
    call_satisfaction,
    call_stats,
    interactions,
    journal,
    meta,
    recordings,
    transcripts,
)

LOOKUP_CHUNK = 500
"""Call ids per lookup query on SQLite (older builds allow 999 parameters); 10× on PostgreSQL."""
_ROW_COLUMNS = (
    interactions.c.call_id, interactions.c.channel, interactions.c.caller_key,
    interactions.c.started_at_ms, interactions.c.ended_at_ms, interactions.c.motif,
    interactions.c.message_ms, interactions.c.listened_ms, interactions.c.handoff,
    interactions.c.outcome,
)


@dataclass(frozen=True)
class Extras:
    """What a row may bring besides itself: its sealed transcript, its recording, and what
    the supervisors read of the call (statistics, satisfaction). They are written in the
    row's transaction, so they are spooled and replayed with it when the database is down."""

    transcript: Sealed | None = None
    recording_path: str | None = None
    stats: CallStats | None = None
    satisfaction_asked: bool = False
    satisfaction: int | None = None


NO_EXTRAS = Extras()


@dataclass
class InsertOutcome:
    inserted: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    conflicts: list[tuple[Row, Row]] = field(default_factory=list)
    """(new row, row already stored) pairs sharing a call id with different fields."""


def existing_rows(conn: Connection, call_ids: Iterable[str]) -> dict[str, Row]:
    found: dict[str, Row] = {}
    ids = list(dict.fromkeys(call_ids))
    size = LOOKUP_CHUNK if conn.dialect.name == "sqlite" else 10 * LOOKUP_CHUNK
    for start in range(0, len(ids), size):
        chunk = ids[start:start + size]
        query = sa.select(*_ROW_COLUMNS).where(interactions.c.call_id.in_(chunk))
        for record in conn.execute(query):
            found[record.call_id] = Row.from_values(record._mapping)
    return found


def insert_rows(
    conn: Connection,
    rows: Sequence[tuple[Row, Extras]],
    source: str,
    recorded_at_ms: int,
    *,
    dry_run_on_conflict: bool = False,
) -> InsertOutcome:
    """Insert rows not yet present; with ``dry_run_on_conflict`` write nothing if any conflicts.

    Call inside a transaction; the caller commits.
    """
    outcome = InsertOutcome()
    stored = existing_rows(conn, (row.call_id for row, _ in rows))
    fresh: list[tuple[Row, Extras]] = []
    for row, extras in rows:
        old = stored.get(row.call_id)
        if old is None:
            stored[row.call_id] = row
            fresh.append((row, extras))
            outcome.inserted.append(row.call_id)
        elif old.billing_key() == row.billing_key():
            outcome.duplicates.append(row.call_id)
        else:
            outcome.conflicts.append((row, old))
    if outcome.conflicts and dry_run_on_conflict:
        outcome.inserted.clear()
        return outcome
    if fresh:
        _bulk_insert(conn, [
            (row.call_id, row.channel.value, row.caller_key, row.started_at_ms,
             row.ended_at_ms, row.motif, row.message_ms, row.listened_ms, bool(row.handoff),
             row.outcome, source, recorded_at_ms)
            for row, _ in fresh])
        sealed = [
            {"call_id": row.call_id, "started_at_ms": row.started_at_ms,
             "key_id": extras.transcript.key_id, "nonce": extras.transcript.nonce,
             "ciphertext": extras.transcript.ciphertext}
            for row, extras in fresh if extras.transcript is not None
        ]
        if sealed:
            conn.execute(transcripts.insert(), sealed)
        audio = [
            {"call_id": row.call_id, "started_at_ms": row.started_at_ms,
             "path": extras.recording_path}
            for row, extras in fresh if extras.recording_path is not None
        ]
        if audio:
            conn.execute(recordings.insert(), audio)
        counted = [stats_values(row.call_id, row.started_at_ms, extras.stats)
                   for row, extras in fresh if extras.stats is not None]
        if counted:
            conn.execute(call_stats.insert(), counted)
        asked = [{"call_id": row.call_id, "started_at_ms": row.started_at_ms,
                  "score": extras.satisfaction}
                 for row, extras in fresh if extras.satisfaction_asked]
        if asked:
            conn.execute(call_satisfaction.insert(), asked)
    return outcome


def stats_values(call_id: str, started_at_ms: int, stats: CallStats) -> dict[str, object]:
    """A ``ledger_call_stats`` row (``reply_ms`` comma-separated, in turn order)."""
    return {"call_id": call_id, "started_at_ms": started_at_ms, "turns": stats.turns,
            "misunderstood_turns": stats.misunderstood_turns,
            "reply_ms": ",".join(str(int(ms)) for ms in stats.reply_ms),
            "no_input_prompts": stats.no_input_prompts,
            "frustration_words": stats.frustration_words}


_INSERT_COLUMNS = ("call_id", "channel", "caller_key", "started_at_ms", "ended_at_ms", "motif",
                   "message_ms", "listened_ms", "handoff", "outcome", "source",
                   "recorded_at_ms")


def _bulk_insert(conn: Connection, values: list[tuple]) -> None:
    """Insert interaction tuples through the driver, in the caller's transaction.

    SQLAlchemy's per-row parameter processing costs more than parsing the CSV; sqlite3's
    ``executemany`` does not, and on PostgreSQL ``COPY`` is several times faster than
    any form of INSERT.
    """
    columns = ", ".join(_INSERT_COLUMNS)
    cursor = conn.connection.cursor()
    try:
        if conn.dialect.name == "postgresql":
            buffer = io.StringIO(
                "".join("\t".join(map(_copy_text, row)) + "\n" for row in values))
            cursor.copy_expert(f"COPY {interactions.name} ({columns}) FROM STDIN", buffer)
        else:
            marks = ", ".join("?" * len(_INSERT_COLUMNS))
            cursor.executemany(f"INSERT INTO {interactions.name} ({columns}) VALUES ({marks})",
                               values)
    finally:
        cursor.close()


def _copy_text(value: object) -> str:
    """One field in PostgreSQL's COPY text format."""
    if value is None:
        return "\\N"
    if value is True or value is False:
        return "t" if value else "f"
    if isinstance(value, int):
        return str(value)
    text = str(value)
    if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
        text = (text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
                .replace("\r", "\\r"))
    return text


def contacts_between(conn: Connection, start_ms: int, end_ms: int) -> list[Contact]:
    """Every contact starting in [start, end), in no particular order (the rule needs none).

    Read through the DB-API cursor: a month is 500 k rows and SQLAlchemy's result rows
    would double the report's time. On SQLite, a range covering most of the table is read
    by a plain scan: walking the time index then the table costs twice as much.
    """
    columns = ", ".join(Contact._fields)
    where = f"started_at_ms >= {int(start_ms)} AND started_at_ms < {int(end_ms)}"
    table = interactions.name
    if conn.dialect.name == "sqlite":
        in_range = conn.exec_driver_sql(f"SELECT count(*) FROM {table} WHERE {where}").scalar()
        total = conn.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar()
        if in_range * 4 > total:
            table += " NOT INDEXED"
    cursor = conn.connection.cursor()
    try:
        cursor.execute(f"SELECT {columns} FROM {table} WHERE {where}")
        new = tuple.__new__  # Contact._make without its Python-level checks
        return [new(Contact, row) for row in cursor.fetchall()]
    finally:
        cursor.close()


def rows_between(conn: Connection, start_ms: int | None, end_ms: int | None) -> Iterator[Row]:
    """Rows in start order (all of them when no bounds), streamed for the CSV export."""
    query = sa.select(*_ROW_COLUMNS).order_by(interactions.c.started_at_ms,
                                              interactions.c.call_id)
    if start_ms is not None:
        query = query.where(interactions.c.started_at_ms >= start_ms)
    if end_ms is not None:
        query = query.where(interactions.c.started_at_ms < end_ms)
    result = conn.execution_options(stream_results=True).execute(query)
    for record in result:
        yield Row.from_values(record._mapping)


def sealed_transcript(conn: Connection, call_id: str) -> Sealed | None:
    record = conn.execute(
        sa.select(transcripts.c.key_id, transcripts.c.nonce, transcripts.c.ciphertext)
        .where(transcripts.c.call_id == call_id)
    ).first()
    if record is None:
        return None
    return Sealed(record.key_id, bytes(record.nonce), bytes(record.ciphertext))


def write_journal(conn: Connection, at_ms: int, kind: str, detail: dict) -> None:
    conn.execute(journal.insert().values(
        at_ms=at_ms, kind=kind, detail=json.dumps(detail, ensure_ascii=False, sort_keys=True)))


def read_meta(conn: Connection, name: str) -> str | None:
    return conn.execute(sa.select(meta.c.value).where(meta.c.name == name)).scalar()


def write_meta(conn: Connection, name: str, value: str) -> None:
    conn.execute(meta.insert().values(name=name, value=value))


def update_meta(conn: Connection, name: str, value: str) -> None:
    conn.execute(meta.update().where(meta.c.name == name).values(value=value))


def now_ms() -> int:
    """Wall-clock epoch milliseconds, for ``recorded_at`` and the journal (never the rule)."""
    return time.time_ns() // 1_000_000
