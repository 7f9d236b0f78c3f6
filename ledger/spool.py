"""Append-only local spool: where a call's ledger event goes when the database is unreachable.

One JSON object per line, written with a single ``write`` on an ``O_APPEND`` descriptor and
fsync'd before ``append`` returns, so an event the call was told is safe survives a crash.
Events hold the row as stored (pseudonym, sealed transcript), never the raw number.

Replay claims the active file by renaming it ``pending-<ns>.jsonl`` (new events go to a
fresh file meanwhile), inserts its events idempotently by ``call_id``, and deletes the file
only after the database committed. A crash in between replays the file again: the events
already inserted are recognised by their ``call_id`` and not counted twice.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

ACTIVE = "spool.jsonl"
PENDING_GLOB = "pending-*.jsonl"
DAMAGED = "damaged.jsonl"
CONFLICTS = "conflicts.jsonl"
REJECTED = "rejected.jsonl"
WRONG_KEY = "wrong-key.jsonl"
"""Events pseudonymised under another deployment's key: never linked, for a person."""
FORMAT_VERSION = 1


class Spool:
    """A directory of fsync'd JSON-lines files, safe across threads and processes."""

    def __init__(self, directory: Path):
        self.directory = directory
        self._thread_lock = threading.Lock()

    # --- writing -----------------------------------------------------------------------
    def append(self, event: dict[str, Any]) -> None:
        """Write one event durably; raises OSError only if the disk itself fails."""
        self._append_line(ACTIVE, {"v": FORMAT_VERSION, **event})

    def set_aside(self, name: str, event: dict[str, Any], reason: str) -> None:
        """Keep an event a person must look at (conflict, rejected, damaged), with why."""
        self._append_line(name, {"v": FORMAT_VERSION, "reason": reason, **event})

    def _append_line(self, name: str, event: dict[str, Any]) -> None:
        data = (json.dumps(event, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
        with self._locked("spool.lock"):
            path = self.directory / name
            created = not path.exists()
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                size = os.fstat(fd).st_size
                if size and _last_byte(path, size) != b"\n":
                    data = b"\n" + data  # a torn line from a crash stays on its own line
                os.write(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
            if created:
                _fsync_dir(self.directory)

    # --- replaying ----------------------------------------------------------------------
    def has_pending(self) -> bool:
        return (self.directory / ACTIVE).exists() or any(self.directory.glob(PENDING_GLOB))

    @contextmanager
    def replaying(self) -> Iterator[list[Path] | None]:
        """Claim everything spooled so far; yields None when another replay is running."""
        if not self.directory.exists():
            yield []
            return
        lock_fd = self._open_lock("replay.lock")
        try:
            try:
                fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield None
                return
            with self._locked("spool.lock"):
                active = self.directory / ACTIVE
                if active.exists():
                    active.rename(self.directory / f"pending-{time.time_ns()}.jsonl")
                    _fsync_dir(self.directory)
            yield sorted(self.directory.glob(PENDING_GLOB))
        finally:
            os.close(lock_fd)

    def read(self, path: Path) -> list[dict[str, Any]]:
        """The events of a claimed file; torn or unreadable lines are set aside, not lost."""
        events = []
        with path.open("rb") as handle:
            for number, raw in enumerate(handle, start=1):
                if not raw.strip():
                    continue
                try:
                    event = json.loads(raw)
                    if not isinstance(event, dict) or event.get("v") != FORMAT_VERSION:
                        raise ValueError("unknown event format")
                except ValueError:
                    log.error("spool %s line %d unreadable, kept in %s", path.name, number, DAMAGED)
                    self.set_aside(DAMAGED, {"file": path.name, "line": number,
                                             "raw": raw.decode("utf-8", "replace")},
                                   "unreadable line")
                    continue
                events.append(event)
        return events

    def done(self, path: Path) -> None:
        """The database committed every event of ``path``: forget it."""
        path.unlink(missing_ok=True)
        _fsync_dir(self.directory)

    # --- helpers -----------------------------------------------------------------------
    def _open_lock(self, name: str) -> int:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        return os.open(self.directory / name, os.O_RDWR | os.O_CREAT, 0o600)

    @contextmanager
    def _locked(self, name: str) -> Iterator[None]:
        with self._thread_lock:
            fd = self._open_lock(name)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)


def _last_byte(path: Path, size: int) -> bytes:
    with path.open("rb") as handle:
        handle.seek(size - 1)
        return handle.read(1)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
