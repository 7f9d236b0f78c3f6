"""The few messages a process without a voice must still be able to say.

A SIP media worker loads no model: when the speech engine is down it must still apologise
to its callers and tell them a transfer failed, never leave them in silence. At publish
time those messages are copied out of the audio cache under their key names, at the
line's rate, so the worker reads a file by name: no voice, no hash of the text, no
knowledge base to load.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from bot.audio import LINE_RATE, AudioFrame

if TYPE_CHECKING:
    from bot.kb.model import KnowledgeBase
    from tts.cache import AudioCache

FALLBACK_MESSAGES = ("error_apology", "transfer_failed", "saturation")
SUFFIX = ".pcm"


def fallback_dir(state_dir: Path) -> Path:
    return state_dir / "audio" / "fallback"


def write_fallback_audio(cache: AudioCache, kb: KnowledgeBase, state_dir: Path) -> None:
    """Render (or reuse) each fallback message and store it under its key, atomically."""
    directory = fallback_dir(state_dir)
    directory.mkdir(parents=True, exist_ok=True)
    for key in FALLBACK_MESSAGES:
        audio = cache.render(kb.messages[key])
        if audio.sample_rate != LINE_RATE:
            raise ValueError(f"fallback audio must be at {LINE_RATE} Hz")
        temporary = directory / f".{key}.tmp"
        temporary.write_bytes(audio.pcm)
        os.replace(temporary, directory / f"{key}{SUFFIX}")


class FallbackAudio:
    """Reads the published fallback messages; a republish is seen at the next read."""

    def __init__(self, state_dir: Path):
        self.directory = fallback_dir(state_dir)

    def audio(self, key: str) -> AudioFrame | None:
        try:
            return AudioFrame((self.directory / f"{key}{SUFFIX}").read_bytes(), LINE_RATE)
        except OSError:
            return None
