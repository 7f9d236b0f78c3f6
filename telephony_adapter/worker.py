"""A SIP media worker: holds calls in pjsua2 and relays each one to the speech engine.

The worker loads no model. Each answered call is one media stream to the engine
(telephony_adapter/stream.py): the caller's 20 ms frames, keys and hang-up go up; the
bot's audio, marks and call-control verbs come down and are played at the line's clock
by the call's ``Playout``, which reports back how much of each message the caller heard.

When the engine fails (unreachable, or its stream breaks before it said ``done``), the
worker itself apologises with the published apology audio and transfers the caller:
never dead air. The call's ledger row then comes from here, through the supervisor.
While the engine is down, new calls are refused with 503 so that Kamailio tries another
destination, unless the INVITE is Kamailio's last resort (``X-Allo-Last-Resort``): that
caller is answered, apologised to and transferred, rather than turned away.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import aiohttp

from bot.audio import LINE_RATE, AudioFrame
from bot.playout import PlaybackFinished
from telephony_adapter import stream
from telephony_adapter.pjsip_agent import Admission, Invite
from telephony_adapter.sip import CallLeg, CallState, TransferOutcome, TransferResult
from tts.fallback import FallbackAudio

log = logging.getLogger(__name__)

CONNECT_S = 2.0
"""Time to open a call's stream to the engine on the node's loopback; beyond it, rescue."""
HEARTBEAT_S = 5.0
MEDIA_WAIT_S = 3.0
REPORT_WAIT_S = 1.0
"""After a hang-up, how long the playout's last reports may take to arrive (they are
posted from the media clock thread)."""
LINK_RETRY_S = (0.1, 0.25, 0.5, 1.0)
"""Reconnection periods of the liveness link while the engine is down (retry pacing)."""
RESCUE_MOTIF = "conseiller"
"""Motif of a call the engine could not finish: what the caller got is an advisor."""

Report = Callable[[dict[str, Any]], None]
"""Sends a line to the supervisor (ledger rows of rescued calls)."""


class EngineLink:
    """A WebSocket kept open to the engine: while it is open, the engine is up."""

    def __init__(self, session: aiohttp.ClientSession, url: str):
        self.session = session
        self.url = url
        self.up = False
        self.changed = asyncio.Event()

    async def run(self) -> None:
        failures = 0
        while True:
            try:
                async with self.session.ws_connect(
                        self.url + stream.LINK_PATH, protocols=(stream.SUBPROTOCOL,),
                        heartbeat=HEARTBEAT_S, timeout=CONNECT_S) as ws:
                    failures = 0
                    self._set(True)
                    async for _ in ws:
                        pass
            except (aiohttp.ClientError, OSError, asyncio.TimeoutError):
                pass
            self._set(False)
            await asyncio.sleep(LINK_RETRY_S[min(failures, len(LINK_RETRY_S) - 1)])
            failures += 1

    def _set(self, up: bool) -> None:
        if up != self.up:
            log.log(logging.INFO if up else logging.ERROR, "speech engine %s",
                    "reachable" if up else "unreachable: new calls refused, callers rescued")
            self.up = up
            self.changed.set()


def admission(link: EngineLink, calls: int, rescue: bool = False) -> Admission:
    """Which INVITEs this worker takes (run on the SIP thread, so only reads flags).

    503 while the engine is down, 486 when full: Kamailio then tries another worker or
    node. The rescue worker is Kamailio's last resort: it takes every call while a call
    slot is left, one caller more than ``calls`` (one of the slots kept for bridged
    transfers), with or without the engine.
    """

    def admit(invite: Invite, live_calls: int) -> int:
        if rescue:
            return 486 if live_calls >= calls + 1 else 0
        if not link.up:
            return 503
        return 486 if live_calls >= calls else 0

    return admit


class CallRelay:
    """Relays each call of this worker to the engine; rescues the caller if the engine fails."""

    def __init__(self, session: aiohttp.ClientSession, engine_url: str, worker: str,
                 fallback: FallbackAudio, report: Report):
        self.session = session
        self.url = engine_url + stream.CALLS_PATH
        self.worker = worker
        self.fallback = fallback
        self.report = report

    async def handle(self, leg: CallLeg) -> None:
        try:
            ws = await self.session.ws_connect(
                self.url, protocols=(stream.SUBPROTOCOL,), heartbeat=HEARTBEAT_S,
                timeout=CONNECT_S, max_msg_size=1 << 20)
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
            await self._rescue(leg, f"engine unreachable ({type(exc).__name__})")
            return
        relay = _Stream(leg, ws, self.worker)
        try:
            await relay.run()
        finally:
            await ws.close()
        if not relay.done:
            await self._rescue(leg, "engine stream lost")

    async def _rescue(self, leg: CallLeg, why: str) -> None:
        """Apology, then an advisor; and a ledger row, since the engine will write none."""
        log.error("call %s: %s; apologising and transferring", leg.call_id, why)
        handoff = False
        try:
            if not leg.ended.is_set() and not leg.bridged:
                handoff = await self._apologise_and_transfer(leg)
        except Exception:
            log.exception("call %s: rescue failed", leg.call_id)
        ended_at = leg.ended_at or datetime.now(timezone.utc)
        self.report({
            "type": "rescued_call", "call_id": leg.call_id, "caller": leg.caller,
            "started_at": (leg.answered_at or leg.received_at).isoformat(),
            "ended_at": ended_at.isoformat(), "handoff": handoff or leg.bridged,
            "motif": RESCUE_MOTIF, "reason": why,
        })

    async def _apologise_and_transfer(self, leg: CallLeg) -> bool:
        if leg.state is CallState.RINGING:
            await leg.answer()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(leg.media_ready.wait(), MEDIA_WAIT_S)
        leg.playout.interrupt()
        await self._say(leg, "error_apology")
        if leg.ended.is_set():
            return False
        result = await leg.transfer()
        if result.succeeded:
            return True
        await self._say(leg, "transfer_failed")
        await leg.hangup()
        return False

    async def _say(self, leg: CallLeg, key: str) -> PlaybackFinished | None:
        audio = self.fallback.audio(key)
        if audio is None:
            log.error("call %s: no published audio for %s", leg.call_id, key)
            return None
        done = leg.playout.begin(f"rescue-{key}")
        leg.playout.push(audio, f"rescue-{key}")
        leg.playout.end(f"rescue-{key}")
        return await done


class _Stream:
    """One call's media stream: the pumps up, the engine's verbs down, in order both ways."""

    def __init__(self, leg: CallLeg, ws: aiohttp.ClientWebSocketResponse, worker: str):
        self.leg = leg
        self.ws = ws
        self.worker = worker
        self.done = False
        """The engine said ``done``: it finished with the call and wrote its ledger row."""
        self._outbox = stream.Outbox()
        self._messages: dict[str, asyncio.Future[PlaybackFinished]] = {}
        self._reported: set[str] = set()
        self._current: str | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        leg = self.leg
        self._send(stream.encode(
            stream.START, call_id=leg.call_id, caller=leg.caller, called=leg.called,
            worker=self.worker, received_at=leg.received_at.isoformat(),
            last_resort=leg.last_resort))
        for job in (self._outbox.pump(self.ws), self._pump_audio(), self._pump_keys(),
                    self._watch_end()):
            self._spawn(job)
        try:
            async for message in self.ws:
                if message.type is aiohttp.WSMsgType.BINARY:
                    if self._current is not None:
                        leg.playout.push(AudioFrame(message.data, LINE_RATE), self._current)
                elif message.type is aiohttp.WSMsgType.TEXT:
                    try:
                        self._on_command(stream.decode(message.data, stream.FROM_ENGINE))
                    except stream.ProtocolError as exc:
                        log.warning("call %s: bad frame from the engine ignored: %s",
                                    leg.call_id, exc)
                    if self.done:
                        break
        finally:
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

    # --- the engine's verbs ---------------------------------------------------------------
    def _on_command(self, message: dict[str, Any]) -> None:
        event, leg = message["event"], self.leg
        if event == stream.PLAY:
            message_id = stream.text_field(message, "id")
            future = leg.playout.begin(message_id)
            self._messages[message_id] = future
            self._current = message_id
            future.add_done_callback(lambda f, mid=message_id: self._report_played(mid))
        elif event == stream.MARK:
            leg.playout.end(stream.text_field(message, "id"))
            self._current = None
        elif event == stream.CLEAR:
            self._current = None
            leg.playout.interrupt()
        elif event == stream.ANSWER:
            self._spawn(self._answer())
        elif event == stream.TRANSFER:
            self._spawn(self._transfer(stream.text_field(message, "request"),
                                       stream.text_field(message, "target"),
                                       stream.headers_field(message)))
        elif event == stream.HANGUP:
            self._spawn(leg.hangup())
        elif event == stream.DONE:
            self.done = True

    async def _answer(self) -> None:
        leg = self.leg
        await leg.answer()
        at = leg.answered_at or datetime.now(timezone.utc)
        self._send(stream.encode(stream.ANSWERED, at=at.isoformat()))

    async def _transfer(self, request: str, target: str, headers: dict[str, str]) -> None:
        try:
            result = await self.leg.transfer(target or None, headers, leave=False)
        except Exception as exc:  # not answered, gone: the engine hears it as refused
            result = TransferResult(TransferOutcome.REFUSED, 0, f"{type(exc).__name__}: {exc}",
                                    "refer")
        if self.leg.bridged:
            self._send(stream.encode(stream.BRIDGED))
        self._send(stream.encode(
            stream.TRANSFER_RESULT, request=request, outcome=result.outcome.value,
            sip_status=result.sip_status, reason=result.reason, method=result.method,
            refer_status=result.refer_status))
        if result.succeeded and result.method == "refer":
            await self.leg.hangup()  # after the result: the engine must not read it as a hang-up

    # --- pumps up ------------------------------------------------------------------------
    async def _pump_audio(self) -> None:
        leg = self.leg
        await leg.media_ready.wait()
        self._send(stream.encode(stream.MEDIA, codec=leg.codec, sample_rate=leg.sample_rate))
        while True:
            frame = await leg.audio_in.get()
            self._send(frame.pcm)

    async def _pump_keys(self) -> None:
        while True:
            self._send(stream.encode(stream.DTMF, digit=await self.leg.dtmf.get()))

    async def _watch_end(self) -> None:
        """After a hang-up: every message's report first, then ``stop``, never the reverse."""
        leg = self.leg
        await leg.ended.wait()
        pending = [f for f in self._messages.values() if not f.done()]
        if pending:
            await asyncio.wait(pending, timeout=REPORT_WAIT_S)
        for message_id in list(self._messages):
            self._report_played(message_id)
        self._send(stream.encode(
            stream.STOP, ended_at=(leg.ended_at or datetime.now(timezone.utc)).isoformat(),
            ended_by_caller=leg.ended_by_caller, end_status=leg.end_status,
            dropped_frames=leg.dropped_frames))

    def _report_played(self, message_id: str) -> None:
        future = self._messages.get(message_id)
        if future is None or not future.done() or message_id in self._reported:
            return
        self._reported.add(message_id)
        finished = future.result()
        self._send(stream.encode(stream.PLAYED, id=message_id, message_ms=finished.message_ms,
                                 listened_ms=finished.listened_ms,
                                 interrupted=finished.interrupted))

    # --- plumbing -------------------------------------------------------------------------
    def _send(self, item: str | bytes) -> None:
        self._outbox.put(item)

    def _spawn(self, job) -> None:
        task = asyncio.create_task(job)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(_log_failure)


def _log_failure(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("media stream task failed", exc_info=task.exception())
