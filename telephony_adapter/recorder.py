"""A call's recording as the two people heard it: the caller on the left, the bot on the right.

The engine sees the caller's audio as a gapless stream (the worker sends every 20 ms frame,
silence included), so the caller channel is also the recording's clock. The bot's audio
arrives ahead of time, message by message, and the worker may drop the end of a message at
barge-in or hang-up; each message is therefore kept aside with the caller-clock position
where it began, and only what the worker reports as heard (``listened_ms``) is placed on the
bot channel when the call ends. What the recording plays is what the line carried, within
the few tens of milliseconds the media stream adds.

Everything is kept in memory at the line's 8 kHz (32 kB a second for both channels) and
capped at ``max_s``; sealing and writing happen once, after the call (``ledger.recordings``).
"""

from __future__ import annotations

import array
from dataclasses import dataclass, field

from bot.audio import LINE_RATE, SAMPLE_WIDTH, AudioFrame, StreamResampler


@dataclass
class _Message:
    start: int  # sample on the caller clock
    pcm: bytearray = field(default_factory=bytearray)
    heard_ms: int | None = None  # None until the worker's report


class CallRecorder:
    """Collects one call's two channels; fed from the engine's event loop only."""

    def __init__(self, max_s: int):
        self.rate = LINE_RATE
        self._max_bytes = max_s * LINE_RATE * SAMPLE_WIDTH
        self._caller = bytearray()
        self._messages: dict[str, _Message] = {}
        self._order: list[_Message] = []
        self._resampler: StreamResampler | None = None
        self.truncated = False

    def caller_audio(self, frame: AudioFrame) -> None:
        if frame.sample_rate != self.rate:
            if self._resampler is None:
                self._resampler = StreamResampler(frame.sample_rate, self.rate)
            pcm = self._resampler.process(frame).pcm
        else:
            pcm = frame.pcm
        room = self._max_bytes - len(self._caller)
        if room <= 0:
            self.truncated = True
            return
        self._caller += pcm[:room]

    def message_started(self, message_id: str) -> None:
        message = _Message(len(self._caller) // SAMPLE_WIDTH)
        self._messages[message_id] = message
        self._order.append(message)

    def bot_audio(self, message_id: str, pcm: bytes) -> None:
        message = self._messages.get(message_id)
        if message is not None and len(message.pcm) < self._max_bytes:
            message.pcm += pcm

    def message_heard(self, message_id: str, listened_ms: int) -> None:
        message = self._messages.pop(message_id, None)
        if message is not None:
            message.heard_ms = max(0, listened_ms)

    @property
    def empty(self) -> bool:
        return not self._caller

    def channels(self) -> tuple[bytes, bytes]:
        """(caller, bot) as PCM16 at ``rate``, equally long. A message never reported as
        heard (the worker vanished) is left out: the recording does not guess either."""
        bot = array.array("h", bytes(len(self._caller)))
        for message in self._order:
            if not message.heard_ms:
                continue
            heard = min(len(message.pcm), message.heard_ms * self.rate // 1000 * SAMPLE_WIDTH)
            samples = array.array("h", bytes(message.pcm[:heard - heard % SAMPLE_WIDTH]))
            end = min(len(bot), message.start + len(samples))
            if end > message.start:
                bot[message.start:end] = samples[:end - message.start]
        return bytes(self._caller), bot.tobytes()
