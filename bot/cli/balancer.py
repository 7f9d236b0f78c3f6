"""``voicebot balancer``: Kamailio in front of several nodes, in the foreground, restarted on death.

The front balancer is the first hop from the operator (``edge``): it spreads calls over the
nodes' SIP addresses, moves on when a node is silent or answers 503, and when every node
failed tries once more with ``X-Allo-Last-Resort: 1`` so that the caller is answered anyway
(docs/kamailio.md). SIGTERM or Ctrl-C stops Kamailio and leaves no process behind.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from bot.settings import Settings

if TYPE_CHECKING:
    from telephony_adapter.kamailio import DispatcherConfig

RESTART_DELAY_MAX_S = 30.0
"""Longest wait between two restarts of a Kamailio that keeps dying."""
STABLE_AFTER_S = 10.0
"""A Kamailio that ran this long before dying is restarted at once."""


def register(sub: argparse._SubParsersAction) -> None:
    balancer = sub.add_parser(
        "balancer", help="répartiteur SIP (Kamailio) devant plusieurs nœuds allo-caf")
    balancer.add_argument("--sip-host", default=None, metavar="ADRESSE",
                          help="adresse IP d'écoute SIP (défaut : balancer.sip_host, 127.0.0.1)")
    balancer.add_argument("--sip-port", type=int, default=None, metavar="PORT",
                          help="port SIP, UDP et TCP (défaut : balancer.sip_port, 5060)")
    balancer.add_argument("--node", action="append", default=None, metavar="HÔTE:PORT",
                          help="adresse SIP d'un nœud ; répétez l'option pour chaque nœud "
                               "(défaut : balancer.nodes)")
    balancer.add_argument("--runtime-dir", type=Path, default=None, metavar="DOSSIER",
                          help="dossier de la configuration générée et des sockets de "
                               "contrôle (défaut : <state_dir>/balancer)")
    balancer.add_argument("--probe-interval", type=int, default=None, metavar="SECONDES",
                          help="intervalle des sondes OPTIONS vers chaque nœud "
                               "(défaut : balancer.probe_interval_s, 2)")
    balancer.set_defaults(func=run_balancer)


def run_balancer(args: argparse.Namespace, settings: Settings) -> int:
    from telephony_adapter.kamailio import DispatcherConfig, KamailioError, node_destination

    options = settings.balancer
    nodes = args.node or list(options.nodes)
    if not nodes:
        raise KamailioError(
            "Aucun nœud derrière le répartiteur : donnez --node HÔTE:PORT (une fois par "
            "nœud) ou balancer.nodes dans voicebot.yml (VOICEBOT_BALANCER_NODES)."
        )
    runtime_dir = args.runtime_dir or options.runtime_dir or settings.paths.state_dir / "balancer"
    config = DispatcherConfig(
        destinations=tuple(node_destination(node) for node in nodes),
        runtime_dir=runtime_dir.resolve(),
        listen_host=args.sip_host or options.sip_host,
        listen_port=args.sip_port if args.sip_port is not None else options.sip_port,
        edge=True,
        probe_interval_s=(args.probe_interval if args.probe_interval is not None
                          else options.probe_interval_s),
        failover_timeout_ms=options.failover_timeout_ms,
        answer_timeout_ms=options.answer_timeout_ms,
        name="balancer",
    )
    logging.getLogger().setLevel(min(logging.getLogger().level, logging.INFO))
    return asyncio.run(supervise(config))


async def supervise(config: DispatcherConfig) -> int:
    """Run Kamailio until SIGTERM/SIGINT, restarting it whenever it dies.

    A first start that fails raises (the CLI prints it); later failures are retried with a
    growing delay, since the nodes behind may need the balancer back as soon as possible.
    """
    from telephony_adapter.kamailio import Kamailio, KamailioError

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    kamailio = Kamailio(config)
    stopping = asyncio.ensure_future(stop.wait())
    delay_s = 0.0
    first = True
    try:
        while not stop.is_set():
            if delay_s:
                await asyncio.wait({stopping}, timeout=delay_s)  # a back-off period, or stop
                if stop.is_set():
                    break
            try:
                await kamailio.start()
            except KamailioError as exc:
                if first:
                    raise
                delay_s = min(max(1.0, delay_s * 2), RESTART_DELAY_MAX_S)
                print(f"Kamailio n'a pas pu redémarrer ; nouvel essai dans {delay_s:.0f} s. "
                      f"{exc}", file=sys.stderr, flush=True)
                continue
            first = False
            started = time.monotonic()
            _announce(config)
            exited = asyncio.ensure_future(kamailio.wait())
            await asyncio.wait({exited, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if stop.is_set():
                exited.cancel()
                break
            await kamailio.stop()  # its workers, if any outlived it
            ran_s = time.monotonic() - started
            delay_s = 0.0 if ran_s > STABLE_AFTER_S else min(max(1.0, delay_s * 2),
                                                              RESTART_DELAY_MAX_S)
            print(f"Kamailio s'est arrêté (code {exited.result()}) ; redémarrage"
                  + (f" dans {delay_s:.0f} s." if delay_s else "."), file=sys.stderr, flush=True)
            for line in kamailio.recent_log(5):
                print(f"  {line}", file=sys.stderr, flush=True)
    finally:
        stopping.cancel()
        await kamailio.stop()
    print("Répartiteur SIP arrêté.", file=sys.stderr, flush=True)
    return 0


def _announce(config: DispatcherConfig) -> None:
    nodes = ", ".join(d.uri.removeprefix("sip:") for d in config.destinations)
    print(f"En service : répartiteur SIP {config.listen_host}:{config.listen_port} "
          f"({', '.join(config.transports)}) → {len(config.destinations)} nœud(s) : {nodes} "
          f"— Ctrl-C pour arrêter.", file=sys.stderr, flush=True)
