"""The ledger's tables (SQLAlchemy Core). Alembic migrations create them; this mirrors the head.

Instants are integer epoch milliseconds (UTC): exact, portable between SQLite and
PostgreSQL, and what the rule computes on. Calendar days are derived from them in
Europe/Paris by the rule, never stored, so there is one source of truth. Tables carry a
``ledger_`` prefix so the ledger can share a PostgreSQL database with other services.
"""

from __future__ import annotations

import sqlalchemy as sa

VERSION_TABLE = "ledger_alembic_version"

metadata = sa.MetaData()

# Integer on SQLite so the primary key is the rowid (autoincrement); bigint elsewhere.
_Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

interactions = sa.Table(
    "ledger_interactions",
    metadata,
    sa.Column("id", _Id, primary_key=True, autoincrement=True),
    sa.Column("call_id", sa.String(255), nullable=False),
    sa.Column("channel", sa.String(8), nullable=False),
    sa.Column("caller_key", sa.String(64), nullable=True),
    sa.Column("started_at_ms", sa.BigInteger, nullable=False),
    sa.Column("ended_at_ms", sa.BigInteger, nullable=False),
    sa.Column("motif", sa.String(64), nullable=False),
    sa.Column("message_ms", sa.BigInteger, nullable=False),
    sa.Column("listened_ms", sa.BigInteger, nullable=False),
    sa.Column("handoff", sa.Boolean, nullable=False),
    sa.Column("outcome", sa.String(32), nullable=True),
    sa.Column("source", sa.String(8), nullable=False),
    sa.Column("recorded_at_ms", sa.BigInteger, nullable=False),
    sa.UniqueConstraint("call_id", name="uq_ledger_interactions_call_id"),
    sa.CheckConstraint("channel IN ('bot', 'advisor')", name="ck_interactions_channel"),
    sa.CheckConstraint("ended_at_ms >= started_at_ms", name="ck_interactions_order"),
    sa.CheckConstraint("listened_ms >= 0 AND listened_ms <= message_ms",
                       name="ck_interactions_listened"),
    sa.Index("ix_interactions_started", "started_at_ms"),
    sa.Index("ix_interactions_caller", "caller_key", "started_at_ms"),
)

transcripts = sa.Table(
    "ledger_transcripts",
    metadata,
    sa.Column("call_id", sa.String(255),
              sa.ForeignKey("ledger_interactions.call_id", ondelete="CASCADE"), primary_key=True),
    sa.Column("started_at_ms", sa.BigInteger, nullable=False),
    sa.Column("key_id", sa.String(16), nullable=False),
    sa.Column("nonce", sa.LargeBinary, nullable=False),
    sa.Column("ciphertext", sa.LargeBinary, nullable=False),
    sa.Index("ix_transcripts_started", "started_at_ms"),
)

recordings = sa.Table(
    "ledger_recordings",
    metadata,
    sa.Column("call_id", sa.String(255),
              sa.ForeignKey("ledger_interactions.call_id", ondelete="CASCADE"), primary_key=True),
    sa.Column("started_at_ms", sa.BigInteger, nullable=False),
    sa.Column("path", sa.Text, nullable=False),
    sa.Index("ix_recordings_started", "started_at_ms"),
)

orders = sa.Table(
    "ledger_orders",
    metadata,
    sa.Column("id", _Id, primary_key=True, autoincrement=True),
    sa.Column("day", sa.String(10), nullable=False),
    sa.Column("ordered_ms", sa.BigInteger, nullable=False),
    sa.Column("firm", sa.Boolean, nullable=False),
    sa.Column("recorded_at_ms", sa.BigInteger, nullable=False),
    sa.Index("ix_orders_day", "day"),
)
"""Append-only: the order of a day is its latest row; earlier rows are the audit trail."""

journal = sa.Table(
    "ledger_journal",
    metadata,
    sa.Column("id", _Id, primary_key=True, autoincrement=True),
    sa.Column("at_ms", sa.BigInteger, nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("detail", sa.Text, nullable=False),
)
"""What was done to the ledger besides calls: imports, purges, replays, transcript reads."""

meta = sa.Table(
    "ledger_meta",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

closed_months = sa.Table(
    "ledger_closed_months",
    metadata,
    sa.Column("month", sa.String(7), primary_key=True),
    sa.Column("closed_at_ms", sa.BigInteger, nullable=False),
    sa.Column("closed_by", sa.String(64), nullable=False),
    sa.Column("rule3", sa.String(16), nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("extraction", sa.Text, nullable=False),
)
"""A month's SC3.2 extraction as billed (CSV text) and its SHA-256; once here, imports and
spool replays that would change the month's figures are refused (ledger/closing.py)."""

call_stats = sa.Table(
    "ledger_call_stats",
    metadata,
    sa.Column("call_id", sa.String(255),
              sa.ForeignKey("ledger_interactions.call_id", ondelete="CASCADE"), primary_key=True),
    sa.Column("started_at_ms", sa.BigInteger, nullable=False),
    sa.Column("turns", sa.Integer, nullable=False),
    sa.Column("misunderstood_turns", sa.Integer, nullable=False),
    sa.Column("reply_ms", sa.Text, nullable=False),
    sa.Column("no_input_prompts", sa.Integer, nullable=False),
    sa.Column("frustration_words", sa.Integer, nullable=False),
    sa.Index("ix_call_stats_started", "started_at_ms"),
)
"""Per call, for supervisors (migration 0005): ``reply_ms`` is each turn's reply time in
milliseconds, comma-separated, in turn order. Nothing personal."""
