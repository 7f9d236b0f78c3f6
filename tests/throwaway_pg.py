"""A throwaway PostgreSQL server in a temporary directory, for the tests and the benchmark.

initdb + pg_ctl from the Debian ``postgresql`` package, listening only on a Unix socket
inside its own directory (no port clash, nothing reachable from outside), trust auth for
the role ``ledger``. PostgreSQL refuses to run as root, so as root the server runs as the
``postgres`` system user and the directory is handed to it. Missing binaries are an error
that says what to install, never a silent skip.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import sqlalchemy as sa

ROLE = "ledger"
PORT = 5432  # only names the socket file, in a private directory
SETUP_HINT = ("lancez scripts/setup.sh (paquet Debian postgresql : "
              "apt-get install postgresql)")


class PostgresMissingError(RuntimeError):
    """PostgreSQL's server binaries are not installed here."""


def find_bindir(search_path: str | None = None,
                debian_root: Path = Path("/usr/lib/postgresql")) -> Path:
    """Directory holding initdb and pg_ctl: on PATH, else Debian's versioned directories."""
    on_path = shutil.which("initdb", path=search_path)
    if on_path and shutil.which("pg_ctl", path=search_path):
        return Path(on_path).resolve().parent
    candidates = sorted(debian_root.glob("*/bin"),
                        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
                        reverse=True)
    for bindir in candidates:
        if (bindir / "initdb").exists() and (bindir / "pg_ctl").exists():
            return bindir
    raise PostgresMissingError(f"PostgreSQL introuvable (initdb, pg_ctl) : {SETUP_HINT}.")


class ThrowawayPostgres:
    """``with ThrowawayPostgres() as pg: url = pg.create_database("t1")``."""

    def __init__(self, *, fsync: bool = False):
        self.bindir = find_bindir()
        self.fsync = fsync
        self.directory = Path(tempfile.mkdtemp(prefix="ledger-pg-"))
        self.data = self.directory / "data"
        self.log = self.directory / "server.log"
        self._user: pwd.struct_passwd | None = None
        if os.geteuid() == 0:
            try:
                self._user = pwd.getpwnam("postgres")
            except KeyError:
                shutil.rmtree(self.directory, ignore_errors=True)
                raise PostgresMissingError(
                    f"utilisateur système « postgres » absent (PostgreSQL refuse de tourner en "
                    f"root) : {SETUP_HINT}.") from None
            os.chown(self.directory, self._user.pw_uid, self._user.pw_gid)
        self.running = False

    # --- lifecycle -------------------------------------------------------------------------
    def __enter__(self) -> ThrowawayPostgres:
        try:
            self.init()
            self.start()
        except BaseException:
            self.cleanup()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()

    def init(self) -> None:
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", ROLE, "-E", "UTF8",
                  "--locale=C", "--no-sync")

    def start(self) -> None:
        options = f"-k {self.directory} -p {PORT} -c listen_addresses=''"
        if not self.fsync:
            options += " -F"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60",
                  "-o", options, "start")
        self.running = True

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")
        self.running = False

    def cleanup(self) -> None:
        if self.running:
            try:
                self.stop("immediate")
            except subprocess.CalledProcessError:
                pass
        shutil.rmtree(self.directory, ignore_errors=True)

    # --- databases ---------------------------------------------------------------------------
    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg2://{ROLE}@/{database}?host={self.directory}&port={PORT}"

    def create_database(self, name: str) -> str:
        engine = sa.create_engine(self.url(), isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        finally:
            engine.dispose()
        return self.url(name)

    # --- helpers -----------------------------------------------------------------------------
    def _run(self, program: str, *args: str) -> None:
        kwargs: dict = {}
        if self._user is not None:
            kwargs = {"user": self._user.pw_uid, "group": self._user.pw_gid, "extra_groups": []}
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C",
               "HOME": str(self.directory)}
        result = subprocess.run([str(self.bindir / program), *args], cwd=self.directory,
                                env=env, capture_output=True, text=True, timeout=120, **kwargs)
        if result.returncode != 0:
            log_tail = self.log.read_text()[-2000:] if self.log.exists() else ""
            raise subprocess.CalledProcessError(
                result.returncode, program, result.stdout, result.stderr + log_tail)
