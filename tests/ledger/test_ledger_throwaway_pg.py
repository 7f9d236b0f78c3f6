"""The throwaway PostgreSQL the tests and the benchmark use: found, or a clear failure."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from throwaway_pg import PostgresMissingError, find_bindir


def test_missing_postgresql_says_to_run_the_setup_script(tmp_path):
    with pytest.raises(PostgresMissingError) as caught:
        find_bindir(search_path=str(tmp_path), debian_root=tmp_path)
    assert str(caught.value) == (
        "PostgreSQL introuvable (initdb, pg_ctl) : lancez scripts/setup.sh (paquet Debian "
        "postgresql : apt-get install postgresql).")


def test_newest_debian_version_is_preferred(tmp_path):
    for version in ("13", "15", "9"):
        bindir = tmp_path / version / "bin"
        bindir.mkdir(parents=True)
        for program in ("initdb", "pg_ctl"):
            (bindir / program).touch()
    assert find_bindir(search_path="", debian_root=tmp_path) == tmp_path / "15" / "bin"


def test_server_listens_only_on_its_private_socket(pg_server, pg_url):
    engine = sa.create_engine(pg_url)
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SHOW listen_addresses").scalar() == ""
            assert conn.exec_driver_sql("SHOW unix_socket_directories").scalar() == \
                str(pg_server.directory)
    finally:
        engine.dispose()
