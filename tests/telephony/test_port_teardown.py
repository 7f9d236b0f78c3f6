"""Calls ending while their audio ports are connected: the media clock must never crash.

PJSIP's media clock thread calls every ``LinePort`` (a SWIG director) every 20 ms, holding
the port's lock while it waits for the GIL. Freeing a port on the SIP thread releases the
GIL inside pjsua2's destructor; the clock thread then enters the half-freed Python object,
and the process dies of SIGSEGV a little later, on whichever thread touches the corrupted
heap. Here our real endpoint runs in a child process (``port_churn_driver.py``) so that a
crash fails the test instead of killing pytest, and real baresip phones call it over and
over, hanging up (or being hung up on) at random instants while audio flows both ways,
some calls put on hold and resumed (two re-INVITEs), with a thread busy in Python as in a
real process.

The first test proves that the harness sees that crash: with the old teardown injected
(``NAIVE_PORT_TEARDOWN_FOR_TEST``, read by the driver only, which also gives each frame
callback the ~0.3 ms of Python it cost before the media path was made fast: without that,
the race window is so small that 150 calls may pass) the child dies of SIGSEGV:
measured 32 runs out of 32, after 0 to 94 calls (0.4 to 19 s, median 4.7 s). Two G.722
calls at a time crash it fastest (the fewer ports on the bridge, the likelier the clock is
waiting in the one being freed). The second test runs the same churn against the real code,
with four calls at once (the build's limit) and every codec, and checks that it survives
cleanly: about 14 s for 120 calls.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from audio_match import padded
from baresip_phone import Baresip, free_port

from bot.audio import read_wav, resample, write_wav

DRIVER = Path(__file__).with_name("port_churn_driver.py")
DATA = Path(__file__).resolve().parents[1] / "data" / "telephony"
NAIVE_ENV = "NAIVE_PORT_TEARDOWN_FOR_TEST"
RATES = {"PCMU": 8000, "PCMA": 8000, "G722": 16000}
CRASH_SIGNALS = {-signal.SIGSEGV, -signal.SIGABRT, -signal.SIGBUS}


@dataclass
class Churn:
    """What one run of the driver did."""

    returncode: int | None = None
    """None: still running at the time limit (killed)."""
    calls: list[dict] = field(default_factory=list)
    """The driver's report on each ended call."""
    done: dict | None = None
    stuck: dict | None = None
    established: int = 0
    refused: list[str] = field(default_factory=list)
    holds: int = 0
    seconds: float = 0.0
    log: str = ""

    def summary(self) -> str:
        tail = [line for line in self.log.splitlines() if line[:1] not in " \t"][-30:]
        return (f"rc={self.returncode} after {self.seconds:.1f} s, {len(self.calls)} calls "
                f"reported, {self.established} established, {self.holds} held, refused: "
                f"{self.refused}, done: {self.done}, stuck: {self.stuck}\n" + "\n".join(tail))


async def _keep_calling(phone: Baresip, uri: str, rng: random.Random, churn: Churn,
                        stop: asyncio.Event, talk_s: float) -> None:
    """Dial, talk for a random while (maybe hold and resume), hang up; again until told.
    Every third call talks 0.6-1 s, so that enough calls last to show audio flowing both ways
    whatever the random draws and the machine's speed."""
    dialled = 0
    while not stop.is_set():
        dialled += 1
        await phone.command("dial", uri)
        event = await phone.wait_event("CALL_ESTABLISHED", "CALL_CLOSED", timeout_s=10)
        if event["type"] != "CALL_ESTABLISHED":
            churn.refused.append(event.get("param", ""))  # 503 once the driver drains
            await asyncio.sleep(0.3)  # as a platform would: no INVITE storm
            continue
        churn.established += 1
        if rng.random() < 0.3:
            await asyncio.sleep(rng.uniform(0.1, 0.6))
            await phone.command("hold")  # re-INVITE sendonly
            await asyncio.sleep(rng.uniform(0.1, 0.6))
            await phone.command("resume")  # re-INVITE sendrecv: a new stream
            churn.holds += 1
        talk = rng.uniform(0.6, 1.0) if dialled % 3 == 0 else rng.uniform(0.05, talk_s)
        try:
            await phone.wait_event("CALL_CLOSED", timeout_s=talk)
        except asyncio.TimeoutError:
            await phone.command("hangup")
            await phone.wait_event("CALL_CLOSED", timeout_s=10)


async def run_churn(workdir: Path, calls: int, naive: bool, codecs: tuple[str, ...],
                    talk_s: float = 0.3, seed: int = 1, limit_s: float = 45.0) -> Churn:
    """Start the driver, call it from one baresip phone per codec in ``codecs`` until it has
    reported ``calls`` ended calls (or died), and kill everything whatever happens."""
    churn = Churn()
    env = {key: value for key, value in os.environ.items() if key != NAIVE_ENV}
    if naive:
        env[NAIVE_ENV] = "1"
    log_path = workdir / "driver.log"
    started = time.monotonic()
    with log_path.open("wb") as log_file:
        child = await asyncio.create_subprocess_exec(
            sys.executable, str(DRIVER), "--calls", str(calls), "--seed", str(seed),
            "--rtp-port", str(free_port()), "--talk-s", str(talk_s), "--python-load",
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=log_file, env=env,
        )
    rng = random.Random(seed)
    stop = asyncio.Event()
    phones: list[Baresip] = []
    loops: list[asyncio.Task] = []

    async def read_reports() -> None:
        assert child.stdout is not None
        async for line in child.stdout:
            if not line.startswith(b"{"):
                continue
            event = json.loads(line)
            if event["event"] == "ready":
                ready.set_result(event)
            elif event["event"] == "call":
                churn.calls.append(event)
                if len(churn.calls) >= calls:
                    stop.set()  # no new call; those up end as planned
            elif event["event"] in ("done", "stuck"):
                setattr(churn, event["event"], event)

    ready: asyncio.Future[dict] = asyncio.get_running_loop().create_future()
    reader = asyncio.create_task(read_reports())
    try:
        await asyncio.wait([ready, reader], timeout=15, return_when=asyncio.FIRST_COMPLETED)
        if not ready.done():
            raise RuntimeError("the driver did not start:\n"
                               + log_path.read_text(errors="replace")[-3000:])
        sip_port = ready.result()["sip_port"]
        for number, codec in enumerate(codecs, 1):
            phone = Baresip(workdir, f"p{number}", source=_caller_audio(workdir, RATES[codec]),
                            codec=codec, record=False, rtp_ports="20000-30000")
            phones.append(phone)
            await phone.start()
            loops.append(asyncio.create_task(_keep_calling(
                phone, f"sip:3230@127.0.0.1:{sip_port}", random.Random(rng.random()), churn,
                stop, talk_s,
            )))
        try:
            churn.returncode = await asyncio.wait_for(child.wait(), limit_s)
        except asyncio.TimeoutError:
            pass  # returncode None: reported as hung
        await asyncio.wait([reader], timeout=2)
    finally:
        stop.set()
        churn.seconds = time.monotonic() - started
        for task in [*loops, reader]:
            task.cancel()
        await asyncio.gather(*loops, reader, return_exceptions=True)
        for phone in phones:
            phone.kill()
            await phone.stop()
        if child.returncode is None:
            child.kill()
            await child.wait()
    churn.log = log_path.read_text(errors="replace")
    return churn


def _caller_audio(workdir: Path, rate: int) -> Path:
    path = workdir / f"caller_{rate}.wav"
    if not path.exists():
        question = resample(read_wav(DATA / "caller_question_16k.wav"), rate)
        write_wav(path, padded(question, 0.2, 30.0))
    return path


def _run(coroutine):
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coroutine)
    finally:
        loop.close()


def test_freeing_ports_at_call_end_crashes_the_process(tmp_path):
    """Fault injection: proves this harness catches the crash (the old teardown)."""
    churn = _run(run_churn(tmp_path, calls=150, naive=True, codecs=("G722", "G722")))
    assert churn.returncode in CRASH_SIGNALS, (
        "the injected naive teardown did not crash the endpoint: " + churn.summary())
    assert "Fatal Python error" in churn.log  # faulthandler's report of the signal


def test_calls_ending_with_ports_connected_leave_the_endpoint_standing(tmp_path):
    churn = _run(run_churn(tmp_path, calls=120, naive=False,
                           codecs=("G722", "G722", "PCMU", "PCMA")))
    summary = churn.summary()
    assert churn.returncode == 0, summary
    assert churn.done is not None and len(churn.calls) >= 120, summary
    assert churn.holds >= 10, summary
    assert not [call for call in churn.calls if "error" in call or not call["ended"]], summary
    # Audio flowed both ways in every call that lasted (the shortest end within 50 ms). About
    # a quarter of the calls last (a long talk or a hold, and the driver did not hang up first):
    # ~30 expected, 12 is far below any run's count.
    lasting = [call for call in churn.calls if call["talk_ms"] >= 500]
    assert len(lasting) >= 12, summary
    assert all(call["frames_in"] > 0 and call["listened_ms"] > 0 for call in lasting), summary
    # Ports are reused, never freed: at most one per rate per call slot (4), all back in
    # the pool once the calls are over.
    assert 0 < churn.done["ports_created"] <= 2 * 4, summary
    assert sum(churn.done["pool"].values()) == churn.done["ports_created"], summary
    # Ending a call asks nothing of a stream PJSIP already removed.
    assert "PJ_EINVAL" not in churn.log, summary
    assert "Fatal Python error" not in churn.log, summary
