"""``voicebot serve``: the node. Kamailio on the SIP address, SIP media workers behind it,
one speech engine, each supervised (telephony_adapter/node.py).

SIGTERM or Ctrl-C drains: Kamailio refuses new calls (503, so a front balancer moves them to
another node), calls in progress finish (up to ``--grace`` seconds), then everything stops.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys

from bot import settings as settings_module
from bot.settings import Settings

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    serve = sub.add_parser("serve", help="répondre aux appels SIP (le nœud complet)")
    serve.add_argument("--sip-port", type=int, default=None,
                       help="port SIP du nœud, UDP et TCP, où écoute Kamailio (défaut : "
                            "telephony.sip_port, 5060) ; les processus SIP prennent les suivants")
    serve.add_argument("--http-port", type=int, default=None,
                       help="port de /health et /metrics (défaut : telephony.http_port, 8080)")
    serve.add_argument("--workers", type=int, default=None, metavar="N",
                       help="nombre de processus SIP (défaut : assez pour telephony.max_calls "
                            "+ sip_extra_calls, à node.calls_per_worker appels chacun)")
    serve.add_argument("--grace", type=float, default=60.0, metavar="SECONDES",
                       help="à l'arrêt, délai laissé aux appels en cours pour finir")
    serve.set_defaults(func=run_serve)


def run_serve(args: argparse.Namespace, settings: Settings) -> int:
    overrides = {}
    if args.sip_port is not None:
        overrides["VOICEBOT_TELEPHONY_SIP_PORT"] = str(args.sip_port)
    if args.http_port is not None:
        overrides["VOICEBOT_TELEPHONY_HTTP_PORT"] = str(args.http_port)
    if overrides:  # the children read the same settings: hand them the command line too
        settings = settings_module.load(args.config, {**os.environ, **overrides})
    if args.workers is not None and args.workers < 1:
        print("Erreur : --workers doit valoir au moins 1.", file=sys.stderr)
        return 2
    quiet_libraries()
    return asyncio.run(serve(settings, args, {**os.environ, **overrides}))


def quiet_libraries() -> None:
    logging.getLogger().setLevel(min(logging.getLogger().level, logging.INFO))
    for chatty in ("alembic", "faster_whisper"):  # one line per migration step, per utterance
        logging.getLogger(chatty).setLevel(max(logging.getLogger(chatty).level, logging.WARNING))


async def serve(settings: Settings, args: argparse.Namespace, env: dict[str, str]) -> int:
    from telephony_adapter.node import Node
    from telephony_adapter.node_plan import plan_node

    engine_port = settings.node.engine_port or free_tcp_port(settings.node.engine_host)
    plan = plan_node(settings.telephony, settings.node, args.workers, engine_port)
    node = Node(settings, plan, args.grace, env, args.config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    t = settings.telephony
    print(f"Démarrage du nœud : moteur vocal (chargement des modèles), {len(plan.workers)} "
          f"processus SIP, Kamailio sur {t.sip_host}:{plan.sip_port}…", file=sys.stderr,
          flush=True)
    starting = asyncio.create_task(node.start())
    stopped = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({starting, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if starting.done():
            starting.result()  # a start failure raises its French NodeStartError here
            print(f"En service : SIP {t.sip_host}:{plan.sip_port} ({', '.join(t.sip_transports)}"
                  f"), {len(plan.workers)} processus SIP ({plan.capacity} appels), santé "
                  f"http://{t.http_host}:{node.health.port}/health — Ctrl-C pour arrêter.",
                  file=sys.stderr, flush=True)
            await stopped
        else:
            starting.cancel()
        print(f"Arrêt : plus de nouveaux appels ; {node.active_calls} appel(s) en cours "
              f"terminent (au plus {args.grace:.0f} s).", file=sys.stderr, flush=True)
    finally:
        stopped.cancel()
        await node.drain()
    return 0


def free_tcp_port(host: str) -> int:
    import socket

    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]
