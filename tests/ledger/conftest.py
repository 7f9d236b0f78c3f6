"""Fixtures of the ledger tests: a SQLite ledger per test, a real throwaway PostgreSQL.

The PostgreSQL server is started once per session (initdb + pg_ctl in a temporary
directory) and each test gets its own database in it. Missing PostgreSQL binaries fail
the tests with what to install: these tests run in CI too, they are never skipped.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from ledger_builders import ledger_settings_for
from throwaway_pg import PostgresMissingError, ThrowawayPostgres

from bot.settings import Settings
from ledger.api import Ledger


@pytest.fixture(scope="session")
def pg_server() -> Iterator[ThrowawayPostgres]:
    try:
        server = ThrowawayPostgres()
    except PostgresMissingError as exc:
        pytest.fail(str(exc), pytrace=False)
    with server:
        yield server


@pytest.fixture
def pg_url(pg_server: ThrowawayPostgres) -> str:
    if not pg_server.running:  # a test that stopped it failed half-way
        pg_server.start()
    return pg_server.create_database(f"t_{uuid.uuid4().hex[:12]}")


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def settings(state_dir: Path) -> Settings:
    return ledger_settings_for(state_dir)


@pytest.fixture
def sqlite_ledger(settings: Settings) -> Iterator[Ledger]:
    ledger = Ledger.open(settings, require_database=True)
    yield ledger
    ledger.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def any_ledger(request: pytest.FixtureRequest, settings: Settings) -> Iterator[Ledger]:
    """The same test on both supported databases."""
    url = request.getfixturevalue("pg_url") if request.param == "postgresql" else None
    ledger = Ledger.open(settings, url, require_database=True)
    yield ledger
    ledger.close()


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture):
    """``run("ledger", "import", FILE)`` -> (exit code, stdout, stderr): the real
    ``voicebot`` command, in process, on a fresh state directory and no VOICEBOT_ variables."""
    from bot.cli.main import main

    for name in list(os.environ):
        if name.startswith("VOICEBOT_"):
            monkeypatch.delenv(name)
    config = tmp_path / "voicebot.yml"
    config.write_text(f"paths:\n  state_dir: {tmp_path / 'state'}\n", encoding="utf-8")

    def invoke(*argv: str) -> tuple[int, str, str]:
        code = main(["--config", str(config), *map(str, argv)])
        out, err = capsys.readouterr()
        return code, out, err

    return invoke
