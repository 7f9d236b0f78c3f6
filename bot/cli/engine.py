"""``voicebot engine``: the node's speech engine, started by ``voicebot serve``.

Loads Whisper, Silero, Rasa, the knowledge base and the audio cache once, then runs every
call the node's SIP media workers stream to it (telephony_adapter/engine.py). It writes the
ledger rows of the calls it handles and replays the ledger spool. Run by hand only to debug.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
import threading

from bot.settings import Settings

log = logging.getLogger(__name__)

SPOOL_REPLAY_S = 60
"""How often ledger events spooled while the database was down are replayed."""


def register(sub: argparse._SubParsersAction) -> None:
    engine = sub.add_parser("engine", help="moteur vocal du nœud (lancé par voicebot serve)")
    engine.add_argument("--port", type=int, default=None,
                        help="port des flux audio des appels (défaut : node.engine_port)")
    engine.add_argument("--status-fd", type=int, default=None, help=argparse.SUPPRESS)
    engine.add_argument("--grace", type=float, default=60.0, metavar="SECONDES",
                        help="à l'arrêt, délai laissé aux appels en cours pour finir")
    engine.set_defaults(func=run_engine)


def run_engine(args: argparse.Namespace, settings: Settings) -> int:
    from bot.cli.serve import quiet_libraries
    from telephony_adapter.status_pipe import StatusWriter

    quiet_libraries()
    port = settings.node.engine_port if args.port is None else args.port
    return asyncio.run(serve_engine(settings, port, StatusWriter(args.status_fd), args.grace))


async def serve_engine(settings: Settings, port: int, status, grace_s: float) -> int:
    from bot.pipeline import VoiceServices
    from ledger import Ledger
    from telephony_adapter.call import CallFlow
    from telephony_adapter.engine import EngineServer
    from telephony_adapter.http import CallMetrics, render_asr
    from tts.fallback import write_fallback_audio

    services = await VoiceServices.load(settings)
    loop_first(settings.asr.thread_nice)
    await asyncio.to_thread(write_fallback_audio, services.speaker.cache,
                            services.dialogue.snapshot.kb, settings.paths.state_dir)
    ledger = await asyncio.to_thread(Ledger.open, settings)
    flow = CallFlow(services, ledger, CallMetrics())
    asr = services.scheduler()

    def asr_status() -> dict:
        stats = asr.stats()
        return {"asr": {"queued_turns": stats.queued_real,
                        "queued_speculative": stats.queued_speculative,
                        "running": stats.running, "done": stats.done, "late": stats.late}}

    server = EngineServer(flow, settings.telephony, extra_metrics=lambda: render_asr(asr.stats()),
                          extra_status=asr_status)
    await server.start(settings.node.engine_host, port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    status.send({"type": "ready", "port": server.port})
    log.info("speech engine ready on %s:%d", settings.node.engine_host, server.port)
    print(f"Moteur vocal prêt : ws://{settings.node.engine_host}:{server.port}",
          file=sys.stderr, flush=True)
    replay = asyncio.create_task(_replay_spool_forever(ledger))
    try:
        await stop.wait()
        await server.stop(grace_s)
    finally:
        replay.cancel()
        await asr.close()
        await asyncio.to_thread(ledger.replay_spool)
        ledger.close()
    return 0


def loop_first(nice: int) -> None:
    """Every thread the models started (Whisper's, TensorFlow's, Rasa's, ONNX Runtime's)
    runs at a lower priority than the event loop, which carries every call's audio: on a
    busy CPU a reply comes later, but no caller's audio falls behind the line's clock."""
    if nice <= 0:
        return
    loop_thread = threading.get_native_id()
    for task in os.listdir("/proc/self/task"):
        if int(task) != loop_thread:
            with contextlib.suppress(OSError):  # a thread that ended meanwhile
                os.setpriority(os.PRIO_PROCESS, int(task), nice)


async def _replay_spool_forever(ledger) -> None:
    while True:
        await asyncio.sleep(SPOOL_REPLAY_S)  # a period, not a synchronisation
        await asyncio.to_thread(ledger.replay_spool)
