"""Our real ``SipEndpoint`` in a child process, for ``test_port_teardown.py``: calls come and
go while audio flows both ways, and a crash in PJSIP's media clock kills this process, not
pytest.

``python port_churn_driver.py --calls N --rtp-port P [--talk-s 0.3] [--python-load]``
prints one JSON line per event on stdout: ``ready`` (with ``sip_port``), ``call`` (one per
ended call: codec, who hung up, how long it was up, frames heard, audio played), then
``done`` (ports created, ports in the pool) once ``N`` calls have ended, the calls still up
have ended too and the endpoint has stopped; it exits 0 after that. Each call is answered,
hears a long message, is listened to, and in half the calls the bot hangs up first at a
random instant. ``--python-load`` adds a thread busy in Python, as ASR, TTS and the
dialogue keep a real process: the media clock then waits for the GIL inside port callbacks.

Fault injection, for the test only: with ``NAIVE_PORT_TEARDOWN_FOR_TEST=1`` in its
environment this driver replaces ``PjsipAgent.give_back_port`` so that an ended call's ports
are dropped instead of pooled, i.e. freed at once while the media clock may be calling them:
the teardown that crashed. The product code has no such switch.
"""

from __future__ import annotations

import argparse
import asyncio
import faulthandler
import json
import logging
import os
import random
import sys
import threading
import time
from pathlib import Path

from bot.audio import LINE_RATE, AudioFrame, read_wav
from telephony_adapter.options import TelephonyOptions
from telephony_adapter.sip import CallLeg, SipEndpoint

NAIVE_ENV = "NAIVE_PORT_TEARDOWN_FOR_TEST"
DATA = Path(__file__).resolve().parents[1] / "data" / "telephony"
_LIMIT_S = 120.0


def emit(event: str, **fields: object) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


def inject_naive_teardown() -> None:
    """The teardown before the pool: an ended call's ports are unbound and let go of, so
    Python frees them, and pjsua2 destroys them, on the SIP thread at once."""
    from telephony_adapter.pjsip_agent import PjsipAgent

    def give_back_port(self, port) -> None:
        port.unbind()  # nothing keeps it: freed when the call's ``ports`` list is cleared

    PjsipAgent.give_back_port = give_back_port

    # The media path got fast (a frame costs microseconds in Python now), which shrinks the
    # window in which the clock thread sits in a port's callback while the SIP thread frees
    # it. Spending ~0.3 ms of Python in each callback, what a frame cost before, widens it
    # back, so that the injected teardown shows its crash within a test's 150 calls.
    from telephony_adapter.media import LinePort

    def slowed(callback):
        def call(self, frame) -> None:
            deadline = time.perf_counter() + 0.0003
            while time.perf_counter() < deadline:
                pass
            callback(self, frame)
        return call

    LinePort.onFrameRequested = slowed(LinePort.onFrameRequested)
    LinePort.onFrameReceived = slowed(LinePort.onFrameReceived)


def _python_load() -> None:
    while True:
        sum(i * i for i in range(20000))  # ~1.5 ms holding the GIL
        time.sleep(0.001)


class ChurnHandler:
    """Answer, talk over the caller, listen, and sometimes hang up first at a random instant."""

    def __init__(self, wanted: int, talk_s: float, seed: int):
        self.wanted = wanted
        self.talk_s = talk_s
        self.random = random.Random(seed)
        self.ended = 0
        self.all_ended = asyncio.Event()
        greeting = read_wav(DATA / "bot_greeting_8k.wav")
        self.message = AudioFrame(greeting.pcm * 4, LINE_RATE)  # ~17 s: never runs out

    async def __call__(self, leg: CallLeg) -> None:
        report: dict[str, object] = {"call_id": leg.call_id}
        frames = 0

        async def listen() -> None:
            nonlocal frames
            while True:
                await leg.audio_in.get()
                frames += 1

        listener = asyncio.create_task(listen())
        try:
            await leg.answer()
            ready = asyncio.ensure_future(leg.media_ready.wait())
            ended = asyncio.ensure_future(leg.ended.wait())
            await asyncio.wait([ready, ended], timeout=5, return_when=asyncio.FIRST_COMPLETED)
            ready.cancel()
            ended.cancel()
            if not leg.media_ready.is_set() and not leg.ended.is_set():
                report["error"] = "no RTP from the caller within 5 s"
            playback = leg.playout.begin("churn")
            leg.playout.push(self.message)
            leg.playout.end()
            hang_up_after = None
            if self.random.random() < 0.5:
                hang_up_after = self.random.uniform(0.05, self.talk_s)
            try:
                await asyncio.wait_for(leg.ended.wait(), hang_up_after)
            except asyncio.TimeoutError:
                await leg.hangup()
            finished = await asyncio.wait_for(playback, 5)
            report.update(
                ended=leg.ended.is_set(), by_caller=leg.ended_by_caller, status=leg.end_status,
                codec=leg.codec, frames_in=frames, listened_ms=finished.listened_ms,
                talk_ms=round((leg.ended_at - leg.answered_at).total_seconds() * 1000),
            )
        except Exception as exc:  # reported: the test fails on it
            report["error"] = f"{type(exc).__name__}: {exc}"
        finally:
            listener.cancel()
            self.ended += 1
            emit("call", **report)
            if self.ended >= self.wanted:
                self.all_ended.set()


async def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, required=True)
    parser.add_argument("--rtp-port", type=int, required=True)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--talk-s", type=float, default=2.0)
    parser.add_argument("--python-load", action="store_true")
    args = parser.parse_args()
    if os.environ.get(NAIVE_ENV) == "1":
        inject_naive_teardown()
        emit("naive_teardown")
    if args.python_load:
        threading.Thread(target=_python_load, name="load", daemon=True).start()

    handler = ChurnHandler(args.calls, args.talk_s, args.seed)
    options = TelephonyOptions(
        sip_port=0, http_port=0, rtp_port_min=args.rtp_port, rtp_port_max=args.rtp_port + 200,
        max_calls=4, sip_extra_calls=0, sip_log_level=3,
    )
    endpoint = SipEndpoint(options, handler)
    await endpoint.start()
    agent = endpoint._agent
    emit("ready", sip_port=endpoint.sip_port, call_limit=endpoint.call_limit)
    await asyncio.wait_for(handler.all_ended.wait(), _LIMIT_S)
    agent.draining = True  # 503 from now on; the calls still up end as planned
    deadline = time.monotonic() + 10
    while endpoint.active_calls:
        if time.monotonic() > deadline:  # a call the SIP side lost: it will never end
            emit("stuck", active_calls=endpoint.active_calls)
            os._exit(3)  # no clean stop possible with a call pjsua2 no longer reports
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.1)  # the SIP thread is done with the last call's ports
    # Private counters, read once every call has ended: ports ever created, ports pooled.
    ports_created = next(agent._port_names) - 1
    pool = {rate: len(ports) for rate, ports in agent._free_ports.items()}
    await endpoint.stop(grace_ms=2000)
    emit("done", calls=endpoint.calls_total, ports_created=ports_created, pool=pool)
    return 0


if __name__ == "__main__":
    faulthandler.enable()  # a crash prints every Python thread's stack to stderr
    logging.basicConfig(
        stream=sys.stderr, level=logging.INFO,
        format="%(asctime)s.%(msecs)03d %(threadName)s %(name)s %(levelname)s %(message)s",
        datefmt="%H:%M:%S",
    )
    sys.exit(asyncio.run(main()))
