"""A call held by a SIP media worker, as the engine's call flow drives it over the media stream.

``RemoteLeg`` has the same surface as the worker's ``CallLeg`` (answer, media, audio in,
keys, playout, transfer, hang-up, ended), so ``CallFlow`` and the conversation run on it
unchanged; each verb becomes a message of ``telephony_adapter.stream`` and each event
from the worker sets the matching state. Nothing here blocks: sends go through the
connection's outbox, drained in order by the engine's writer task.

``RemotePlayout`` is the engine's half of the worker's ``Playout``: the audio and marks go
to the worker, which plays them at the line's clock and reports, per message, how many
milliseconds really reached the caller. Those reports resolve the futures the pipeline
awaits, so ``listened_ms`` stays a fact about the line, never a guess from the engine.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any

from bot.audio import SAMPLE_WIDTH, AudioFrame, frame_bytes, samples_to_ms
from bot.playout import PlaybackFinished
from telephony_adapter import stream
from telephony_adapter.recorder import CallRecorder
from telephony_adapter.sip import CallState, TransferOutcome, TransferResult

log = logging.getLogger(__name__)

Send = Callable[[str | bytes], None]
ANSWER_WAIT_S = 5.0
"""The worker answers in milliseconds; longer means it is gone."""
HANGUP_WAIT_S = 5.0
CHUNK_BYTES = 16000
"""Audio is sent in one-second binary frames: a 20-second answer is not one 320 kB frame."""


class RemotePlayout:
    """The bot's outgoing audio for one remote call; same verbs as ``bot.playout.Playout``."""

    def __init__(self, send: Send, loop: asyncio.AbstractEventLoop,
                 sample_rate: int = stream.PLAY_RATE, recorder: CallRecorder | None = None):
        self.sample_rate = sample_rate
        self.recorder = recorder
        self._send = send
        self._loop = loop
        self._pending: dict[str, asyncio.Future[PlaybackFinished]] = {}
        self._sent_bytes: dict[str, int] = {}
        self._open: str | None = None
        self._closed = False

    def begin(self, message_id: str) -> asyncio.Future[PlaybackFinished]:
        future: asyncio.Future[PlaybackFinished] = self._loop.create_future()
        if self._closed or message_id in self._pending:
            future.set_result(PlaybackFinished(message_id, 0, 0, interrupted=True))
            return future
        self._pending[message_id] = future
        self._sent_bytes[message_id] = 0
        self._open = message_id
        if self.recorder is not None:
            self.recorder.message_started(message_id)
        self._send(stream.encode(stream.PLAY, id=message_id))
        return future

    def push(self, frame: AudioFrame, message_id: str | None = None) -> None:
        if frame.sample_rate != self.sample_rate:
            raise ValueError(f"playout runs at {self.sample_rate} Hz, got {frame.sample_rate} Hz")
        target = self._open
        if target is None or (message_id is not None and message_id != target):
            return  # cut by barge-in: late audio must not spill into the next message
        for start in range(0, len(frame.pcm), CHUNK_BYTES):
            self._send(frame.pcm[start:start + CHUNK_BYTES])
        self._sent_bytes[target] += len(frame.pcm)
        if self.recorder is not None:
            self.recorder.bot_audio(target, frame.pcm)

    def end(self, message_id: str | None = None) -> None:
        target = self._open
        if target is None or (message_id is not None and message_id != target):
            return
        self._open = None
        self._send(stream.encode(stream.MARK, id=target))

    def interrupt(self) -> None:
        """Barge-in; the worker reports each dropped message with what was heard of it."""
        self._open = None
        if self._pending and not self._closed:
            self._send(stream.encode(stream.CLEAR))

    def close(self) -> None:
        """The call is over. The worker reported every message before saying so; a message
        still unreported (the worker vanished) counts as unheard: never bill a guess."""
        self._closed = True
        self._open = None
        for message_id, future in list(self._pending.items()):
            if not future.done():
                sent_ms = self._bytes_to_ms(self._sent_bytes.get(message_id, 0))
                future.set_result(PlaybackFinished(message_id, sent_ms, 0, interrupted=True))
        self._pending.clear()

    @property
    def busy(self) -> bool:
        return any(not f.done() for f in self._pending.values())

    def played(self, message: Mapping[str, Any]) -> None:
        """The worker's report of one message (``stream.PLAYED``)."""
        message_id = stream.text_field(message, "id")
        future = self._pending.pop(message_id, None)
        self._sent_bytes.pop(message_id, None)
        if future is None or future.done():
            return
        heard = PlaybackFinished(
            message_id, message_ms=stream.int_field(message, "message_ms"),
            listened_ms=stream.int_field(message, "listened_ms"),
            interrupted=bool(message.get("interrupted")))
        if self.recorder is not None:
            self.recorder.message_heard(message_id, heard.listened_ms)
        future.set_result(heard)

    def _bytes_to_ms(self, n: int) -> int:
        return samples_to_ms(n // SAMPLE_WIDTH, self.sample_rate)


class RemoteLeg:
    """One call on a worker, driven from the engine's event loop."""

    def __init__(self, start: Mapping[str, Any], send: Send, loop: asyncio.AbstractEventLoop,
                 *, over_capacity: bool, transfer_timeout_ms: int, audio_in_max_frames: int,
                 recorder: CallRecorder | None = None):
        self.call_id = stream.text_field(start, "call_id")
        if not self.call_id:
            raise stream.ProtocolError("start.call_id is missing")
        self.caller = stream.text_field(start, "caller")
        """As the worker read it from the INVITE; pseudonymised before it is stored."""
        self.called = stream.text_field(start, "called")
        self.worker = stream.text_field(start, "worker")
        self.last_resort = bool(start.get("last_resort"))
        self.over_capacity = over_capacity
        self.codec = ""
        self.sample_rate = 0
        self.audio_in: asyncio.Queue[AudioFrame] = asyncio.Queue(audio_in_max_frames)
        self.dtmf: asyncio.Queue[str] = asyncio.Queue()
        self.recorder = recorder
        """Both sides of the call as heard, when recording is on (``ledger.recordings``)."""
        self.playout = RemotePlayout(send, loop, recorder=recorder)
        self.media_ready = asyncio.Event()
        self.ended = asyncio.Event()
        self.state = CallState.RINGING
        self.received_at = _parse_time(start.get("received_at")) or datetime.now(timezone.utc)
        self.answered_at: datetime | None = None
        self.ended_at: datetime | None = None
        self.ended_by_caller = False
        self.end_status = 0
        self.bridged = False
        self.dropped_frames = 0
        self._send = send
        self._loop = loop
        self._answered = asyncio.Event()
        self._transfers: dict[str, asyncio.Future[TransferResult]] = {}
        self._requests = itertools.count(1)
        self._transfer_timeout_s = transfer_timeout_ms / 1000

    def __repr__(self) -> str:
        return f"<RemoteLeg {self.call_id} {self.state.value} on {self.worker or '?'}>"

    # --- verbs, as on CallLeg ---------------------------------------------------------------
    async def answer(self) -> None:
        if self._answered.is_set() or self.ended.is_set():
            return
        self._send(stream.encode(stream.ANSWER))
        await _wait_any(self._answered, self.ended, ANSWER_WAIT_S)
        if not self._answered.is_set() and not self.ended.is_set():
            raise RuntimeError(f"call {self.call_id}: the worker did not answer")

    async def hangup(self) -> None:
        if self.ended.is_set():
            return
        self._send(stream.encode(stream.HANGUP))
        await _wait_any(self.ended, self.ended, HANGUP_WAIT_S)

    async def transfer(self, uri: str | None = None,
                       headers: Mapping[str, str] | None = None) -> TransferResult:
        """Ask the worker to transfer (REFER, bridge fallback); the result is the worker's."""
        if self.state is not CallState.ANSWERED:
            raise RuntimeError("a call must be answered before it is transferred")
        request = str(next(self._requests))
        done: asyncio.Future[TransferResult] = self._loop.create_future()
        self._transfers[request] = done
        self._send(stream.encode(stream.TRANSFER, request=request, target=uri or "",
                                 headers=dict(headers or {})))
        try:
            # the worker gives up after its own transfer timeout; a margin for the last NOTIFY
            return await asyncio.wait_for(asyncio.shield(done), self._transfer_timeout_s + 5)
        except asyncio.TimeoutError:
            return TransferResult(TransferOutcome.TIMEOUT, 0, "no transfer result from the "
                                  "worker", "refer")
        finally:
            self._transfers.pop(request, None)

    # --- events from the worker -----------------------------------------------------------
    def handle(self, message: Mapping[str, Any]) -> None:
        event = message["event"]
        if event == stream.MEDIA:
            self.codec = stream.text_field(message, "codec")
            rate = stream.int_field(message, "sample_rate")
            if rate not in (8000, 16000):
                raise stream.ProtocolError(f"media.sample_rate {rate} not supported")
            self.sample_rate = rate
            self.media_ready.set()
        elif event == stream.DTMF:
            self.dtmf.put_nowait(message["digit"])
        elif event == stream.PLAYED:
            self.playout.played(message)
        elif event == stream.ANSWERED:
            self.state = CallState.ANSWERED
            self.answered_at = _parse_time(message.get("at")) or datetime.now(timezone.utc)
            self._answered.set()
        elif event == stream.TRANSFER_RESULT:
            self._transfer_result(message)
        elif event == stream.BRIDGED:
            self.bridged = True
            self.playout.close()
        elif event == stream.STOP:
            self.dropped_frames = stream.int_field(message, "dropped_frames")
            self._set_ended(bool(message.get("ended_by_caller")),
                            stream.int_field(message, "end_status"),
                            _parse_time(message.get("ended_at")))

    def push_audio(self, pcm: bytes) -> None:
        """A binary frame: the caller's voice, once ``media`` said at what rate, a whole
        number of 20 ms frames (the pipeline takes such chunks as they come)."""
        size = frame_bytes(self.sample_rate) if self.sample_rate else 0
        if not size or not pcm or len(pcm) % size:
            return
        if self.audio_in.full():
            self.audio_in.get_nowait()
            self.dropped_frames += 1
        frame = AudioFrame(pcm, self.sample_rate)
        self.audio_in.put_nowait(frame)
        if self.recorder is not None:
            self.recorder.caller_audio(frame)

    def lost(self) -> None:
        """The stream broke (the worker died or the network did): the call is over for us."""
        self._set_ended(False, 0, None)

    def _transfer_result(self, message: Mapping[str, Any]) -> None:
        future = self._transfers.get(stream.text_field(message, "request"))
        if future is None or future.done():
            return
        try:
            outcome = TransferOutcome(stream.text_field(message, "outcome"))
        except ValueError:
            raise stream.ProtocolError(f"unknown transfer outcome {message.get('outcome')!r}") \
                from None
        future.set_result(TransferResult(
            outcome, stream.int_field(message, "sip_status"),
            stream.text_field(message, "reason"), stream.text_field(message, "method", "refer"),
            stream.int_field(message, "refer_status")))

    def _set_ended(self, by_caller: bool, status: int, at: datetime | None) -> None:
        if self.ended.is_set():
            return
        self.state = CallState.ENDED
        self.ended_at = at or datetime.now(timezone.utc)
        self.ended_by_caller = by_caller
        self.end_status = status
        self.playout.close()
        for future in self._transfers.values():
            if not future.done():
                future.set_result(TransferResult(TransferOutcome.REFUSED, 0,
                                                 "the call ended during the transfer", "refer"))
        self.ended.set()


async def _wait_any(first: asyncio.Event, second: asyncio.Event, timeout_s: float) -> None:
    waits = [asyncio.ensure_future(first.wait()), asyncio.ensure_future(second.wait())]
    try:
        await asyncio.wait(waits, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()


def _parse_time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None
