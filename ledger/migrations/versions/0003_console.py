"""Console: named users, login failures, sessions, the hash-chained access log and its anchors,
knowledge-base publication history.

On PostgreSQL, triggers make the access log append-only: UPDATE is always refused, DELETE
only passes for the retention purge (the session sets ``allo_caf.audit_purge`` to ``on``)
and only for entries older than six months, so recent entries cannot be removed even by a
session that sets the flag.

Revision ID: 0003
Revises: 0002
Create Date: 2025-03-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

_PG_TRIGGERS = """
CREATE FUNCTION console_audit_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE'
       AND coalesce(current_setting('allo_caf.audit_purge', true), '') = 'on'
       AND OLD.at_ms < (extract(epoch FROM now() - interval '6 months') * 1000)::bigint THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'journal des accès : % interdit (journal en ajout seul)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER console_audit_no_update BEFORE UPDATE ON console_audit_log
    FOR EACH ROW EXECUTE FUNCTION console_audit_guard();
CREATE TRIGGER console_audit_no_delete BEFORE DELETE ON console_audit_log
    FOR EACH ROW EXECUTE FUNCTION console_audit_guard();
CREATE TRIGGER console_audit_no_truncate BEFORE TRUNCATE ON console_audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION console_audit_guard();
CREATE FUNCTION console_anchor_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ancres du journal : % interdit', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER console_anchor_no_update BEFORE UPDATE ON console_audit_anchors
    FOR EACH ROW EXECUTE FUNCTION console_anchor_guard();
"""


def upgrade() -> None:
    op.create_table(
        "console_users",
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
    op.create_table(
        "console_login_failures",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("last_failure_ms", sa.BigInteger, nullable=False),
        sa.Column("locked_until_ms", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "console_sessions",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("user_id", _Id, sa.ForeignKey("console_users.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("created_at_ms", sa.BigInteger, nullable=False),
        sa.Column("last_seen_ms", sa.BigInteger, nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
    )
    op.create_index("ix_console_sessions_user", "console_sessions", ["user_id"])
    op.create_table(
        "console_audit_log",
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
    )
    op.create_index("ix_console_audit_at", "console_audit_log", ["at_ms"])
    op.create_table(
        "console_audit_anchors",
            sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("at_ms", sa.BigInteger, nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.create_index("ix_console_audit_anchors_day", "console_audit_anchors", ["day"])
    op.create_table(
        "console_audit_checkpoints",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("at_ms", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "console_publications",
        sa.Column("id", _Id, primary_key=True, autoincrement=True),
        sa.Column("at_ms", sa.BigInteger, nullable=False),
        sa.Column("user_name", sa.String(64), nullable=False),
        sa.Column("comment", sa.Text, nullable=False),
        sa.Column("kb_version", sa.String(64), nullable=True),
    )
    op.create_table(
        "console_entry_versions",
        sa.Column("id", _Id, primary_key=True, autoincrement=True),
        sa.Column("publication_id", _Id,
                  sa.ForeignKey("console_publications.id", ondelete="CASCADE"), nullable=False),
        sa.Column("entry_id", sa.String(128), nullable=False),
        sa.Column("file", sa.String(255), nullable=False),
        sa.Column("change", sa.String(16), nullable=False),
        sa.Column("content", sa.Text, nullable=False),
    )
    op.create_index("ix_console_entry_versions_entry", "console_entry_versions",
                    ["entry_id", "publication_id"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PG_TRIGGERS)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS console_anchor_no_update ON console_audit_anchors")
        for trigger in ("console_audit_no_update", "console_audit_no_delete",
                        "console_audit_no_truncate"):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger} ON console_audit_log")
        op.execute("DROP FUNCTION IF EXISTS console_audit_guard()")
        op.execute("DROP FUNCTION IF EXISTS console_anchor_guard()")
    for table in ("console_entry_versions", "console_publications", "console_audit_checkpoints",
                  "console_audit_anchors", "console_audit_log", "console_sessions",
                  "console_login_failures", "console_users"):
        op.drop_table(table)
