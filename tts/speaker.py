"""The TTS stage as the pipeline sees it: text in, line-rate audio out, cached first.

Every text the knowledge base can make the bot say is rendered at publish time
(``prerender``), so a reply normally costs one file read. A text the cache lacks is
synthesised sentence by sentence in a worker thread, each sentence handed over as soon as
it exists, and the whole is cached for the next caller.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

from bot.audio import LINE_RATE, AudioFrame
from bot.kb.model import KnowledgeBase
from bot.settings import Settings
from tts.cache import AudioCache
from tts.fallback import write_fallback_audio
from tts.voice import Voice, load_voice, synthesize_at

_DONE = object()


def cache_dir(settings: Settings) -> Path:
    return settings.paths.state_dir / "audio"


class Speaker:
    """One voice and its cache at the line's rate, shared by every call of the process."""

    def __init__(self, cache: AudioCache):
        self.cache = cache

    @classmethod
    def load(cls, settings: Settings, sample_rate: int = LINE_RATE) -> Speaker:
        return cls(AudioCache(cache_dir(settings), load_voice(settings.tts), sample_rate))

    @property
    def sample_rate(self) -> int:
        return self.cache.sample_rate

    def cached(self, text: str) -> AudioFrame | None:
        return self.cache.get(text)

    async def frames(self, text: str) -> AsyncIterator[AudioFrame]:
        """The audio of ``text``: at once from the cache, else one sentence at a time."""
        cached = self.cache.get(text)
        if cached is not None:
            yield cached
            return
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[object] = asyncio.Queue()

        def synthesise() -> None:
            made = []
            try:
                for frame in synthesize_at(self.cache.voice, text, self.sample_rate):
                    made.append(frame.pcm)
                    loop.call_soon_threadsafe(queue.put_nowait, frame)
                self.cache.put(text, AudioFrame(b"".join(made), self.sample_rate))
            except BaseException as exc:  # handed to the loop, raised there
                loop.call_soon_threadsafe(queue.put_nowait, exc)
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, _DONE)

        worker = loop.run_in_executor(None, synthesise)
        try:
            while (item := await queue.get()) is not _DONE:
                if isinstance(item, BaseException):
                    raise item
                yield item  # type: ignore[misc]
        finally:
            await asyncio.shield(worker)  # the sentence in progress still lands in the cache


def spoken_texts(kb: KnowledgeBase) -> list[str]:
    """Everything the bot can say from this base: answers and system messages."""
    texts = [entry.answer for entry in kb.entries if entry.answer]
    texts += list(kb.messages.values())
    return texts


def prerender(settings: Settings, kb: KnowledgeBase) -> int:
    """Render every spoken text of ``kb`` into the cache (publish time); drop stale entries."""
    voice: Voice = load_voice(settings.tts)
    cache = AudioCache(cache_dir(settings), voice, LINE_RATE)
    report = cache.render_all(spoken_texts(kb), prune=True)
    write_fallback_audio(cache, kb, settings.paths.state_dir)
    return report.rendered

