"""The access log (« journal des accès »): who read or changed what, when, from where.

``record(request, user, action, obj, outcome)`` is what pages call; ``AuditLog`` appends
hash-chained entries (console/audit_chain.py) one writer at a time (SQLite's write lock,
a PostgreSQL advisory lock), verifies the chain, writes the daily anchor and purges entries
past retention behind a checkpoint. Entry numbers are contiguous by construction (taken
under the lock), so a missing number is a deletion.
"""

from __future__ import annotations

import csv
import getpass
import io
import logging
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from console.audit_chain import GENESIS, PARIS, Anchor, Entry, chain_problems, format_ms
from ledger.retention import retention_cutoff
from ledger.schema import console_audit_anchors as anchors_t
from ledger.schema import console_audit_checkpoints as checkpoints_t
from ledger.schema import console_audit_log as log_t

if TYPE_CHECKING:
    from bot.settings import Settings

log = logging.getLogger(__name__)

_PG_AUDIT_LOCK = 0x1ED6E5
"""pg_advisory_xact_lock key: one appender at a time, so numbers and links stay in order."""
MIN_RETENTION_MONTHS = 6
"""The tender's six months; the PostgreSQL trigger refuses deleting anything younger."""
CSV_COLUMNS = ("numero", "horodatage", "utilisateur", "role", "action", "objet",
               "adresse_source", "resultat", "empreinte_precedente", "empreinte")
SYSTEM_ROLE = "systeme"


@dataclass(frozen=True)
class Verdict:
    ok: bool
    problems: list[str]
    entries: int
    first_seq: int | None
    last_seq: int | None


class AuditLog:
    """One per process, over the ledger's engine."""

    def __init__(self, engine: Engine, anchor_file: Path, retention_months: int = 6,
                 clock_ms: Callable[[], int] | None = None):
        self.engine = engine
        self.clock_ms = clock_ms or (lambda: int(time.time() * 1000))
        """Instant of new entries; tests pass a past clock to write entries due for purge."""
        self.anchor_file = anchor_file
        self.retention_months = max(retention_months, MIN_RETENTION_MONTHS)

    @classmethod
    def from_settings(cls, settings: Settings, engine: Engine) -> AuditLog:
        options = settings.console
        anchor_file = options.audit_anchor_file or settings.paths.state_dir / "audit" / \
            "anchors.txt"
        return cls(engine, anchor_file, options.audit_retention_months)

    # --- writing ------------------------------------------------------------------------------
    def append(self, user_name: str, role: str, action: str, obj: str, source: str,
               outcome: str = "ok") -> Entry:
        with self.engine.begin() as conn:
            return self._append(conn, user_name, role, action, obj, source, outcome)

    def _append(self, conn: Connection, user_name: str, role: str, action: str, obj: str,
                source: str, outcome: str) -> Entry:
        self._lock(conn)
        last = conn.execute(sa.select(log_t.c.seq, log_t.c.hash)
                            .order_by(log_t.c.seq.desc()).limit(1)).first()
        if last is None:
            checkpoint = self._checkpoint(conn)
            seq, prev = (checkpoint[0] + 1, checkpoint[1]) if checkpoint else (1, GENESIS)
        else:
            seq, prev = last.seq + 1, last.hash
        entry = Entry(seq=seq, at_ms=self.clock_ms(), user_name=user_name[:64],
                      role=role[:16], action=action[:64], object=obj, source=source[:64],
                      outcome=outcome[:32], prev_hash=prev)
        entry = Entry(**{**entry.__dict__, "hash": entry.computed_hash()})
        conn.execute(log_t.insert().values(**entry.__dict__))
        return entry

    @staticmethod
    def _lock(conn: Connection) -> None:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_AUDIT_LOCK})
        # SQLite: the engine's BEGIN IMMEDIATE already holds the write lock.

    @staticmethod
    def _checkpoint(conn: Connection) -> tuple[int, str] | None:
        row = conn.execute(sa.select(checkpoints_t.c.seq, checkpoints_t.c.hash)
                           .order_by(checkpoints_t.c.seq.desc()).limit(1)).first()
        return (row.seq, row.hash) if row else None

    # --- reading ------------------------------------------------------------------------------
    def entries(self, start_ms: int | None = None, end_ms: int | None = None,
                user: str = "", action: str = "", text: str = "",
                limit: int | None = None, newest_first: bool = False) -> list[Entry]:
        query = sa.select(log_t)
        if start_ms is not None:
            query = query.where(log_t.c.at_ms >= start_ms)
        if end_ms is not None:
            query = query.where(log_t.c.at_ms < end_ms)
        if user:
            query = query.where(log_t.c.user_name == user)
        if action:
            query = query.where(log_t.c.action == action)
        if text:
            query = query.where(log_t.c.object.contains(text, autoescape=True))
        query = query.order_by(log_t.c.seq.desc() if newest_first else log_t.c.seq)
        if limit:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            return [Entry(**row._mapping) for row in conn.execute(query)]

    def actions(self) -> list[str]:
        with self.engine.connect() as conn:
            return list(conn.execute(sa.select(log_t.c.action).distinct()
                                     .order_by(log_t.c.action)).scalars())

    def _iter_all(self, conn: Connection) -> Iterator[Entry]:
        result = conn.execution_options(stream_results=True).execute(
            sa.select(log_t).order_by(log_t.c.seq))
        for row in result:
            yield Entry(**row._mapping)

    # --- verification -------------------------------------------------------------------------
    def verify(self) -> Verdict:
        with self.engine.connect() as conn:
            checkpoint = self._checkpoint(conn)
            start_seq, start_hash = (checkpoint[0] + 1, checkpoint[1]) if checkpoint \
                else (1, GENESIS)
            table_anchors = [Anchor(r.seq, r.hash, r.day, "base") for r in conn.execute(
                sa.select(anchors_t).order_by(anchors_t.c.seq))]
            file_anchors = self._file_anchors()
            problems = []
            seen = {a.seq: a for a in table_anchors}
            for anchor in file_anchors:
                stored = seen.get(anchor.seq)
                if stored is not None and stored.hash != anchor.hash:
                    problems.append(f"l'ancre du {anchor.day} (entrée n° {anchor.seq}) "
                                    "diffère entre la base et le fichier d'ancres.")
            entries = list(self._iter_all(conn))
            # Anchors of purged entries cannot be checked (only the checkpoint's).
            usable = [a for a in (*file_anchors, *table_anchors) if a.seq >= start_seq - 1
                      and not (a.seq == start_seq - 1 and checkpoint is None)]
            problems = chain_problems(entries, start_seq, start_hash, usable) + problems
        return Verdict(not problems, problems, len(entries),
                       entries[0].seq if entries else None, entries[-1].seq if entries else None)

    def _file_anchors(self) -> list[Anchor]:
        if not self.anchor_file.exists():
            return []
        anchors = []
        for line in self.anchor_file.read_text(encoding="utf-8").splitlines():
            parts = line.split()
            if len(parts) >= 3 and parts[1].isdigit():
                anchors.append(Anchor(int(parts[1]), parts[2], parts[0], str(self.anchor_file)))
        return anchors

    # --- daily maintenance --------------------------------------------------------------------
    def anchor(self, now: datetime | None = None, force: bool = False) -> Anchor | None:
        """Write the latest entry's hash as today's anchor (table and file); once a day unless
        ``force``. None when there is nothing new to anchor."""
        now = now or datetime.now(PARIS)
        day = now.astimezone(PARIS).date().isoformat()
        with self.engine.begin() as conn:
            self._lock(conn)
            if not force and conn.execute(sa.select(anchors_t.c.seq)
                                          .where(anchors_t.c.day == day)).first():
                return None
            last = conn.execute(sa.select(log_t.c.seq, log_t.c.hash)
                                .order_by(log_t.c.seq.desc()).limit(1)).first()
            if last is None or conn.execute(sa.select(anchors_t.c.seq)
                                            .where(anchors_t.c.seq == last.seq)).first():
                return None
            conn.execute(anchors_t.insert().values(seq=last.seq, day=day,
                                                   at_ms=int(now.timestamp() * 1000),
                                                   hash=last.hash))
            self.anchor_file.parent.mkdir(parents=True, exist_ok=True)
            with self.anchor_file.open("a", encoding="utf-8") as out:
                out.write(f"{day} {last.seq} {last.hash}\n")
                out.flush()
                os.fsync(out.fileno())
        return Anchor(last.seq, last.hash, day, str(self.anchor_file))

    def purge(self, today: date | None = None) -> int:
        """Delete entries older than the retention; the chain then starts at a checkpoint
        (the last purged entry's number and hash), itself recorded as a new entry."""
        today = today or datetime.now(PARIS).date()
        cutoff = retention_cutoff(today, self.retention_months)
        cutoff_ms = int(datetime.combine(cutoff, datetime.min.time(), PARIS).timestamp() * 1000)
        with self.engine.begin() as conn:
            self._lock(conn)
            first_kept = conn.execute(sa.select(sa.func.min(log_t.c.seq))
                                      .where(log_t.c.at_ms >= cutoff_ms)).scalar()
            old = sa.select(log_t.c.seq, log_t.c.hash).where(log_t.c.at_ms < cutoff_ms)
            if first_kept is not None:
                old = old.where(log_t.c.seq < first_kept)
            last_old = conn.execute(old.order_by(log_t.c.seq.desc()).limit(1)).first()
            if last_old is None:
                return 0
            count = conn.execute(sa.select(sa.func.count()).select_from(log_t)
                                 .where(log_t.c.seq <= last_old.seq)).scalar()
            conn.execute(checkpoints_t.insert().values(seq=last_old.seq, hash=last_old.hash,
                                                       at_ms=self.clock_ms()))
            if conn.dialect.name == "postgresql":
                conn.execute(sa.text("SELECT set_config('allo_caf.audit_purge', 'on', true)"))
            conn.execute(log_t.delete().where(log_t.c.seq <= last_old.seq))
            if conn.dialect.name == "postgresql":
                conn.execute(sa.text("SELECT set_config('allo_caf.audit_purge', 'off', true)"))
            conn.execute(anchors_t.delete().where(anchors_t.c.seq < last_old.seq))
            self._append(conn, "voicebot", SYSTEM_ROLE, "purge_journal",
                         f"{count} entrée(s) antérieure(s) au {cutoff.isoformat()} supprimée(s) ; "
                         f"point de reprise : entrée n° {last_old.seq}, empreinte "
                         f"{last_old.hash}", "local", "ok")
        log.info("access log: %d entries before %s purged (checkpoint %d)", count, cutoff,
                 last_old.seq)
        return int(count)

    def daily(self, now: datetime | None = None) -> None:
        """Anchor then purge; what ``voicebot serve`` and the console run once a day."""
        now = now or datetime.now(PARIS)
        self.purge(now.astimezone(PARIS).date())
        self.anchor(now)

    # --- export -------------------------------------------------------------------------------
    def export_csv(self, out: TextIO, start: date, end: date) -> int:
        """Entries from ``start`` to ``end`` inclusive (Paris days) as CSV; returns the count."""
        start_ms, end_ms = day_bounds_ms(start, end)
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        count = 0
        for e in self.entries(start_ms, end_ms):
            writer.writerow(entry_row(e))
            count += 1
        return count


def entry_row(e: Entry) -> list[Any]:
    return [e.seq, format_ms(e.at_ms), e.user_name, e.role, e.action, e.object, e.source,
            e.outcome, e.prev_hash, e.hash]


def day_bounds_ms(start: date, end: date) -> tuple[int, int]:
    start_ms = int(datetime.combine(start, datetime.min.time(), PARIS).timestamp() * 1000)
    end_ms = int(datetime.combine(end + timedelta(days=1), datetime.min.time(),
                                  PARIS).timestamp() * 1000)
    return start_ms, end_ms


def csv_text(audit: AuditLog, start: date, end: date) -> str:
    out = io.StringIO()
    audit.export_csv(out, start, end)
    return out.getvalue()


def record(request: Any, user: Any, action: str, obj: str, outcome: str = "ok") -> Entry:
    """Log one access from a console request: ``user`` is the logged-in ``User`` (or the name
    typed at a failed login), ``obj`` what was read or changed."""
    audit: AuditLog = request.app.state.audit
    name = getattr(user, "name", None) or str(user or "")
    role = getattr(user, "role", "") or ""
    source = request.client.host if request.client else "inconnue"
    return audit.append(name, role, action, obj, source, outcome)


def cli_actor() -> str:
    """Who runs a command on the server, for entries written by the CLI."""
    try:
        return f"shell:{getpass.getuser()}"
    except (KeyError, OSError):
        return "shell"
