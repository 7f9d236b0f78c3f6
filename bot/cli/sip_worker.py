"""``voicebot sip-worker``: one SIP media worker of the node, started by ``voicebot serve``.

Holds up to ``node.calls_per_worker`` calls in pjsua2 and relays each to the speech engine
(telephony_adapter/worker.py). Loads no model. SIGTERM drains: new calls 503, calls in
progress finish (up to ``--grace``).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal

from bot.settings import Settings

log = logging.getLogger(__name__)

STATUS_PERIOD_S = 1.0
"""How often the worker tells the supervisor its call count (also sent on every change)."""


def register(sub: argparse._SubParsersAction) -> None:
    worker = sub.add_parser("sip-worker", help="processus SIP du nœud (lancé par voicebot serve)")
    worker.add_argument("--index", type=int, required=True,
                        help="rang du processus (0, 1…; --workers : celui de secours)")
    worker.add_argument("--workers", type=int, required=True, help="nombre de processus SIP")
    worker.add_argument("--engine-port", type=int, required=True, help="port du moteur vocal")
    worker.add_argument("--status-fd", type=int, default=None, help=argparse.SUPPRESS)
    worker.add_argument("--grace", type=float, default=60.0, metavar="SECONDES",
                        help="à l'arrêt, délai laissé aux appels en cours pour finir")
    worker.set_defaults(func=run_worker)


def run_worker(args: argparse.Namespace, settings: Settings) -> int:
    from telephony_adapter.status_pipe import StatusWriter

    logging.getLogger().setLevel(min(logging.getLogger().level, logging.INFO))
    return asyncio.run(serve_worker(settings, args.index, args.workers, args.engine_port,
                                    StatusWriter(args.status_fd), args.grace))


async def serve_worker(settings: Settings, index: int, workers: int, engine_port: int,
                       status, grace_s: float) -> int:
    import aiohttp

    from telephony_adapter.node_plan import plan_node
    from telephony_adapter.sip import SipEndpoint
    from telephony_adapter.worker import CallRelay, EngineLink, admission
    from tts.fallback import FallbackAudio

    plan = plan_node(settings.telephony, settings.node, workers, engine_port)
    me = plan.all_workers[index]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with aiohttp.ClientSession() as session:
        link = EngineLink(session, plan.engine_url)
        linking = asyncio.create_task(link.run())
        relay = CallRelay(session, plan.engine_url, me.name,
                          FallbackAudio(settings.paths.state_dir), status.send)
        endpoint = SipEndpoint(me.telephony, relay.handle,
                               admit=admission(link, me.telephony.max_calls, me.rescue))
        await endpoint.start()
        status.send({"type": "ready", "sip_port": endpoint.sip_port})
        reporting = asyncio.create_task(_report(endpoint, link, status))
        try:
            await stop.wait()
            await endpoint.stop(grace_ms=int(grace_s * 1000))
        finally:
            reporting.cancel()
            linking.cancel()
    return 0


async def _report(endpoint, link, status) -> None:
    """The call count and engine link, every period and at once when either changes: the
    supervisor steers Kamailio away from a worker that cannot take a call."""
    while True:
        status.send({"type": "status", "calls": endpoint.active_calls, "engine_up": link.up,
                     "draining": endpoint.draining})
        link.changed.clear()
        endpoint.changed.clear()
        waits = [asyncio.ensure_future(link.changed.wait()),
                 asyncio.ensure_future(endpoint.changed.wait())]
        await asyncio.wait(waits, timeout=STATUS_PERIOD_S, return_when=asyncio.FIRST_COMPLETED)
        for wait in waits:
            wait.cancel()
