"""Publish the editors' knowledge base: validate, train if needed, pre-render audio, swap.

Each step can refuse, and a refusal leaves the live snapshot untouched: the running bot
goes on with the last good base. Only the final rename makes the new base live.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass

from bot.errors import KbInvalidError
from bot.kb.check import check_kb
from bot.kb.model import KnowledgeBase
from bot.kb.store import Snapshot, write_snapshot
from bot.settings import Settings
from bot.training import TrainResult, train_model

AudioRenderer = Callable[[KnowledgeBase], int]
"""Pre-renders every text the bot may say; returns how many were newly synthesised."""


@dataclass(frozen=True)
class PublishResult:
    snapshot: Snapshot
    training: TrainResult
    rendered: int
    seconds: float

    def summary(self) -> str:
        kb = self.snapshot.kb
        lines = [
            f"Base publiée : {len(kb.entries)} fiches, {len(kb.motifs)} motifs "
            f"(version {self.snapshot.content_fingerprint}).",
            self.training.summary(),
        ]
        if self.rendered:
            lines.append(f"{self.rendered} message(s) audio préparé(s).")
        lines.append(f"Terminé en {self.seconds:.1f} s.")
        return "\n".join(lines)


def publish(settings: Settings, force_training: bool = False,
            render_audio: AudioRenderer | None = None,
            checked_kb: KnowledgeBase | None = None) -> PublishResult:
    """``checked_kb``: the base ``check_kb`` just returned for the files as they now are
    (the console checks an edit before writing it), so it is not checked twice."""
    start = time.monotonic()
    kb = checked_kb
    if kb is None:
        checked = check_kb(settings.paths.knowledge_dir)
        if checked.kb is None:
            raise KbInvalidError(checked.errors)
        kb = checked.kb
    training = train_model(settings, kb, force=force_training)
    rendered = render_audio(kb) if render_audio else 0
    snapshot = Snapshot(
        kb=kb,
        model_path=training.model_path,
        model_fingerprint=training.fingerprint,
        content_fingerprint=kb.content_fingerprint(),
        published_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    )
    write_snapshot(settings.paths.state_dir, snapshot)
    return PublishResult(snapshot, training, rendered, time.monotonic() - start)
