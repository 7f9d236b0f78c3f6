"""A phone line whose 20 ms clock the test drives, in place of the RTP clock of a real call.

Each tick takes one frame from the bot's playout (what the caller hears) and gives the bot
one frame of the caller's script (recorded speech, else silence). The caller's actions are
tied to what they have heard of which message, not to wall time: "3 s into the bot's
answer, say this", "when the answer ends, hang up". So the clock can run ``speed`` times
faster than real time, and a call is quick to test while Whisper and the dialogue run at
their real speed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from bot.audio import FRAME_MS, LINE_RATE, AudioFrame, frame_bytes, resample
from bot.pipeline import Conversation, ConversationResult, VoiceServices
from bot.playout import Playout

FRAME = frame_bytes(LINE_RATE)


@dataclass
class _Cue:
    key: str
    """The message it waits for: ``reply``, ``greeting``… (playout ids are ``key-n``)."""
    heard_ms: int
    """Fires once the caller has heard this much of that message; -1: when it ends."""
    action: Callable[[], None]
    skip: int = 0
    """Matching messages to let pass first (0: the next one)."""
    start_ms: int | None = None
    done: bool = False


class ClockedLine:
    def __init__(self, speed: float = 8.0):
        self.sample_rate = LINE_RATE
        self.audio_in: asyncio.Queue[AudioFrame] = asyncio.Queue()
        self.dtmf: asyncio.Queue[str] = asyncio.Queue()
        self.playout = Playout(LINE_RATE, asyncio.get_running_loop())
        self.ended = asyncio.Event()
        self.speed = speed
        self.heard = bytearray()
        self.bot_ms = 0
        """Line time during which the bot had a message on the line."""
        self.transfers = 0
        self.transfer_succeeds = True
        self._speech = bytearray()
        self._cues: list[_Cue] = []
        self._timers: list[_Cue] = []
        """Cues armed when a message ends (``after`` with ``delay_ms``)."""
        begin = self.playout.begin

        def watched_begin(message_id: str):
            future = begin(message_id)
            for cue in self._cues:
                if not cue.done and cue.start_ms is None and message_id.startswith(cue.key + "-"):
                    if cue.skip:
                        cue.skip -= 1
                        continue
                    cue.start_ms = self.bot_ms
                    if cue.heard_ms < 0:
                        future.add_done_callback(lambda _f, c=cue: self._fire(c))
            return future

        self.playout.begin = watched_begin  # type: ignore[method-assign]

    # --- the caller's script ------------------------------------------------------------
    def during(self, key: str, heard_ms: int, action: Callable[[], None], nth: int = 1) -> None:
        """Do ``action`` once ``heard_ms`` of the ``nth`` ``key`` message has been heard."""
        self._cues.append(_Cue(key, heard_ms, action, skip=nth - 1))

    def after(self, key: str, action: Callable[[], None], nth: int = 1,
              delay_ms: int = 0) -> None:
        """Do ``action`` when the ``nth`` ``key`` message has ended (played, cut or hung up),
        or once the bot has spoken ``delay_ms`` more after it: a message queued behind
        another (an answer's follow-up question) begins before it is heard, so "400 ms into
        the follow-up" is "400 ms after the answer"."""
        if not delay_ms:
            self._cues.append(_Cue(key, -1, action, skip=nth - 1))
            return
        timer = _Cue(key, delay_ms, action)

        def arm() -> None:
            timer.start_ms = self.bot_ms
            self._timers.append(timer)

        self._cues.append(_Cue(key, -1, arm, skip=nth - 1))

    def say(self, audio: AudioFrame) -> Callable[[], None]:
        return lambda: self._speech.extend(resample(audio, LINE_RATE).pcm)

    def press(self, digit: str) -> Callable[[], None]:
        return lambda: self.dtmf.put_nowait(digit)

    def hang_up(self) -> None:
        if not self.ended.is_set():
            self.playout.close()
            self.ended.set()

    async def transfer(self) -> bool:
        """The call flow's transfer: counted, and accepted unless the test says otherwise."""
        self.transfers += 1
        if self.transfer_succeeds:
            self.hang_up()  # a blind transfer takes the call away from the bot
        return self.transfer_succeeds

    def _fire(self, cue: _Cue) -> None:
        if not cue.done:
            cue.done = True
            cue.action()

    # --- the clock ------------------------------------------------------------------------
    async def run_clock(self, limit_s: float = 120.0) -> None:
        """Tick until the call ends or ``limit_s`` of line time have passed."""
        for _ in range(int(limit_s * 1000 / FRAME_MS)):
            if self.ended.is_set():
                return
            busy = self.playout.busy
            out = self.playout.pull()
            self.heard += out
            if busy:
                self.bot_ms += FRAME_MS
            for cue in (*self._cues, *self._timers):
                if cue.heard_ms >= 0 and cue.start_ms is not None \
                        and self.bot_ms - cue.start_ms >= cue.heard_ms:
                    self._fire(cue)
            chunk, self._speech = bytes(self._speech[:FRAME]), self._speech[FRAME:]
            self.audio_in.put_nowait(AudioFrame(chunk.ljust(FRAME, b"\0"), LINE_RATE))
            await asyncio.sleep(FRAME_MS / 1000 / self.speed)  # the line's pace, not a sync
        self.hang_up()


def converse(services: VoiceServices, line: ClockedLine, runner, name: str) -> ConversationResult:
    """Run one conversation on ``line`` until it ends (at most 120 s), then hang up."""
    async def run() -> ConversationResult:
        conversation = Conversation(services, line, name, line.transfer)
        clock = asyncio.create_task(line.run_clock())
        try:
            return await asyncio.wait_for(conversation.run(), 120)
        finally:
            line.hang_up()
            await clock

    return runner(run())


def messages(result: ConversationResult, key: str):
    return [m for m in result.messages if m.key == key]
