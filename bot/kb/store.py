"""The published knowledge base, as the running bot reads it: swapped atomically,
reloaded on change.

``voicebot kb publish`` writes one JSON snapshot (the validated knowledge base plus the path
of the model trained for it) with write-to-temp, fsync, rename. The running bot only ever
reads that file, never the editors' YAML, so a bad edit cannot reach a caller; a stat per
turn notices a new snapshot, and a snapshot that fails to load leaves the previous one live.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bot.errors import NotPublishedError
from bot.kb.model import KnowledgeBase

log = logging.getLogger(__name__)
SNAPSHOT_NAME = "current.json"


@dataclass(frozen=True)
class Snapshot:
    kb: KnowledgeBase
    model_path: Path
    model_fingerprint: str
    content_fingerprint: str
    published_at: str

    def to_json(self) -> dict:
        return {
            "kb": self.kb.to_json(),
            "model_path": str(self.model_path),
            "model_fingerprint": self.model_fingerprint,
            "content_fingerprint": self.content_fingerprint,
            "published_at": self.published_at,
        }

    @classmethod
    def from_json(cls, data: dict) -> Snapshot:
        return cls(
            kb=KnowledgeBase.from_json(data["kb"]),
            model_path=Path(data["model_path"]),
            model_fingerprint=data["model_fingerprint"],
            content_fingerprint=data["content_fingerprint"],
            published_at=data["published_at"],
        )


def snapshot_path(state_dir: Path) -> Path:
    return state_dir / "published" / SNAPSHOT_NAME


def write_snapshot(state_dir: Path, snapshot: Snapshot) -> Path:
    """Atomically replace the live snapshot: readers see the old file or the new, never half."""
    target = snapshot_path(state_dir)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".current-", suffix=".json")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(snapshot.to_json(), out, ensure_ascii=False)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return target


class KbStore:
    """Hands out the live snapshot; cheap to call on every turn."""

    def __init__(self, state_dir: Path):
        self.path = snapshot_path(state_dir)
        self.state_dir = state_dir
        self._snapshot: Snapshot | None = None
        self._stamp: tuple[int, int] | None = None

    def current(self) -> Snapshot:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            if self._snapshot is None:
                raise NotPublishedError(self.state_dir) from None
            return self._snapshot
        stamp = (stat.st_ino, stat.st_mtime_ns)
        if stamp != self._stamp:
            try:
                snapshot = Snapshot.from_json(json.loads(self.path.read_text(encoding="utf-8")))
            except (OSError, ValueError, KeyError, TypeError) as exc:
                if self._snapshot is None:
                    raise
                log.error("published snapshot %s unreadable (%s); keeping the previous one",
                          self.path, exc)
                return self._snapshot
            self._snapshot, self._stamp = snapshot, stamp
        return self._snapshot
