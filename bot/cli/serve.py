"""``voicebot serve``: the phone line. SIP calls in, the voice pipeline, the ledger out.

Starts the models once, the SIP endpoint (UDP and TCP on ``telephony.sip_host:sip_port``)
and ``/health`` + ``/metrics``. SIGTERM or Ctrl-C drains: new calls get 503, calls in
progress finish (up to ``--grace`` seconds), then the process exits.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from bot import settings as settings_module
from bot.settings import Settings

log = logging.getLogger(__name__)

SPOOL_REPLAY_S = 60
"""How often ledger events spooled while the database was down are replayed."""


def register(sub: argparse._SubParsersAction) -> None:
    serve = sub.add_parser("serve", help="répondre aux appels SIP (service téléphonique)")
    serve.add_argument("--sip-port", type=int, default=None,
                       help="port SIP, UDP et TCP (défaut : telephony.sip_port, 5060)")
    serve.add_argument("--http-port", type=int, default=None,
                       help="port de /health et /metrics (défaut : telephony.http_port, 8080)")
    serve.add_argument("--grace", type=float, default=60.0, metavar="SECONDES",
                       help="à l'arrêt, délai laissé aux appels en cours pour finir")
    serve.set_defaults(func=run_serve)


def run_serve(args: argparse.Namespace, settings: Settings) -> int:
    changes = {}
    if args.sip_port is not None:
        changes["sip_port"] = args.sip_port
    if args.http_port is not None:
        changes["http_port"] = args.http_port
    if changes:
        settings = settings_module.replace(settings, telephony=changes)
    logging.getLogger().setLevel(min(logging.getLogger().level, logging.INFO))
    for chatty in ("alembic", "faster_whisper"):  # one line per migration step, per utterance
        logging.getLogger(chatty).setLevel(max(logging.getLogger(chatty).level, logging.WARNING))
    return asyncio.run(serve(settings, args.grace))


async def serve(settings: Settings, grace_s: float) -> int:
    from bot.pipeline import VoiceServices
    from telephony_adapter.call import CallFlow
    from telephony_adapter.http import CallMetrics, HealthServer
    from telephony_adapter.ledger import Ledger
    from telephony_adapter.sip import SipEndpoint

    print("Chargement des modèles (reconnaissance vocale, dialogue, voix)…", file=sys.stderr)
    services = await VoiceServices.load(settings)
    ledger = await asyncio.to_thread(Ledger.open, settings)
    metrics = CallMetrics()
    flow = CallFlow(services, ledger, metrics)
    endpoint = SipEndpoint(settings.telephony, flow.handle)
    health = HealthServer(settings.telephony, endpoint, metrics)
    await endpoint.start()
    await health.start()
    t = settings.telephony
    print(f"En service : SIP {t.sip_host}:{endpoint.sip_port} ({', '.join(t.sip_transports)}), "
          f"santé http://{t.http_host}:{health.port}/health — Ctrl-C pour arrêter.",
          file=sys.stderr, flush=True)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    replay = asyncio.create_task(_replay_spool_forever(ledger))
    try:
        await stop.wait()
        print(f"Arrêt : plus de nouveaux appels ; {endpoint.active_calls} appel(s) en cours "
              f"terminent (au plus {grace_s:.0f} s).", file=sys.stderr, flush=True)
        await endpoint.stop(grace_ms=int(grace_s * 1000))
    finally:
        replay.cancel()
        await health.stop()
        await asyncio.to_thread(ledger.replay_spool)
        ledger.close()
    return 0


async def _replay_spool_forever(ledger) -> None:
    while True:
        await asyncio.sleep(SPOOL_REPLAY_S)  # a period, not a synchronisation
        await asyncio.to_thread(ledger.replay_spool)
