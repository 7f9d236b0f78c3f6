"""pjsua2 in one thread: the library is created, driven and destroyed there, and nowhere else.

The thread loops on ``libHandleEvents`` (``mainThreadOnly``: every pjsua2 callback runs
here), then runs the jobs the event loop queued through ``submit``, checks which calls
have started receiving RTP. Only the media clock thread runs besides it, inside
``LinePort``.

Object lifetimes are the trap (``shared/stack/SIP.md``): a ``pj.Call`` or port that Python
frees after ``libDestroy``, or on another thread, aborts the process; one nobody references
is freed mid-call; a ``pj.Call`` freed after pjsua reused its id hangs up the new call; a
port freed while the media clock runs crashes it (``media.py``). So every pjsua2 object
lives in this thread's tables, the ``CallLeg`` the loop holds only knows a token, an ended
call is freed as its DISCONNECTED callback returns, ports are pooled, and everything is
dropped and collected, the media clock stopped first, before ``libDestroy``.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import itertools
import logging
import queue
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import pjsua2 as pj

from bot.audio import ASR_RATE, LINE_RATE
from bot.errors import VoicebotError
from ledger.caller_id import Network, parse_trusted_peers
from telephony_adapter.media import FrameBatcher, LinePort
from telephony_adapter.options import TelephonyOptions
from telephony_adapter.sip import CallLeg, TransferOutcome, TransferResult, transfer_outcome
from telephony_adapter.sip_identity import caller_from_invite

log = logging.getLogger(__name__)
T = TypeVar("T")

_EVENT_WAIT_MS = 20  # longest a queued job waits for the SIP thread (one loop per 20 ms)
_STOP_WAIT_S = 3.0  # BYEs answered by then at shutdown
_MEDIA_QUALITY = 4
"""pjmedia's resampling quality (0–10): 3–4 is its small filter, ample for the telephone
band; its default (8, the large filter) cost the media clock thread 40 % more per call."""
_CODEC_IDS = {"PCMU": "PCMU/8000/1", "PCMA": "PCMA/8000/1", "G722": "G722/16000/1"}
_LOG_LEVELS = {0: logging.CRITICAL, 1: logging.ERROR, 2: logging.WARNING, 3: logging.INFO}


LAST_RESORT_HEADER = "x-allo-last-resort"
"""Set by the node's dispatcher on its final attempt, when every destination refused."""


@dataclass(frozen=True)
class Invite:
    """What admission reads from an INVITE before anything is allocated for it."""

    called: str
    last_resort: bool
    caller: str = ""
    """The caller's E.164 number, "" when withheld (``sip_identity``, ``ledger.caller_id``)."""

    @classmethod
    def parse(cls, message: str, peer: str | None = None,
              trusted_peers: Sequence[Network] = ()) -> Invite:
        """Never raises: a header it cannot read counts as absent. ``peer``: the address
        the INVITE came from (``rdata.srcAddress``), for ``telephony.trusted_peers``."""
        head = message.split("\r\n\r\n", 1)[0].splitlines()
        called = ""
        if head:
            user = _URI_USER.search(head[0].split(" ", 2)[1] if head[0].count(" ") >= 2 else "")
            called = user.group(1) if user else ""
        last_resort = any(line.split(":", 1)[0].strip().lower() == LAST_RESORT_HEADER
                          for line in head[1:])
        return cls(called, last_resort, caller_from_invite(message, peer, trusted_peers))


Admission = Callable[[Invite, int], int]
"""(the INVITE, calls now up on this endpoint) -> 0 to take it, or a SIP status to refuse."""


class SipStartError(VoicebotError):
    """The SIP stack could not start (port taken, bad address): the message says which."""


class PjsipAgent:
    def __init__(
        self,
        options: TelephonyOptions,
        loop: asyncio.AbstractEventLoop,
        on_leg: Callable[[CallLeg], None],
        on_leg_ended: Callable[[CallLeg], None],
    ):
        self.options = options
        self.trusted_peers = parse_trusted_peers(options.trusted_peers)
        """Peers whose P-Asserted-Identity is believed (``telephony.trusted_peers``)."""
        self.draining = False
        """Set from the loop: new calls get 503 from then on."""
        self.admit: Admission | None = None
        """Decides on the SIP thread whether to take an INVITE: 0, or the SIP status that
        refuses it. None: ``max_calls + sip_extra_calls`` calls, then 486."""
        self.sip_port = options.sip_port
        self.call_limit = pj.UaConfig().maxCalls
        """Calls this pjsua2 build can hold at once: its compiled ``PJSUA_MAX_CALLS`` (the
        default ``UaConfig.maxCalls``); the PyPI wheel 2.15.1.post1 says 4."""
        self._loop = loop
        self._on_leg = on_leg
        self._on_leg_ended = on_leg_ended
        self._jobs: queue.SimpleQueue[tuple[Callable[[PjCall], Any], int, asyncio.Future]] = (
            queue.SimpleQueue()
        )
        self._stop = threading.Event()
        self._running = False
        self._thread = threading.Thread(target=self._main, name="pjsip", daemon=True)
        self._started: asyncio.Future[None] = loop.create_future()
        self._stopped: asyncio.Future[None] = loop.create_future()
        # --- SIP thread only ---
        self._tokens = itertools.count(1)
        self._calls: dict[int, PjCall] = {}
        self._dead: list[PjCall] = []
        self._free_ports: dict[int, list[LinePort]] = {}
        """Media ports of ended calls, by clock rate, waiting for the next call. A port is
        never destroyed while the media clock runs: dropping one while the clock thread
        may call into it crashes the process (SIGSEGV at the end of a call, under load;
        ``tests/telephony/test_port_teardown.py``). ``_destroy`` stops the clock first."""
        self._port_names = itertools.count(1)
        self._live_legs = 0
        self._ep: pj.Endpoint | None = None
        self._account: _Account | None = None
        self._log_writer: _LogWriter | None = None

    # --- event-loop side ---------------------------------------------------------------
    async def start(self) -> None:
        self._thread.start()
        await self._started

    async def stop(self) -> None:
        self._stop.set()
        await self._stopped
        await asyncio.to_thread(self._thread.join, _STOP_WAIT_S)

    def submit(self, job: Callable[[PjCall], T], token: int) -> asyncio.Future[T]:
        """Run ``job(call)`` on the SIP thread; the future raises LookupError if the call
        is gone."""
        if not self._running:
            raise LookupError("the SIP stack is stopped")
        future: asyncio.Future[T] = self._loop.create_future()
        self._jobs.put((job, token, future))
        return future

    # --- SIP thread ------------------------------------------------------------------------
    def post(self, callback: Callable[..., None], *args: Any) -> None:
        """Run ``callback(*args)`` on the event loop (from the SIP or media thread)."""
        try:
            self._loop.call_soon_threadsafe(callback, *args)
        except RuntimeError:
            pass  # the loop is closed: nobody is listening any more

    def settle(
        self, future: asyncio.Future, result: Any = None, error: BaseException | None = None
    ) -> None:
        self.post(_settle, future, result, error)

    def _main(self) -> None:
        try:
            self._create()
        except Exception as exc:
            message = str(exc) if isinstance(exc, SipStartError) else (
                f"Impossible de démarrer SIP sur {self.options.sip_host}:{self.options.sip_port} "
                f"({_pj_reason(exc)})."
            )
            # A fresh error with no traceback: the failed frames hold the pjsua2 Endpoint,
            # and one still alive makes the next Endpoint() abort the process.
            del exc
            self._destroy()
            self.settle(self._started, error=SipStartError(message))
            self.settle(self._stopped)
            return
        self._running = True
        self.settle(self._started)
        try:
            self._serve()
        finally:
            self._running = False
            self._shutdown_calls()
            self._fail_jobs()
            self._destroy()
            self.settle(self._stopped)

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                self._ep.libHandleEvents(_EVENT_WAIT_MS)
                self._run_jobs()
                self._poll_media()
                self._reap()
            except Exception:
                log.exception("SIP thread: event handling failed; carrying on")

    def _create(self) -> None:
        options = self.options
        if options.transfer_fallback not in ("bridge", "none"):
            raise SipStartError(
                f"TelephonyOptions.transfer_fallback : « {options.transfer_fallback} » inconnu ; "
                "choix possibles : bridge, none."
            )
        self._ep = pj.Endpoint()
        ep = self._ep
        ep.libCreate()
        config = pj.EpConfig()
        config.uaConfig.threadCnt = 0
        config.uaConfig.mainThreadOnly = True
        wanted_calls = 2 * (options.max_calls + options.sip_extra_calls)
        if wanted_calls > self.call_limit:
            log.warning(
                "this pjsua2 build holds at most %d calls (PJSUA_MAX_CALLS, bridged advisor "
                "legs included); 2 x (max_calls + sip_extra_calls) = %d wanted: calls "
                "beyond the limit get 486", self.call_limit, wanted_calls,
            )
        config.uaConfig.maxCalls = min(wanted_calls, self.call_limit)
        config.uaConfig.userAgent = "allo-caf"
        self._log_writer = _LogWriter()
        config.logConfig.writer = self._log_writer
        config.logConfig.level = options.sip_log_level
        config.logConfig.consoleLevel = options.sip_log_level
        config.logConfig.msgLogging = options.sip_log_level >= 5
        # The bridge runs at the line's 8 kHz, where G.711 needs no resampling at all (the
        # media clock thread's largest cost); only a G.722 line keeps a wideband bridge.
        bridge_hz = ASR_RATE if "G722" in (c.upper() for c in options.codecs) else LINE_RATE
        config.medConfig.clockRate = bridge_hz
        config.medConfig.sndClockRate = bridge_hz
        config.medConfig.quality = _MEDIA_QUALITY
        config.medConfig.maxMediaPorts = 4 * config.uaConfig.maxCalls + 8
        config.medConfig.noVad = True  # keep RTP flowing through silences
        config.medConfig.ecTailLen = 0
        ep.libInit(config)
        ep.audDevManager().setNullDev()
        self._set_codecs()
        public = options.sip_public_host or options.sip_host
        for name in options.sip_transports:
            kind = {"udp": pj.PJSIP_TRANSPORT_UDP, "tcp": pj.PJSIP_TRANSPORT_TCP}.get(name.lower())
            if kind is None:
                raise SipStartError(
                    f"TelephonyOptions.sip_transports : transport « {name} » inconnu ; "
                    "choix possibles : udp, tcp (TLS se termine au SBC de l'opérateur)."
                )
            transport = pj.TransportConfig()
            transport.port = self.sip_port
            transport.boundAddress = options.sip_host
            transport.publicAddress = public
            try:
                transport_id = ep.transportCreate(kind, transport)
            except pj.Error as exc:
                raise SipStartError(
                    f"Impossible d'ouvrir SIP/{name.upper()} sur {options.sip_host}:"
                    f"{self.sip_port} ({_pj_reason(exc)}) ; port déjà pris ?"
                ) from None
            if self.sip_port == 0:
                self.sip_port = int(ep.transportGetInfo(transport_id).localName.rsplit(":", 1)[1])
        ep.libStart()
        account = pj.AccountConfig()
        account.idUri = f"sip:allo-caf@{public}:{self.sip_port}"
        media = account.mediaConfig.transportConfig
        media.port = options.rtp_port_min
        media.portRange = max(0, options.rtp_port_max - options.rtp_port_min)
        media.boundAddress = options.sip_host
        media.publicAddress = public
        account.mediaConfig.lockCodecEnabled = False  # answers carry one codec anyway
        self._account = _Account(self)
        self._account.create(account)

    def _set_codecs(self) -> None:
        wanted = [c.upper() for c in self.options.codecs]
        unknown = [c for c in wanted if c not in _CODEC_IDS]
        if unknown or not wanted:
            raise SipStartError(
                f"TelephonyOptions.codecs : codec « {(unknown or [''])[0]} » non géré ; "
                f"choix possibles : {', '.join(_CODEC_IDS)}."
            )
        enabled = {_CODEC_IDS[name]: 250 - rank for rank, name in enumerate(wanted)}
        for codec in self._ep.codecEnum2():
            self._ep.codecSetPriority(codec.codecId, enabled.get(codec.codecId, 0))

    # --- calls -----------------------------------------------------------------------------
    def adopt(self, call: PjCall) -> int:
        token = next(self._tokens)
        self._calls[token] = call
        return token

    def incoming(self, call: PjCall, prm: pj.OnIncomingCallParam) -> None:
        """A new INVITE: refuse it while draining or when admission says so, else hand a
        CallLeg to the loop."""
        if self.draining:
            call.reject(503)
            return
        message = prm.rdata.wholeMsg
        invite = Invite.parse(message, prm.rdata.srcAddress, self.trusted_peers)
        if self.admit is not None:
            status = self.admit(invite, self._live_legs)
        elif self._live_legs >= self.options.max_calls + self.options.sip_extra_calls:
            status = 486
        else:
            status = 0
        if status:
            call.reject(status)
            return
        info = call.getInfo()
        leg = CallLeg(
            self, call.token, info.callIdString, invite.caller,
            over_capacity=self._live_legs >= self.options.max_calls,
            loop=self._loop, audio_in_max_frames=self.options.audio_in_max_frames,
            called=invite.called, last_resort=invite.last_resort,
        )
        call.leg = leg
        self._live_legs += 1
        call.ring()
        self.post(self._on_leg, leg)

    def call_ended(self, call: PjCall) -> None:
        """From the call's DISCONNECTED callback: its media is let go of and it leaves our
        tables now, so that Python frees it as soon as the callback returns. Not later:
        right after this callback pjsua gives the call's id to the next INVITE (even one in
        the same event batch), and a ``pj.Call`` freed after that unhooks the new call
        from its ``PjCall`` and hangs it up (``Call::~Call`` acts on its id)."""
        call.release_media()
        self._calls.pop(call.token, None)
        partner, call.partner = call.partner, None
        if partner is not None and partner.partner is call:
            partner.partner = None  # the other leg of a bridge no longer keeps this one
        if call.leg is not None:
            self._live_legs -= 1
            self.post(call.leg._set_ended, not call.ended_locally, call.end_status)
            self.post(self._on_leg_ended, call.leg)

    def _run_jobs(self) -> None:
        while True:
            try:
                job, token, future = self._jobs.get_nowait()
            except queue.Empty:
                return
            call = self._calls.get(token)
            if call is None or call.gone:
                self.settle(future, error=LookupError("the call has ended"))
                continue
            try:
                self.settle(future, job(call))
            except Exception as exc:
                self.settle(future, error=exc)

    def _poll_media(self) -> None:
        for call in self._calls.values():
            if call.leg is not None and call.ports and not call.rtp_seen and not call.gone:
                call.check_rtp()

    # --- media ports: created on demand, reused, never freed while the media clock runs ---
    def take_port(self, sample_rate: int, on_frame, playout) -> LinePort:
        """A port bound to a call: a free one at this rate, else a new one. At most one
        port per rate per call is out at a time, so the pool never holds more ports than
        the calls this build can hold (``call_limit`` per rate)."""
        free = self._free_ports.setdefault(sample_rate, [])
        if not free:  # into the pool first: a port dropped on an error would be freed
            free.append(LinePort(f"port{next(self._port_names)}", sample_rate))
        free[-1].bind(on_frame, playout)  # raises (a wrong rate) before binding anything
        return free.pop()

    def give_back_port(self, port: LinePort) -> None:
        """Back to the pool, for the next call. The caller has disconnected it (or the
        call's stream went, and its connections with it)."""
        port.unbind()
        self._free_ports.setdefault(port.sample_rate, []).append(port)

    def _reap(self) -> None:
        """Calls that ended without a DISCONNECTED callback of their own (a bridge leg that
        could not be placed, calls left at shutdown)."""
        while self._dead:
            call = self._dead.pop()
            call.release_media()
            self._calls.pop(call.token, None)

    def _shutdown_calls(self) -> None:
        for call in list(self._calls.values()):
            if not call.gone:
                call.end()
        deadline = time.monotonic() + _STOP_WAIT_S
        while any(not c.gone for c in self._calls.values()) and time.monotonic() < deadline:
            try:
                self._ep.libHandleEvents(_EVENT_WAIT_MS)
            except Exception:
                log.exception("SIP thread: event handling failed during shutdown")
                break
        for call in self._calls.values():
            if not call.gone and call.leg is not None:
                self.post(call.leg._set_ended, False, 0)
                self.post(self._on_leg_ended, call.leg)
            call.finish_transfer_if_pending("the SIP stack stopped")
            self._dead.append(call)
        self._reap()

    def _fail_jobs(self) -> None:
        while True:
            try:
                _, _, future = self._jobs.get_nowait()
            except queue.Empty:
                return
            self.settle(future, error=LookupError("the SIP stack is stopped"))

    def _destroy(self) -> None:
        """Free every pjsua2 object, then the library: in that order, or it aborts. The
        media clock is stopped before any port is freed: it may be inside one's callback."""
        if any(self._free_ports.values()) or any(c.ports for c in self._calls.values()):
            try:
                self._ep.audDevManager().setNoDev()  # joins the media clock thread
            except Exception:
                log.exception("could not stop the media clock before freeing the ports")
        self._calls.clear()
        self._dead.clear()
        self._free_ports.clear()
        if self._account is not None:
            try:
                self._account.shutdown()
            except Exception:
                log.exception("account shutdown failed")
            self._account = None
        gc.collect()
        if self._ep is not None:
            try:
                self._ep.libDestroy()
            except Exception:
                log.exception("libDestroy failed")
            self._ep = None
        self._log_writer = None
        gc.collect()


class _Account(pj.Account):
    """The one local identity; with no registrar it takes every INVITE that reaches us."""

    def __init__(self, agent: PjsipAgent):
        super().__init__()
        self.agent = agent

    def onIncomingCall(self, prm: pj.OnIncomingCallParam) -> None:  # noqa: N802
        call = PjCall(self.agent, self, prm.callId)
        try:
            self.agent.incoming(call, prm)
        except Exception:
            log.exception("incoming call could not be set up; refusing it")
            call.reject(500)


@dataclass
class _Transfer:
    uri: str
    future: asyncio.Future[TransferResult]
    method: str = "refer"
    refer_status: int = 0
    finished: bool = False


class PjCall(pj.Call):
    """A pjsua2 call and what hangs off it: ports, transfer, bridge partner. SIP thread only."""

    def __init__(self, agent: PjsipAgent, account: pj.Account, call_id: int = pj.PJSUA_INVALID_ID):
        super().__init__(account, call_id)
        self.agent = agent
        self.account = account
        self.token = agent.adopt(self)
        self.leg: CallLeg | None = None  # None for the bridge leg towards an advisor
        self.ports: list[LinePort] = []
        self.audio: pj.AudioMedia | None = None
        self.media_index = -1
        self.rtp_seen = False
        self.answered = False
        self.confirmed = False
        self.gone = False
        self.ended_locally = False
        self.end_status = 0
        self.transfer: _Transfer | None = None
        self.partner: PjCall | None = None
        self.bridged = False

    # --- jobs from the loop ------------------------------------------------------------
    def ring(self) -> None:
        self._respond(180)

    def answer_ok(self) -> None:
        if self.answered:
            return
        self._respond(200)
        self.answered = True
        self.agent.post(self.leg._set_answered)

    def reject(self, status: int) -> None:
        self.ended_locally = True
        prm = pj.CallOpParam()
        prm.statusCode = status
        try:
            self.hangup(prm)
        except pj.Error as exc:
            log.warning("could not refuse a call with %d: %s", status, _pj_reason(exc))

    def end(self) -> None:
        if self.gone:
            return
        self.ended_locally = True
        prm = pj.CallOpParam()
        if not self.answered and self.leg is not None:
            prm.statusCode = 480  # still ringing: "temporarily unavailable"
        try:
            self.hangup(prm)
        except pj.Error as exc:
            log.debug("hang-up: %s", _pj_reason(exc))

    def start_transfer(self, uri: str, future: asyncio.Future[TransferResult]) -> None:
        self.transfer = _Transfer(uri, future)
        try:  # name-addr form: the target's URI headers must not read as Refer-To parameters
            self.xfer(f"<{uri}>", pj.CallOpParam(True))
        except pj.Error as exc:
            log.warning("REFER to %s not sent: %s", uri, _pj_reason(exc))
            self._refer_refused(500, _pj_reason(exc))

    def abandon_transfer(self) -> None:
        transfer = self.transfer
        if transfer is None or transfer.finished:
            return
        transfer.finished = True
        if self.partner is not None and not self.bridged:
            self.partner.end()

    # --- pjsua2 callbacks (SIP thread) ----------------------------------------------------
    def onCallState(self, prm: pj.OnCallStateParam) -> None:  # noqa: N802
        try:
            info = self.getInfo()
            if info.state == pj.PJSIP_INV_STATE_CONFIRMED:
                self.confirmed = True
                if self.leg is None:
                    self._try_bridge()
            elif info.state == pj.PJSIP_INV_STATE_DISCONNECTED:
                self.gone = True
                self.end_status = info.lastStatusCode
                self._on_disconnected()
        except Exception:
            log.exception("call state callback failed")

    def onCallMediaState(self, prm: pj.OnCallMediaStateParam) -> None:  # noqa: N802
        try:
            info = self.getInfo()  # keep it: iterating a temporary's .media reads freed memory
            for media in info.media:
                active = media.status == pj.PJSUA_CALL_MEDIA_ACTIVE
                if media.type == pj.PJMEDIA_TYPE_AUDIO and active:
                    self._connect_audio(media.index)
                    break
        except Exception:
            log.exception("media state callback failed")

    def onDtmfDigit(self, prm: pj.OnDtmfDigitParam) -> None:  # noqa: N802
        try:
            if self.leg is not None and prm.digit:
                self.agent.post(self.leg.dtmf.put_nowait, prm.digit)
        except Exception:
            log.exception("DTMF callback failed")

    def onCallTransferStatus(self, prm: pj.OnCallTransferStatusParam) -> None:  # noqa: N802
        try:
            self._transfer_status(prm)
        except Exception:
            log.exception("transfer status callback failed")

    def onCallTransferRequest(self, prm: pj.OnCallTransferRequestParam) -> None:  # noqa: N802
        prm.statusCode = 603  # the bot transfers; nobody transfers the bot

    # --- audio ------------------------------------------------------------------------
    def _connect_audio(self, index: int) -> None:
        audio = self.getAudioMedia(index)
        same_slot = self.audio is not None and self.audio.getPortId() == audio.getPortId()
        if same_slot and (not self.ports or self._ports_connected()):
            return  # a re-INVITE that kept the same stream
        # A new stream: pjsua took the old one off the bridge, and its connections with it.
        # The same slot, unplugged: pjsua replaced the stream in place (hold then resume can
        # do it); unplug what may still be pending there, and plug the call in again.
        self.release_media(unplug=same_slot)
        self.audio, self.media_index = audio, index
        if self.leg is None:
            self._try_bridge()
            return
        stream = self.getStreamInfo(index)
        codec = stream.codecName.upper()
        rx_rate = ASR_RATE if codec == "G722" else LINE_RATE
        # Nothing a port holds may lead back to this PjCall: a callback still running on
        # the media clock when the call ends would keep it alive, then free it there, late
        # (see ``PjsipAgent.call_ended``) and on the wrong thread.
        push = FrameBatcher(functools.partial(self.agent.post, self.leg._push_audio),
                            self.agent.options.uplink_frames)  # media clock thread
        take = self.agent.take_port
        if rx_rate == LINE_RATE:
            self.ports.append(take(LINE_RATE, push, self.leg.playout))
        else:  # one at a time: a port taken stays listed, so it goes back if the next fails
            self.ports.append(take(rx_rate, push, None))
            self.ports.append(take(LINE_RATE, None, self.leg.playout))
        audio.startTransmit(self.ports[0])
        self.ports[-1].startTransmit(audio)
        self.agent.post(self.leg._set_media, codec, rx_rate)

    def _ports_connected(self) -> bool:
        """Whether the bridge has the call's sending port still feeding its stream."""
        info = self.ports[-1].getPortInfo()  # kept: a temporary's listeners are freed memory
        return self.audio.getPortId() in info.listeners

    def check_rtp(self) -> None:
        """Set ``media_ready`` once the caller's RTP has really arrived."""
        try:
            received = self.getStreamStat(self.media_index).rtcp.rxStat.pkt
        except pj.Error:
            return
        if received > 0:
            self.rtp_seen = True
            self.agent.post(self.leg.media_ready.set)

    def release_media(self, unplug: bool = True) -> None:
        """Give the call's ports back to the pool (never freed while the media clock runs:
        ``media.py``), unplugged from the stream first when ``unplug`` and the call is up.
        A stream PJSIP took off the bridge (the call ended: it does so before telling us;
        a re-INVITE replaced it) took its connections with it, and asking again only logs
        PJ_EINVAL."""
        if unplug and not self.gone:
            self._disconnect_ports()
        for port in self.ports:
            self.agent.give_back_port(port)
        self.ports = []
        self.audio = None

    def _disconnect_ports(self) -> None:
        """Stop what ``_connect_audio`` started. The bridge queues these behind any
        connection still pending, so a port back in the pool stays unplugged."""
        if self.audio is None or not self.ports:
            return
        for source, sink in ((self.audio, self.ports[0]), (self.ports[-1], self.audio)):
            try:
                source.stopTransmit(sink)
            except pj.Error:
                pass  # that stream has already left the bridge, and its connections with it

    # --- transfer ----------------------------------------------------------------------
    def _transfer_status(self, prm: pj.OnCallTransferStatusParam) -> None:
        transfer = self.transfer
        if transfer is None or transfer.finished or transfer.method != "refer":
            prm.cont = False
            return
        status = prm.statusCode
        if not prm.finalNotify and status < 200:
            transfer.refer_status = 202  # a NOTIFY or the 202 itself: the REFER was taken on
            return
        prm.cont = False
        if transfer.refer_status == 0 and not 200 <= status < 300:
            self._refer_refused(status, prm.reason)
            return
        self._finish(TransferResult(
            transfer_outcome(status), status, prm.reason, "refer", transfer.refer_status or status
        ))

    def _refer_refused(self, status: int, reason: str) -> None:
        transfer = self.transfer
        transfer.refer_status = status
        if self.agent.options.transfer_fallback != "bridge":
            self._finish(TransferResult(TransferOutcome.REFUSED, status, reason, "refer", status))
            return
        log.info("REFER refused (%d %s): bridging to %s", status, reason, transfer.uri)
        transfer.method = "bridge"
        partner = PjCall(self.agent, self.account)
        partner.partner, self.partner = self, partner
        prm = pj.CallOpParam(True)
        prm.opt.audioCount, prm.opt.videoCount = 1, 0
        try:
            partner.makeCall(transfer.uri, prm)
        except pj.Error as exc:
            partner.gone = True
            self.agent._dead.append(partner)
            self.partner = None
            self._finish(TransferResult(
                TransferOutcome.REFUSED, 500, _pj_reason(exc), "bridge", status
            ))

    def _try_bridge(self) -> None:
        """On the advisor leg: once it is answered and has audio, join it to the caller."""
        caller = self.partner
        if caller is None or caller.gone or self.audio is None or not self.confirmed:
            return
        if caller.bridged or caller.audio is None:
            return
        caller._disconnect_ports()  # the bot leaves the call: its ports go back to the pool
        for port in caller.ports:
            caller.agent.give_back_port(port)
        caller.ports = []
        caller.audio.startTransmit(self.audio)
        self.audio.startTransmit(caller.audio)
        caller.bridged = self.bridged = True
        caller.agent.post(_mark_bridged, caller.leg)
        caller._finish(TransferResult(
            TransferOutcome.ACCEPTED, 200, "OK", "bridge", caller.transfer.refer_status
        ))

    def _finish(self, result: TransferResult) -> None:
        transfer = self.transfer
        if transfer is None or transfer.finished:
            return
        transfer.finished = True
        self.agent.settle(transfer.future, result)

    def finish_transfer_if_pending(self, reason: str) -> None:
        transfer = self.transfer
        if transfer is not None and not transfer.finished:
            self._finish(TransferResult(TransferOutcome.REFUSED, 0, reason, transfer.method,
                                        transfer.refer_status))

    def _on_disconnected(self) -> None:
        partner = self.partner
        if self.leg is not None:  # the caller's leg
            self.finish_transfer_if_pending("the call ended during the transfer")
            if partner is not None and not partner.gone:
                partner.end()
            self.agent.call_ended(self)
            return
        # the bridge leg towards an advisor
        if partner is not None:
            if partner.bridged:
                partner.end()
            elif partner.transfer is not None and not partner.transfer.finished:
                status = self.end_status or 500
                partner._finish(TransferResult(
                    transfer_outcome(status) if status >= 300 else TransferOutcome.REFUSED,
                    status, self.getInfo().lastReason, "bridge", partner.transfer.refer_status,
                ))
            partner.partner = None
        self.partner = None
        self.agent.call_ended(self)

    def _respond(self, status: int) -> None:
        prm = pj.CallOpParam()
        prm.statusCode = status
        self.answer(prm)


class _LogWriter(pj.LogWriter):
    def write(self, entry: pj.LogEntry) -> None:
        try:
            level = _LOG_LEVELS.get(entry.level, logging.DEBUG)
            logging.getLogger("pjsip").log(level, "%s", entry.msg.rstrip())
        except Exception:
            pass  # logging must never take the SIP thread down


def _mark_bridged(leg: CallLeg) -> None:
    leg.bridged = True
    leg.playout.close()


def _settle(future: asyncio.Future, result: Any, error: BaseException | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


def _pj_reason(exc: BaseException) -> str:
    if isinstance(exc, pj.Error):
        return exc.reason or exc.title or str(exc.status)
    return str(exc) or type(exc).__name__


# --- The called number, from the request line ------------------------------------------

_URI_USER = re.compile(r"(?:sips?|tel):([^@;>\s]+)", re.IGNORECASE)
