"""Ledger trust: closed months (the billed extraction, frozen with its hash).

Revision ID: 0002
Revises: 0001
Create Date: 2025-02-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ledger_closed_months",
        sa.Column("month", sa.String(7), primary_key=True),
        sa.Column("closed_at_ms", sa.BigInteger, nullable=False),
        sa.Column("closed_by", sa.String(64), nullable=False),
        sa.Column("rule3", sa.String(16), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("extraction", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("ledger_closed_months")
