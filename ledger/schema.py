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

call_satisfaction = sa.Table(
    "ledger_call_satisfaction",
    metadata,
    sa.Column("call_id", sa.String(255),
              sa.ForeignKey("ledger_interactions.call_id", ondelete="CASCADE"), primary_key=True),
    sa.Column("started_at_ms", sa.BigInteger, nullable=False),
    sa.Column("score", sa.SmallInteger, nullable=True),
    sa.CheckConstraint("score IS NULL OR (score >= 1 AND score <= 5)",
                       name="ck_call_satisfaction_score"),
    sa.Index("ix_call_satisfaction_started", "started_at_ms"),
)
"""The satisfaction question at the end of a call (migration 0004): a row when it was asked,
``score`` the key pressed, 1 (not at all satisfied) to 5 (very), NULL when none was."""

# --- the console (migration 0003) ------------------------------------------------------------
console_users = sa.Table(
    "console_users",
    metadata,
    sa.Column("id", _Id, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("password_hash", sa.Text, nullable=False),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("created_at_ms", sa.BigInteger, nullable=False),
    sa.Column("password_changed_at_ms", sa.BigInteger, nullable=False),
    sa.Column("last_login_at_ms", sa.BigInteger, nullable=True),
    sa.UniqueConstraint("name", name="uq_console_users_name"),
    sa.CheckConstraint(
        "role IN ('editeur', 'superviseur', 'facturation', 'auditeur', 'admin')",
        name="ck_console_users_role"),
)
"""Named console users; passwords as argon2id hashes (console/passwords.py)."""

console_login_failures = sa.Table(
    "console_login_failures",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("failures", sa.Integer, nullable=False),
    sa.Column("last_failure_ms", sa.BigInteger, nullable=False),
    sa.Column("locked_until_ms", sa.BigInteger, nullable=False),
)
"""Failed logins in a row per typed name (known or not, so a lockout reveals no account)."""

console_sessions = sa.Table(
    "console_sessions",
    metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("user_id", _Id, sa.ForeignKey("console_users.id", ondelete="CASCADE"),
              nullable=False),
    sa.Column("created_at_ms", sa.BigInteger, nullable=False),
    sa.Column("last_seen_ms", sa.BigInteger, nullable=False),
    sa.Column("source", sa.String(64), nullable=False),
    sa.Index("ix_console_sessions_user", "user_id"),
)
"""Server-side sessions: the cookie holds a random token, the table only its SHA-256."""

console_audit_log = sa.Table(
    "console_audit_log",
    metadata,
    sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("at_ms", sa.BigInteger, nullable=False),
    sa.Column("user_name", sa.String(64), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("object", sa.Text, nullable=False),
    sa.Column("source", sa.String(64), nullable=False),
    sa.Column("outcome", sa.String(32), nullable=False),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.Index("ix_console_audit_at", "at_ms"),
)
"""The access log: append-only, each entry's ``hash`` covers its fields and ``prev_hash``
(console/audit_chain.py); PostgreSQL triggers refuse UPDATE and DELETE (migration 0003)."""

console_audit_anchors = sa.Table(
    "console_audit_anchors",
    metadata,
    sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("day", sa.String(10), nullable=False),
    sa.Column("at_ms", sa.BigInteger, nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.Index("ix_console_audit_anchors_day", "day"),
)
"""The latest entry's hash, once a day (also appended to a file outside the database)."""

console_audit_checkpoints = sa.Table(
    "console_audit_checkpoints",
    metadata,
    sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.Column("at_ms", sa.BigInteger, nullable=False),
)
"""After a retention purge: the last purged entry's number and hash, where the kept chain
starts (also written as an entry of the chain itself)."""

console_publications = sa.Table(
    "console_publications",
    metadata,
    sa.Column("id", _Id, primary_key=True, autoincrement=True),
    sa.Column("at_ms", sa.BigInteger, nullable=False),
    sa.Column("user_name", sa.String(64), nullable=False),
    sa.Column("comment", sa.Text, nullable=False),
    sa.Column("kb_version", sa.String(64), nullable=True),
)
"""Knowledge-base publications from the console: who, when, with which comment."""

console_entry_versions = sa.Table(
    "console_entry_versions",
    metadata,
    sa.Column("id", _Id, primary_key=True, autoincrement=True),
    sa.Column("publication_id", _Id,
              sa.ForeignKey("console_publications.id", ondelete="CASCADE"), nullable=False),
    sa.Column("entry_id", sa.String(128), nullable=False),
    sa.Column("file", sa.String(255), nullable=False),
    sa.Column("change", sa.String(16), nullable=False),
    sa.Column("content", sa.Text, nullable=False),
    sa.Index("ix_console_entry_versions_entry", "entry_id", "publication_id"),
)
"""One entry as published (its YAML text): history, differences and restore."""
