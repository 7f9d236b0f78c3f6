"""Call statistics: per call, what supervisors' dashboards and flags need beyond billing.

Revision ID: 0005
Revises: 0004
Create Date: 2025-03-15

Turns, misunderstood turns, each reply time, caller silences re-prompted and frustration
words counted at the end of the call by the call path; nothing personal (no words, no
number). A table of its own keyed by ``call_id``: billing rows stay as they were, and the
interaction's deletion takes its statistics with it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ledger_call_stats",
        sa.Column("call_id", sa.String(255),
                  sa.ForeignKey("ledger_interactions.call_id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("started_at_ms", sa.BigInteger, nullable=False),
        sa.Column("turns", sa.Integer, nullable=False),
        sa.Column("misunderstood_turns", sa.Integer, nullable=False),
        sa.Column("reply_ms", sa.Text, nullable=False),
        sa.Column("no_input_prompts", sa.Integer, nullable=False),
        sa.Column("frustration_words", sa.Integer, nullable=False),
    )
    op.create_index("ix_call_stats_started", "ledger_call_stats", ["started_at_ms"])


def downgrade() -> None:
    op.drop_index("ix_call_stats_started", table_name="ledger_call_stats")
    op.drop_table("ledger_call_stats")
