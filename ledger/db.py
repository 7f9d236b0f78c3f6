"""Engines for SQLite (WAL) and PostgreSQL, and the Alembic upgrade run from code.

SQLite write transactions start with ``BEGIN IMMEDIATE``: a transaction that reads then
writes (an import checks call ids first) takes the write lock up front and waits for it
(busy timeout) instead of failing half-way. Reads run outside transactions, so a report
never blocks a call's write. Billing rows are fsync'd (``synchronous=FULL``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError

from bot.errors import SettingsError
from ledger.options import LedgerOptions
from ledger.schema import VERSION_TABLE

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
SQLITE_FILE = "ledger.sqlite"
_PG_MIGRATION_LOCK = 0x1ED6E4  # pg_advisory_xact_lock key: one migrator at a time


def resolve_url(options: LedgerOptions, state_dir: Path, db_url: str | None = None) -> str:
    """The URL to use: ``--db``, else the settings (``VOICEBOT_DB_URL``), else the state dir."""
    url = db_url or options.db_url
    if url:
        return url
    return f"sqlite:///{state_dir / SQLITE_FILE}"


def create_engine(url: str, options: LedgerOptions) -> Engine:
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise SettingsError(
            f"Adresse de base de données invalide : {redact(url)} "
            "(exemples : sqlite:////chemin/ledger.sqlite, postgresql://utilisateur@hôte/base)."
        ) from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(parsed, options)
    if backend == "postgresql":
        try:
            return sa.create_engine(
                parsed,
                pool_pre_ping=True,
                connect_args={"connect_timeout": options.connect_timeout_s},
            )
        except ModuleNotFoundError:
            raise SettingsError("PostgreSQL : le pilote psycopg2 n'est pas installé.") from None
    raise SettingsError(
        f"Base de données « {backend} » non prise en charge : utilisez sqlite ou postgresql."
    )


def _sqlite_engine(url: sa.engine.URL, options: LedgerOptions) -> Engine:
    if url.database and url.database != ":memory:":
        path = Path(url.database)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Pseudonyms and sealed transcripts: readable by the service's user only. SQLite
        # gives its -wal and -shm files the database file's mode.
        os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))
    engine = sa.create_engine(
        url, connect_args={"timeout": options.sqlite_busy_timeout_ms / 1000}
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:  # noqa: ANN001
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves, below
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA cache_size=-65536")  # 64 MiB: a month of indexes fits
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection) -> None:  # noqa: ANN001
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest migration (a no-op when it is already there)."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"),
                               {"k": _PG_MIGRATION_LOCK})
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def head_revision() -> str:
    """The newest migration's revision: what ``upgrade`` brings a database to."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return ScriptDirectory.from_config(config).get_current_head()


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        return context.get_current_revision()


def redact(url: str) -> str:
    """The URL without its password, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(illisible)"


def _revision(message: str) -> None:
    """Write a new migration file (for developers; needs a database at head to compare)."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    command.revision(config, message=message)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "revision":
        _revision(sys.argv[2])
    else:
        print("usage: python -m ledger.db revision MESSAGE", file=sys.stderr)
        sys.exit(2)
