"""Initial ledger: interactions, transcripts, recordings, orders, journal, meta.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "ledger_interactions",
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
    )
    op.create_index("ix_interactions_started", "ledger_interactions", ["started_at_ms"])
    op.create_index("ix_interactions_caller", "ledger_interactions",
                    ["caller_key", "started_at_ms"])

    op.create_table(
        "ledger_transcripts",
        sa.Column("call_id", sa.String(255),
                  sa.ForeignKey("ledger_interactions.call_id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("started_at_ms", sa.BigInteger, nullable=False),
        sa.Column("key_id", sa.String(16), nullable=False),
        sa.Column("nonce", sa.LargeBinary, nullable=False),
        sa.Column("ciphertext", sa.LargeBinary, nullable=False),
    )
    op.create_index("ix_transcripts_started", "ledger_transcripts", ["started_at_ms"])

    op.create_table(
        "ledger_recordings",
        sa.Column("call_id", sa.String(255),
                  sa.ForeignKey("ledger_interactions.call_id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("started_at_ms", sa.BigInteger, nullable=False),
        sa.Column("path", sa.Text, nullable=False),
    )
    op.create_index("ix_recordings_started", "ledger_recordings", ["started_at_ms"])

    op.create_table(
        "ledger_orders",
        sa.Column("id", _Id, primary_key=True, autoincrement=True),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("ordered_ms", sa.BigInteger, nullable=False),
        sa.Column("firm", sa.Boolean, nullable=False),
        sa.Column("recorded_at_ms", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_orders_day", "ledger_orders", ["day"])

    op.create_table(
        "ledger_journal",
        sa.Column("id", _Id, primary_key=True, autoincrement=True),
        sa.Column("at_ms", sa.BigInteger, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
    )

    op.create_table(
        "ledger_meta",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )


def downgrade() -> None:
    for table in ("ledger_meta", "ledger_journal", "ledger_orders", "ledger_recordings",
                  "ledger_transcripts", "ledger_interactions"):
        op.drop_table(table)
