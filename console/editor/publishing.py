"""Publish one entry's edit from the console: check, write the YAML, go live, remember.

The steps of ``voicebot kb publish`` with the console's guarantees around them:

1. the edit is checked on a temporary copy (``validation.check_edit``): with any error,
   nothing is written and the form shows the errors;
2. the entry must still be the one the editor opened (``version``), or another editor's
   publication would be overwritten silently;
3. the file is rewritten (round trip, comments kept), then ``bot.kb.publish.publish``
   (given the base just checked, so it is not checked twice) retrains only if questions
   changed, pre-renders the audio and swaps the
   snapshot the running bot reads at its next turn (``bot.kb.store.KbStore``: a stat per
   turn, no restart). If that fails, the file gets its previous text back, so the YAML
   never says something the line does not;
4. the publication is recorded (``history.PublishHistory``) with the user and comment.

One publication at a time per state directory (a lock file), as two swaps racing would
leave the audio cache pruned for the wrong base.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from bot.errors import VoicebotError
from bot.kb.publish import PublishResult, publish
from bot.settings import Settings
from console.editor.entries import EntryDoc, EntryFields, KnowledgeFiles
from console.editor.history import Publication, PublishHistory
from console.editor.validation import EditCheck, EntryNotFoundError, check_edit
from tts.speaker import prerender

MAX_COMMENT_CHARS = 500


class PublishRefusedError(VoicebotError):
    """The publication was refused before anything was written."""


@dataclass(frozen=True)
class PublishOutcome:
    publication: Publication
    result: PublishResult
    seconds: float
    """From the start of the publication to the new base being live."""


def entry_version(entry: EntryDoc) -> str:
    """A short fingerprint of the entry's YAML, carried by the form to detect a concurrent
    publication of the same entry."""
    return hashlib.sha256(entry.yaml_text.encode("utf-8")).hexdigest()[:16]


class KbPublisher:
    def __init__(self, settings: Settings, history: PublishHistory | None = None):
        self.settings = settings
        self.history = history or PublishHistory.for_state_dir(settings.paths.state_dir)
        self.files = KnowledgeFiles(settings.paths.knowledge_dir)
        self._lock = threading.Lock()

    def check(self, entry_id: str, fields: EntryFields, today: dt.date | None = None) -> EditCheck:
        return check_edit(self.settings.paths.knowledge_dir, entry_id, fields, today)

    def publish_entry(self, entry_id: str, fields: EntryFields, user: str, comment: str,
                      version: str | None = None) -> EditCheck | PublishOutcome:
        """The failed check (nothing written), or what was published."""
        comment = " ".join(comment.split())
        if not comment:
            raise PublishRefusedError("Écrivez un commentaire : il dit aux autres rédacteurs "
                                      "ce qui a changé et pourquoi.")
        if len(comment) > MAX_COMMENT_CHARS:
            raise PublishRefusedError(f"Commentaire trop long : {len(comment)} caractères, "
                                      f"{MAX_COMMENT_CHARS} au plus.")
        start = time.monotonic()
        with self._exclusive():
            current = self.files.entry(entry_id)
            if current is None:
                raise EntryNotFoundError(entry_id)
            if version and version != entry_version(current):
                raise PublishRefusedError(
                    "Cette fiche a été modifiée depuis que vous l'avez ouverte (une autre "
                    "publication, ou une modification du fichier). Rouvrez la fiche pour voir "
                    "la version actuelle, puis refaites votre modification.")
            checked = self.check(entry_id, fields)
            if not checked.ok:
                return checked
            knowledge_dir = self.settings.paths.knowledge_dir
            self.history.ensure_baseline(knowledge_dir)
            self.files.write(checked.file, checked.text)
            try:
                result = publish(self.settings, checked_kb=checked.kb,
                                 render_audio=lambda kb: prerender(self.settings, kb))
            except BaseException:
                self.files.write(checked.file, checked.original)
                raise
            seconds = time.monotonic() - start
            publication = self.history.record(knowledge_dir, user, comment, seconds,
                                              result.training.trained)
        return PublishOutcome(publication, result, seconds)

    @contextmanager
    def _exclusive(self) -> Iterator[None]:
        path = self.settings.paths.state_dir / "console" / "publish.lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock, open(path, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
