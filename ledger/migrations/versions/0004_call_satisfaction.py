"""Satisfaction: the caller's 1-5 key press at the end of a call, one row per call.

Revision ID: 0004
Revises: 0003
Create Date: 2025-03-01

A table of its own, keyed by ``call_id``, rather than a column on the interactions: most
calls have no answer (the question is optional, and a caller may hang up), the billing
rows stay as they were, and the retention purge follows the interaction by cascade.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ledger_call_satisfaction",
        sa.Column("call_id", sa.String(255),
                  sa.ForeignKey("ledger_interactions.call_id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("started_at_ms", sa.BigInteger, nullable=False),
        sa.Column("score", sa.SmallInteger, nullable=True),
        sa.CheckConstraint("score IS NULL OR (score >= 1 AND score <= 5)",
                           name="ck_call_satisfaction_score"),
    )
    op.create_index("ix_call_satisfaction_started", "ledger_call_satisfaction",
                    ["started_at_ms"])


def downgrade() -> None:
    op.drop_index("ix_call_satisfaction_started", table_name="ledger_call_satisfaction")
    op.drop_table("ledger_call_satisfaction")
