"""The answer as the caller will hear it: the line's audio cache, played in the page.

The bot plays replies from the cache that ``kb publish`` fills (8 kHz, the configured
voice). The page asks for the same cache entry, so an editor hears exactly the published
audio; an edited text the cache lacks is synthesised with the configured voice into that
cache, where the publication then finds it already made (and prunes it if unused).
"""

from __future__ import annotations

import io
import re
import threading
import wave

from bot.audio import LINE_RATE, SAMPLE_WIDTH
from bot.settings import Settings
from tts.cache import SUFFIX, AudioCache
from tts.speaker import cache_dir
from tts.voice import load_voice

KEY = re.compile(r"^[0-9a-f]{64}$")


class AnswerAudio:
    """Cache keys for texts, and WAV bytes for keys; the voice is loaded on first use."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._cache: AudioCache | None = None
        self._lock = threading.Lock()

    @property
    def cache(self) -> AudioCache:
        with self._lock:
            if self._cache is None:
                self._cache = AudioCache(cache_dir(self.settings), load_voice(self.settings.tts),
                                         LINE_RATE)
            return self._cache

    def is_cached(self, text: str) -> bool:
        return self.cache.path(text).exists()

    def key(self, text: str) -> str:
        return self.cache.key(text)

    def prepare(self, text: str) -> str:
        """The cache key of ``text``, synthesised first if needed (blocking, espeak ~0.1 s a
        sentence)."""
        self.cache.render(text)
        return self.cache.key(text)

    def wav(self, key: str) -> bytes | None:
        """The cached audio of ``key`` as a WAV file, or None."""
        if not KEY.match(key):
            return None
        try:
            pcm = (cache_dir(self.settings) / f"{key}{SUFFIX}").read_bytes()
        except FileNotFoundError:
            return None
        out = io.BytesIO()
        with wave.open(out, "wb") as wav:
            wav.setnchannels(1)
            wav.setsampwidth(SAMPLE_WIDTH)
            wav.setframerate(LINE_RATE)
            wav.writeframes(pcm)
        return out.getvalue()
