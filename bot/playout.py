"""The outgoing audio buffer, drained by the line's clock, that knows what the caller heard.

A clocked consumer (the RTP port's frame callback, the sound card's output callback) calls
``pull()`` every 20 ms from its own thread; the event loop pushes messages in. Each message
counts the samples actually handed to the line, so ``listened_ms`` is a fact about the
line, not a guess from wall-clock time: queued audio that never left is not counted. The
SC3.2 "75 % listened" rule is billed from these numbers.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from dataclasses import dataclass, field

from bot.audio import FRAME_MS, SAMPLE_WIDTH, AudioFrame, frame_bytes, samples_to_ms


@dataclass(frozen=True)
class PlaybackFinished:
    """How one message went out: fully played, or cut by barge-in or hang-up."""

    message_id: str
    message_ms: int
    """Full duration of the message's audio."""
    listened_ms: int
    """Audio handed to the line before it finished or was cut."""
    interrupted: bool


@dataclass
class _Message:
    message_id: str
    future: asyncio.Future[PlaybackFinished]
    chunks: deque[bytes] = field(default_factory=deque)
    queued_bytes: int = 0
    total_bytes: int = 0
    sent_bytes: int = 0
    complete: bool = False  # no more audio will be pushed


class Playout:
    """Thread-safe message queue between the event loop and a line clock."""

    def __init__(self, sample_rate: int, loop: asyncio.AbstractEventLoop, frame_ms: int = FRAME_MS):
        self.sample_rate = sample_rate
        self.frame_size = frame_bytes(sample_rate, frame_ms)
        self._loop = loop
        self._lock = threading.Lock()
        self._messages: deque[_Message] = deque()
        self._closed = False
        self.sent_bytes_total = 0

    # --- event-loop side -------------------------------------------------------------
    def begin(self, message_id: str) -> asyncio.Future[PlaybackFinished]:
        """Open a message; it plays after those already queued. Await the future for the outcome."""
        future: asyncio.Future[PlaybackFinished] = self._loop.create_future()
        message = _Message(message_id, future)
        with self._lock:
            if self._closed:
                future.set_result(PlaybackFinished(message_id, 0, 0, interrupted=True))
                message.complete = True
            else:
                self._messages.append(message)
        return future

    def push(self, frame: AudioFrame, message_id: str | None = None) -> None:
        """Append audio to the newest open message (only if it is ``message_id``, when given:
        a message cut by barge-in must not spill its late audio into the next one)."""
        if frame.sample_rate != self.sample_rate:
            raise ValueError(f"playout runs at {self.sample_rate} Hz, got {frame.sample_rate} Hz")
        if not frame.pcm:
            return
        with self._lock:
            message = self._open_message(message_id)
            if message is None:
                return
            message.chunks.append(frame.pcm)
            message.queued_bytes += len(frame.pcm)
            message.total_bytes += len(frame.pcm)

    def end(self, message_id: str | None = None) -> None:
        """Say the newest open message (``message_id``, when given) has all its audio; it
        resolves once played out."""
        finished = []
        with self._lock:
            message = self._open_message(message_id)
            if message is None:
                return
            message.complete = True
            if message.queued_bytes == 0 and message is self._messages[0]:
                self._messages.popleft()
                finished.append((message, False))
        self._resolve(finished)

    def interrupt(self) -> None:
        """Barge-in: drop every queued message now; each resolves with what was heard."""
        with self._lock:
            finished = [(m, True) for m in self._messages]
            self._messages.clear()
        self._resolve(finished)

    def close(self) -> None:
        """Hang-up: like ``interrupt``, and later messages resolve at once as unheard."""
        with self._lock:
            self._closed = True
        self.interrupt()

    @property
    def busy(self) -> bool:
        with self._lock:
            return bool(self._messages)

    # --- clock side --------------------------------------------------------------------
    def pull(self) -> bytes:
        """Exactly one frame for the line: queued audio, padded with silence."""
        out = bytearray()
        finished = []
        with self._lock:
            while len(out) < self.frame_size and self._messages:
                message = self._messages[0]
                if not message.chunks:
                    if message.complete:
                        self._messages.popleft()
                        finished.append((message, False))
                        continue
                    break  # the message's next audio is not synthesised yet
                chunk = message.chunks[0]
                take = min(len(chunk), self.frame_size - len(out))
                out += chunk[:take]
                message.sent_bytes += take
                message.queued_bytes -= take
                if take == len(chunk):
                    message.chunks.popleft()
                else:
                    message.chunks[0] = chunk[take:]
                if message.complete and message.queued_bytes == 0:
                    self._messages.popleft()
                    finished.append((message, False))
            self.sent_bytes_total += len(out)
        if finished:
            self._loop.call_soon_threadsafe(self._resolve, finished)
        return bytes(out.ljust(self.frame_size, b"\0"))

    # --- helpers ----------------------------------------------------------------------
    def _open_message(self, message_id: str | None = None) -> _Message | None:
        if self._messages and not self._messages[-1].complete:
            newest = self._messages[-1]
            if message_id is None or newest.message_id == message_id:
                return newest
        return None

    def _resolve(self, finished: list[tuple[_Message, bool]]) -> None:
        for message, interrupted in finished:
            if message.future.done():
                continue
            to_ms = self._bytes_to_ms
            message.future.set_result(
                PlaybackFinished(
                    message.message_id,
                    message_ms=to_ms(message.total_bytes),
                    listened_ms=to_ms(message.sent_bytes),
                    interrupted=interrupted,
                )
            )

    def _bytes_to_ms(self, n: int) -> int:
        return samples_to_ms(n // SAMPLE_WIDTH, self.sample_rate)
