"""Alembic migrations of the ledger, run from code by ``ledger.db.upgrade``."""
