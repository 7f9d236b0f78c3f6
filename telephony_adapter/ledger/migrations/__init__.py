"""Alembic migrations of the ledger, run from code by ``telephony_adapter.ledger.db.upgrade``."""
