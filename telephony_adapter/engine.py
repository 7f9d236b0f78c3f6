"""The speech engine's network side: every worker's calls arrive here as media streams.

One process per node loads Whisper, Silero, Rasa, the knowledge base and the audio cache
once, and runs every conversation of the node (``CallFlow`` on a ``RemoteLeg`` per
stream). Workers hold the SIP calls; this holds none, so a worker that dies loses only its
own calls, and an engine that dies is noticed at once by every worker, which then
apologises to its callers and transfers them (telephony_adapter/worker.py).

Routes, all on ``node.engine_host:engine_port`` (loopback by default):

- ``GET /calls``: a call's media stream (WebSocket, subprotocol ``audio.allo-caf.v1``);
- ``GET /link``: a worker's liveness link, so it refuses new calls while the engine is down;
- ``GET /status``: JSON for the node's supervisor; ``GET /metrics``: Prometheus text.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable

from aiohttp import WSMsgType, web

from telephony_adapter import stream
from telephony_adapter.call import CallFlow
from telephony_adapter.http import PROMETHEUS_CONTENT_TYPE
from telephony_adapter.options import TelephonyOptions
from telephony_adapter.remote_leg import RemoteLeg

log = logging.getLogger(__name__)

START_WAIT_S = 5.0
"""A worker sends ``start`` as soon as it connects; a silent socket is not a call."""
HEARTBEAT_S = 5.0
"""WebSocket ping period: a peer that vanished without closing is noticed within 2 periods."""
MAX_FRAME_BYTES = 1 << 20


LAG_PROBE_S = 0.1
"""How often the engine checks that its event loop keeps up with the calls' audio."""
LAG_WARN_S = 0.5


class LoopLag:
    """How late the engine's event loop runs: every call's audio, VAD and turn-taking share
    it, so a loop held up for a second delays every caller's reply by a second."""

    def __init__(self) -> None:
        self.worst_s = 0.0
        """Since the last ``take``: what ``/metrics`` reports (then forgotten)."""
        self.total_s = 0.0

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(LAG_PROBE_S)  # a probe of the loop's delay, not a sync
            lag = loop.time() - before - LAG_PROBE_S
            self.worst_s = max(self.worst_s, lag)
            self.total_s += max(0.0, lag)
            if lag > LAG_WARN_S:
                log.warning("engine event loop %.0f ms late", lag * 1000)

    def render(self) -> str:
        worst, self.worst_s = self.worst_s, 0.0
        return ("# HELP allo_caf_engine_loop_lag_seconds Worst delay of the engine's event "
                "loop since the last scrape.\n"
                "# TYPE allo_caf_engine_loop_lag_seconds gauge\n"
                f"allo_caf_engine_loop_lag_seconds {worst:.3f}\n"
                "# HELP allo_caf_engine_loop_lag_seconds_total Accumulated delay of the "
                "engine's event loop.\n"
                "# TYPE allo_caf_engine_loop_lag_seconds_total counter\n"
                f"allo_caf_engine_loop_lag_seconds_total {self.total_s:.3f}\n")


class EngineServer:
    """Accepts media streams from the node's workers and runs each through ``flow``."""

    def __init__(self, flow: CallFlow, options: TelephonyOptions,
                 extra_metrics: Callable[[], str] | None = None,
                 extra_status: Callable[[], dict] | None = None):
        self.flow = flow
        self.options = options
        self.port = 0
        self.draining = False
        self._extra_metrics = extra_metrics
        self._extra_status = extra_status
        self._legs: dict[str, RemoteLeg] = {}
        self._links: set[web.WebSocketResponse] = set()
        self._idle = asyncio.Event()
        self._idle.set()
        self._runner: web.AppRunner | None = None
        self.lag = LoopLag()
        self._lag_task: asyncio.Task | None = None

    @property
    def active_calls(self) -> int:
        return len(self._legs)

    async def start(self, host: str, port: int) -> None:
        app = web.Application()
        app.router.add_get(stream.CALLS_PATH, self._call)
        app.router.add_get(stream.LINK_PATH, self._link)
        app.router.add_get("/status", self._status)
        app.router.add_get("/metrics", self._metrics)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()
        self.port = self._runner.addresses[0][1]
        self._lag_task = asyncio.create_task(self.lag.run(), name="loop lag")

    async def stop(self, grace_s: float) -> None:
        """Let the calls in progress finish (workers drain first), then close everything."""
        self.draining = True
        try:
            await asyncio.wait_for(self._idle.wait(), grace_s)
        except asyncio.TimeoutError:
            log.warning("%d call(s) still on the engine after %.0f s", len(self._legs), grace_s)
        if self._lag_task is not None:
            self._lag_task.cancel()
        for link in list(self._links):
            await link.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # --- one call ---------------------------------------------------------------------------
    async def _call(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(protocols=(stream.SUBPROTOCOL,), heartbeat=HEARTBEAT_S,
                                   max_msg_size=MAX_FRAME_BYTES)
        await ws.prepare(request)
        try:
            first = await ws.receive(timeout=START_WAIT_S)
            if first.type is not WSMsgType.TEXT:
                raise stream.ProtocolError("the first frame must be the start message")
            start = stream.decode(first.data, frozenset({stream.START}))
            outbox = stream.Outbox()
            leg = RemoteLeg(start, outbox.put, asyncio.get_running_loop(),
                            over_capacity=len(self._legs) >= self.options.max_calls,
                            transfer_timeout_ms=self.options.transfer_timeout_ms,
                            audio_in_max_frames=self.options.audio_in_max_frames,
                            recorder=self.flow.new_recorder())
        except (stream.ProtocolError, asyncio.TimeoutError) as exc:
            log.warning("media stream refused: %s", exc)
            await ws.close(code=1002, message=b"protocol error")
            return ws
        if leg.call_id in self._legs:
            log.warning("call %s: a second stream for the same call refused", leg.call_id)
            await ws.close(code=1008, message=b"duplicate call")
            return ws
        self._legs[leg.call_id] = leg
        self._idle.clear()
        writer = asyncio.create_task(outbox.pump(ws), name=f"send {leg.call_id}")
        reader = asyncio.create_task(_read(ws, leg), name=f"receive {leg.call_id}")
        try:
            await self.flow.handle(leg)  # never raises: failures become apology + transfer
            outbox.put(stream.encode(stream.DONE))
        finally:
            outbox.close()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(writer), HEARTBEAT_S)
            writer.cancel()
            reader.cancel()
            await asyncio.gather(writer, reader, return_exceptions=True)
            await ws.close()
            del self._legs[leg.call_id]
            if not self._legs:
                self._idle.set()
        return ws

    # --- liveness, status, metrics ---------------------------------------------------------
    async def _link(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(protocols=(stream.SUBPROTOCOL,), heartbeat=HEARTBEAT_S)
        await ws.prepare(request)
        self._links.add(ws)
        try:
            async for _ in ws:  # the worker sends nothing; this returns when it goes away
                pass
        finally:
            self._links.discard(ws)
        return ws

    async def _status(self, request: web.Request) -> web.Response:
        body = {"ready": True, "draining": self.draining, "calls": len(self._legs),
                "workers_linked": len(self._links),
                "live_calls": [call.as_json() for call in list(self.flow.live.values())]}
        if self._extra_status is not None:
            body.update(self._extra_status())
        return web.Response(text=json.dumps(body), content_type="application/json")

    async def _metrics(self, request: web.Request) -> web.Response:
        text = ("# HELP allo_caf_engine_calls Calls the speech engine is running.\n"
                "# TYPE allo_caf_engine_calls gauge\n"
                f"allo_caf_engine_calls {len(self._legs)}\n" + self.lag.render()
                + self.flow.metrics.render_counters())
        if self._extra_metrics is not None:
            text += self._extra_metrics()
        return web.Response(body=text.encode(), headers={"Content-Type": PROMETHEUS_CONTENT_TYPE})


async def _read(ws: web.WebSocketResponse, leg: RemoteLeg) -> None:
    allowed = stream.FROM_WORKER - {stream.START}
    complained = False
    try:
        async for message in ws:
            if message.type is WSMsgType.BINARY:
                leg.push_audio(message.data)
                continue
            if message.type is not WSMsgType.TEXT:
                continue
            try:
                leg.handle(stream.decode(message.data, allowed))
            except stream.ProtocolError as exc:
                if not complained:  # once per call: a buggy peer must not flood the log
                    log.warning("call %s: bad frame from the worker ignored: %s", leg.call_id,
                                exc)
                    complained = True
    finally:
        leg.lost()
