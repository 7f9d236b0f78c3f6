"""The SIP side as the event loop sees it: an endpoint that hands each incoming call over
as a ``CallLeg``, and the leg's audio, DTMF, answer, hang-up and transfer.

pjsua2 stays behind this module (``pjsip_agent.py`` runs it in its own thread): every
method here is a coroutine or a plain attribute read, safe to use from the event loop
only. Audio never waits on the SIP thread: caller frames arrive on ``audio_in`` from the
media clock, and ``playout`` is drained by it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import Enum
from typing import TYPE_CHECKING

from bot.audio import LINE_RATE, AudioFrame
from bot.playout import Playout
from telephony_adapter.options import TelephonyOptions

if TYPE_CHECKING:
    from telephony_adapter.pjsip_agent import Admission, PjsipAgent

log = logging.getLogger(__name__)

CallHandler = Callable[["CallLeg"], Awaitable[None]]

_HANGUP_WAIT_S = 5.0  # BYE answered or timed out by then (pjsip's own timer is 32 s)


class TransferOutcome(str, Enum):
    ACCEPTED = "accepted"
    """The advisor answered (sipfrag 2xx), or the bridge to the advisor is up."""
    REFUSED = "refused"
    """The REFER or the advisor's side refused (403, 404, 405, 501, 603, 5xx…)."""
    BUSY = "busy"
    """486 Busy Here, 600 Busy Everywhere."""
    NO_ANSWER = "no_answer"
    """408, 480, 487: the advisor's phone rang out or was cancelled."""
    TIMEOUT = "timeout"
    """No final answer within ``transfer_timeout_ms``."""


@dataclass(frozen=True)
class TransferResult:
    outcome: TransferOutcome
    sip_status: int
    """Final SIP status: from the NOTIFY sipfrag, the REFER's own answer, or the bridge
    call; 0 on timeout."""
    reason: str
    method: str
    """``refer``, or ``bridge`` when the REFER was refused and the fallback carried it."""
    refer_status: int = 0
    """What the peer answered to the REFER itself (202 when it took it on), 0 if unknown."""

    @property
    def succeeded(self) -> bool:
        return self.outcome is TransferOutcome.ACCEPTED


def transfer_outcome(status: int) -> TransferOutcome:
    """The outcome a final SIP status means for a transfer."""
    if 200 <= status < 300:
        return TransferOutcome.ACCEPTED
    if status in (486, 600):
        return TransferOutcome.BUSY
    if status in (408, 480, 487):
        return TransferOutcome.NO_ANSWER
    return TransferOutcome.REFUSED


def refer_target(uri: str, headers: Mapping[str, str]) -> str:
    """``uri`` with ``headers`` as URI headers (RFC 3261 19.1.1), escaped: the transferee
    copies them into its INVITE to the target, so the advisor's desktop can show them."""
    if not headers:
        return uri
    from urllib.parse import quote

    joined = "&".join(f"{quote(name, safe='-')}={quote(value, safe='')}"
                      for name, value in headers.items())
    return f"{uri}{'&' if '?' in uri else '?'}{joined}"


class CallState(str, Enum):
    RINGING = "ringing"
    ANSWERED = "answered"
    ENDED = "ended"


class CallLeg:
    """One incoming call, as the call flow drives it from the event loop.

    Created by the SIP thread; its queues and events are only ever touched on the loop
    (the SIP thread goes through ``call_soon_threadsafe``). ``codec`` and ``sample_rate``
    are known once ``media_ready`` is set.
    """

    def __init__(
        self,
        agent: PjsipAgent,
        token: int,
        call_id: str,
        caller: str,
        over_capacity: bool,
        loop: asyncio.AbstractEventLoop,
        audio_in_max_frames: int,
        called: str = "",
        last_resort: bool = False,
    ):
        self._agent = agent
        self._token = token
        self.call_id = call_id
        """SIP Call-ID of the incoming INVITE."""
        self.caller = caller
        """The caller's E.164 number, or "" when withheld: ``Privacy: id``, no number, or
        an identity that is no telephone number (``ledger/caller_id.py``; PAI only from
        ``telephony.trusted_peers``). Pseudonymise before storing or logging it."""
        self.called = called
        """User part of the request URI (the number dialled, ``3230``)."""
        self.last_resort = last_resort
        """The dispatcher found no other destination (``X-Allo-Last-Resort``): this call is
        taken whatever the load, and rescued if the engine is down."""
        self.over_capacity = over_capacity
        """More than ``max_calls`` calls were in progress when this one arrived: play the
        saturation message and transfer."""
        self.codec = ""
        """``PCMU``, ``PCMA`` or ``G722``."""
        self.sample_rate = 0
        """Rate of ``audio_in`` frames: 8000 for G.711, 16000 for G.722 (wideband kept for
        ASR). ``playout`` always runs at the line rate, 8000 Hz."""
        self.audio_in: asyncio.Queue[AudioFrame] = asyncio.Queue(audio_in_max_frames)
        """20 ms frames from the caller; when nobody reads, the oldest are dropped."""
        self.playout = Playout(LINE_RATE, loop)
        """What the caller hears: drained every 20 ms by the media clock."""
        self.dtmf: asyncio.Queue[str] = asyncio.Queue()
        """Keys the caller pressed, RFC 4733 events and SIP INFO alike: ``0``–``9``, ``*``,
        ``#``."""
        self.media_ready = asyncio.Event()
        """Set when RTP from the caller has arrived: from then on, what is played is heard."""
        self.ended = asyncio.Event()
        """Set when the call is over, whoever ended it."""
        self.state = CallState.RINGING
        self.received_at = datetime.now(timezone.utc)
        self.answered_at: datetime | None = None
        self.ended_at: datetime | None = None
        self.ended_by_caller = False
        """True when the caller hung up (BYE or CANCEL from their side)."""
        self.end_status = 0
        """SIP status that ended the call (200 for a normal BYE, 487 for a cancelled ring)."""
        self.bridged = False
        """Bridged to an advisor by the fallback transfer: the bot is out of the audio, and
        the call ends when either side hangs up."""
        self.dropped_frames = 0
        self._loop = loop

    def __repr__(self) -> str:
        return f"<CallLeg {self.call_id} {self.state.value} {self.codec or '-'}>"

    async def answer(self) -> None:
        """Answer (200 OK). Returns once the answer is sent; await ``media_ready`` before
        playing anything that must be heard whole."""
        await self._agent.submit(lambda call: call.answer_ok(), self._token)

    async def hangup(self) -> None:
        """End the call (BYE once answered, 480 while ringing); returns once it is ended."""
        if self.ended.is_set():
            return
        try:
            await self._agent.submit(lambda call: call.end(), self._token)
        except LookupError:
            pass  # already gone on the SIP side; ``ended`` follows
        try:
            await asyncio.wait_for(self.ended.wait(), _HANGUP_WAIT_S)
        except asyncio.TimeoutError:
            log.warning("call %s: no end %.0f s after hang-up", self.call_id, _HANGUP_WAIT_S)

    async def transfer(self, uri: str | None = None,
                       headers: Mapping[str, str] | None = None,
                       leave: bool = True) -> TransferResult:
        """Blind transfer to ``uri`` (default: the configured advisor) by REFER.

        ``headers`` travel on the REFER target as URI headers, so the advisor's INVITE
        carries them (and the bridge's INVITE, when the REFER is refused). On
        success the bot leaves the call (REFER: it hangs up, unless ``leave`` is False and
        the caller of this method does; bridge: its audio is unplugged). On failure the
        call is still up and the caller still hears the bot: apologise, give the hours,
        never leave silence.
        """
        if self.state is not CallState.ANSWERED:
            raise RuntimeError("a call must be answered before it is transferred")
        target = refer_target(uri or self._agent.options.advisor_uri, headers or {})
        done: asyncio.Future[TransferResult] = self._loop.create_future()
        await self._agent.submit(lambda call: call.start_transfer(target, done), self._token)
        timeout_s = self._agent.options.transfer_timeout_ms / 1000
        try:
            result = await asyncio.wait_for(asyncio.shield(done), timeout_s)
        except asyncio.TimeoutError:
            try:
                await self._agent.submit(lambda call: call.abandon_transfer(), self._token)
            except LookupError:
                pass
            result = done.result() if done.done() else TransferResult(
                TransferOutcome.TIMEOUT, 0, "no final transfer answer", "refer"
            )
        if result.succeeded and result.method == "refer" and leave:
            await self.hangup()
        log.info(
            "call %s: transfer %s (%s %d %s)",
            self.call_id, result.outcome.value, result.method, result.sip_status, result.reason,
        )
        return result

    # --- called on the loop by the SIP thread ------------------------------------------
    def _push_audio(self, frame: AudioFrame) -> None:
        if self.audio_in.full():
            self.audio_in.get_nowait()
            self.dropped_frames += 1
        self.audio_in.put_nowait(frame)

    def _set_media(self, codec: str, sample_rate: int) -> None:
        self.codec, self.sample_rate = codec, sample_rate

    def _set_answered(self) -> None:
        self.state = CallState.ANSWERED
        self.answered_at = datetime.now(timezone.utc)

    def _set_ended(self, by_caller: bool, status: int) -> None:
        if self.ended.is_set():
            return
        self.state = CallState.ENDED
        self.ended_at = datetime.now(timezone.utc)
        self.ended_by_caller = by_caller
        self.end_status = status
        self.playout.close()
        self.ended.set()


class SipEndpoint:
    """The SIP user agent server: start it, and each call runs ``on_call(leg)`` in its own task.

    A handler that raises is logged and its call hung up; the others carry on. When the
    handler returns, a call still up is hung up (unless bridged to an advisor).
    """

    def __init__(self, options: TelephonyOptions, on_call: CallHandler,
                 admit: Admission | None = None):
        self.options = options
        self._on_call = on_call
        self._admit = admit
        self._agent: PjsipAgent | None = None
        self._legs: set[CallLeg] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._idle = asyncio.Event()
        self._idle.set()
        self.calls_total = 0
        self.changed = asyncio.Event()
        """Set whenever a call starts or ends (cleared by whoever watches it)."""

    @property
    def active_calls(self) -> int:
        """Calls not yet ended, saturated and bridged ones included."""
        return len(self._legs)

    @property
    def draining(self) -> bool:
        return self._agent is not None and self._agent.draining

    @property
    def call_limit(self) -> int:
        """Simultaneous calls the SIP stack can hold (bridged advisor legs included); more
        INVITEs are answered 486 by PJSIP itself."""
        if self._agent is None:
            raise RuntimeError("the SIP endpoint is not started")
        return self._agent.call_limit

    @property
    def sip_port(self) -> int:
        """The port SIP really listens on (useful when ``sip_port`` is 0)."""
        if self._agent is None:
            raise RuntimeError("the SIP endpoint is not started")
        return self._agent.sip_port

    async def start(self) -> None:
        """Create the SIP stack and listen; raises ``SipStartError`` (French) if it cannot."""
        from telephony_adapter.pjsip_agent import PjsipAgent

        loop = asyncio.get_running_loop()
        self._agent = PjsipAgent(self.options, loop, self._on_leg, self._on_leg_ended)
        self._agent.admit = self._admit
        await self._agent.start()

    async def stop(self, grace_ms: int = 60000) -> None:
        """Graceful shutdown: refuse new calls (503), let those in progress finish for up to
        ``grace_ms``, then hang up what is left and destroy the stack."""
        if self._agent is None:
            return
        self._agent.draining = True
        try:
            await asyncio.wait_for(self._idle.wait(), grace_ms / 1000)
        except asyncio.TimeoutError:
            log.warning("%d call(s) still up after %d ms: hanging up", len(self._legs), grace_ms)
        await self._agent.stop()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=_HANGUP_WAIT_S)
        self._agent = None

    # --- called on the loop by the SIP thread ------------------------------------------
    def _on_leg(self, leg: CallLeg) -> None:
        self._legs.add(leg)
        self._idle.clear()
        self.changed.set()
        self.calls_total += 1
        task = asyncio.get_running_loop().create_task(self._run(leg), name=f"call {leg.call_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _on_leg_ended(self, leg: CallLeg) -> None:
        self._legs.discard(leg)
        self.changed.set()
        if not self._legs:
            self._idle.set()

    async def _run(self, leg: CallLeg) -> None:
        try:
            await self._on_call(leg)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("call %s: handler failed", leg.call_id)
        finally:
            if not leg.ended.is_set() and not leg.bridged:
                try:
                    await leg.hangup()
                except Exception:
                    log.exception("call %s: hang-up after the handler failed", leg.call_id)
