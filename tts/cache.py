"""Pre-rendered speech: every known reply synthesised once, replayed in a millisecond.

Entries are raw PCM16 mono at the line's rate, one file per (text, voice, speaking rate,
output rate), named by the SHA-256 of that key, so a KB edit, a new voice or a new rate
simply misses and a stale entry is never played. Files are written under a temporary
name and renamed, so a reader sees a whole entry or none, even across a crash.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from bot.audio import LINE_RATE, SAMPLE_WIDTH, AudioFrame
from tts.voice import Voice, synthesize_at

SUFFIX = ".pcm"


@dataclass(frozen=True)
class RenderReport:
    rendered: int
    """Texts synthesised now."""
    reused: int
    """Texts already in the cache."""
    removed: int = 0
    """Entries of this voice and rate that no listed text uses any more (``prune=True``)."""


class AudioCache:
    """The audio of known texts for one voice at one output rate, in one directory."""

    def __init__(self, directory: Path, voice: Voice, sample_rate: int = LINE_RATE):
        self.directory = directory
        self.voice = voice
        self.sample_rate = sample_rate

    def key(self, text: str) -> str:
        identity = "\x1f".join(
            (self.voice.voice_id, f"{self.voice.rate:.3f}", str(self.sample_rate),
             _normalize(text)))
        return hashlib.sha256(identity.encode("utf-8")).hexdigest()

    def path(self, text: str) -> Path:
        return self.directory / f"{self.key(text)}{SUFFIX}"

    def get(self, text: str) -> AudioFrame | None:
        """The cached audio of ``text``, or None (one hash and one file read)."""
        try:
            pcm = self.path(text).read_bytes()
        except FileNotFoundError:
            return None
        return AudioFrame(pcm, self.sample_rate)

    def put(self, text: str, audio: AudioFrame) -> None:
        if audio.sample_rate != self.sample_rate:
            raise ValueError(f"cache holds {self.sample_rate} Hz audio, got {audio.sample_rate}")
        self.directory.mkdir(parents=True, exist_ok=True)
        target = self.path(text)
        fd, temporary = tempfile.mkstemp(dir=self.directory, prefix=".", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(audio.pcm)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def render(self, text: str) -> AudioFrame:
        """The cached audio, synthesising and storing it first if needed (blocking)."""
        cached = self.get(text)
        if cached is not None:
            return cached
        pcm = b"".join(f.pcm for f in synthesize_at(self.voice, text, self.sample_rate))
        audio = AudioFrame(pcm, self.sample_rate)
        self.put(text, audio)
        return audio

    def render_all(self, texts: Iterable[str], prune: bool = False) -> RenderReport:
        """Make sure every text is cached (publish time). With ``prune``, delete every other
        entry in the directory, so the cache holds exactly the published replies."""
        rendered = reused = 0
        keep: set[str] = set()
        for text in texts:
            if not _normalize(text):
                continue
            keep.add(self.key(text) + SUFFIX)
            if self.path(text).exists():
                reused += 1
            else:
                self.render(text)
                rendered += 1
        removed = 0
        if prune and self.directory.is_dir():
            for entry in self.directory.glob(f"*{SUFFIX}"):
                if entry.name not in keep:
                    entry.unlink(missing_ok=True)
                    removed += 1
        return RenderReport(rendered, reused, removed)


def _normalize(text: str) -> str:
    """Whitespace does not change speech, so it does not change the key."""
    return " ".join(text.split())


assert SAMPLE_WIDTH == 2  # entries are PCM16; a change here must invalidate the cache
