"""Alembic environment: always driven from code with an open connection (no alembic.ini).

To write a new revision: ``.venv/bin/python -m ledger.db revision "message"``.
"""

from __future__ import annotations

from alembic import context

from ledger.schema import VERSION_TABLE, metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table=VERSION_TABLE,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
