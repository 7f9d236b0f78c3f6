"""Who published what, when and why, and every published state of the knowledge files.

Kept under ``<state_dir>/console/kb_history/`` with no database table: the YAML files are
the source of truth, so their history sits beside the published base, the way git keeps
one. ``publications.jsonl`` gets one JSON line per publication (number, time, user,
comment, entries changed, the file manifest); ``blobs/<sha256>`` holds each distinct file
content once, so a publication that changes one answer costs one file. An entry's history
is rebuilt from the manifests; restoring a version goes through check and publish again.
"""

from __future__ import annotations

import datetime as dt
import difflib
import hashlib
import json
import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from console.editor.entries import EntryDoc, entries_of_text

JOURNAL = "publications.jsonl"
BASELINE_USER = ""
"""User of the baseline record: the files as they were before the console first published."""


@dataclass(frozen=True)
class Publication:
    number: int
    at: str
    """ISO 8601, UTC."""
    user: str
    comment: str
    entries: tuple[str, ...]
    """Ids of the entries this publication added, changed or removed."""
    files: dict[str, str]
    """File name -> SHA-256 of its content (a blob)."""
    seconds: float = 0.0
    """From the click on « Publier » to the new base being live."""
    trained: bool = False

    @property
    def baseline(self) -> bool:
        return self.user == BASELINE_USER

    @property
    def at_datetime(self) -> dt.datetime:
        return dt.datetime.fromisoformat(self.at)


@dataclass(frozen=True)
class EntryVersion:
    publication: Publication
    entry: EntryDoc | None
    """None: the entry did not exist in that publication (removed)."""
    diff: list[tuple[str, str]]
    """Unified diff against the previous version: (kind, line), kind in " -+@"; for the
    first version known, its whole text as unchanged lines."""
    initial: bool = False


class PublishHistory:
    def __init__(self, directory: Path):
        self.directory = directory
        self.blobs = directory / "blobs"
        self._lock = threading.Lock()

    @classmethod
    def for_state_dir(cls, state_dir: Path) -> PublishHistory:
        return cls(state_dir / "console" / "kb_history")

    def publications(self) -> list[Publication]:
        try:
            lines = (self.directory / JOURNAL).read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        found = []
        for line in lines:
            if line.strip():
                data = json.loads(line)
                data["entries"] = tuple(data["entries"])
                found.append(Publication(**data))
        return found

    def publication(self, number: int) -> Publication | None:
        return next((p for p in self.publications() if p.number == number), None)

    def record(self, knowledge_dir: Path, user: str, comment: str, seconds: float = 0.0,
               trained: bool = False) -> Publication:
        """Store the files of ``knowledge_dir`` as they are now, as one publication."""
        with self._lock:
            earlier = self.publications()
            files = {path.name: self._store_blob(path.read_bytes())
                     for path in _yaml_files(knowledge_dir)}
            changed = self._changed_entries(earlier[-1].files if earlier else {}, files)
            publication = Publication(
                number=(earlier[-1].number + 1) if earlier else 1,
                at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                user=user, comment=comment, entries=tuple(changed), files=files,
                seconds=round(seconds, 2), trained=trained)
            self._append(publication)
            return publication

    def ensure_baseline(self, knowledge_dir: Path) -> None:
        """Before the first publication from the console, keep the files as they were, so
        the state before any console edit can be seen and restored."""
        if not self.publications():
            self.record(knowledge_dir, BASELINE_USER,
                        "état de la base avant la première publication depuis la console")

    def entry_versions(self, entry_id: str) -> list[EntryVersion]:
        """The publications that changed ``entry_id``, newest first, each with its diff."""
        versions: list[EntryVersion] = []
        previous: EntryDoc | None = None
        seen = False
        for publication in self.publications():
            entry = self._entry_in(publication, entry_id)
            if entry is None and not seen:
                continue
            if seen and _text(entry) == _text(previous):
                continue
            diff = unified_diff(_text(previous), _text(entry)) if seen else \
                [(" ", line) for line in _text(entry).splitlines()]
            versions.append(EntryVersion(publication, entry, diff, initial=not seen))
            previous, seen = entry, True
        return versions[::-1]

    def entry_at(self, number: int, entry_id: str) -> EntryDoc | None:
        publication = self.publication(number)
        return None if publication is None else self._entry_in(publication, entry_id)

    # --- storage ------------------------------------------------------------------------
    def _store_blob(self, content: bytes) -> str:
        digest = hashlib.sha256(content).hexdigest()
        target = self.blobs / digest
        if not target.exists():
            _atomic_write(target, content)
        return digest

    def _append(self, publication: Publication) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        line = json.dumps(publication.__dict__, ensure_ascii=False, sort_keys=True) + "\n"
        with open(self.directory / JOURNAL, "a", encoding="utf-8") as out:
            out.write(line)
            out.flush()
            os.fsync(out.fileno())

    def _entries_of_blob(self, file: str, digest: str) -> dict[str, EntryDoc]:
        text = (self.blobs / digest).read_text(encoding="utf-8")
        return {e.id: e for e in entries_of_text(file, text)}

    def _entry_in(self, publication: Publication, entry_id: str) -> EntryDoc | None:
        for file, digest in sorted(publication.files.items()):
            entry = self._entries_of_blob(file, digest).get(entry_id)
            if entry is not None:
                return entry
        return None

    def _changed_entries(self, before: dict[str, str], after: dict[str, str]) -> list[str]:
        """Entries added, changed or removed; only files whose content changed are read."""
        files = {f for f in before.keys() | after.keys() if before.get(f) != after.get(f)}
        old = self._entries_of_files(before, files)
        new = self._entries_of_files(after, files)
        return sorted(i for i in old.keys() | new.keys()
                      if _text(old.get(i)) != _text(new.get(i)))

    def _entries_of_files(self, files: dict[str, str], names: set[str]) -> dict[str, EntryDoc]:
        found: dict[str, EntryDoc] = {}
        for file in sorted(names & files.keys()):
            for entry_id, entry in self._entries_of_blob(file, files[file]).items():
                found.setdefault(entry_id, entry)
        return found


def unified_diff(before: str, after: str) -> list[tuple[str, str]]:
    """Line diff for the page: (" ", same), ("-", removed), ("+", added), ("@", hunk)."""
    lines = difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=2)
    diff = []
    for line in lines:
        if line.startswith(("---", "+++")):
            continue
        kind = line[:1] if line[:1] in "-+@" else " "
        diff.append((kind, line[1:] if kind != "@" else line))
    return diff


def _text(entry: EntryDoc | None) -> str:
    return "" if entry is None else entry.yaml_text


def _yaml_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir()
                  if p.suffix in (".yml", ".yaml") and not p.name.startswith("."))


def _atomic_write(target: Path, content: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(content)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise

