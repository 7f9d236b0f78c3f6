"""One placed call of ``benchmarks/calls.py``: a recording baresip caller dialling the
node, followed from the dial to the hang-up, then its two audio dumps read back.

``Bench`` holds what every mode needs (the node, its watcher, the questions, the phones'
clocks); ``place`` is one call; ``scripts_for`` writes the callers' scripts.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from call_script import LINE_RATE, script
from node_watch import NodeWatch
from phone_timing import DumpClock, Timeline
from sip_load import Baresip, Node, caller, cpu_of, start_phone

from bot.audio import AudioFrame

CLOCK_PERIOD_S = 0.02
"""How often the callers' dumps are measured (their clocks' resolution)."""


@dataclass
class Bench:
    """What every mode needs: the node, its watcher, the material, somewhere to write."""

    node: Node
    watch: NodeWatch
    workdir: Path
    references: dict[str, AudioFrame]
    greeting_ms: int
    questions: list[dict]
    rng: random.Random
    log: Callable[[str], None]
    clocks: set[DumpClock] = field(default_factory=set)

    async def clock_phones(self, stop: asyncio.Event) -> None:
        """Sample every running caller's dumps (a measurement period, not a wait)."""
        while not stop.is_set():
            for clock in list(self.clocks):
                clock.tick()
            await asyncio.sleep(CLOCK_PERIOD_S)


@dataclass
class Call:
    """One placed call: its phone, script, clock and what happened."""

    index: int
    phone: Baresip
    script: dict
    clock: DumpClock
    record: dict = field(default_factory=dict)
    enc: Timeline | None = None
    dec: Timeline | None = None


async def _event(phone: Baresip, *kinds: str, timeout_s: float) -> dict | None:
    try:
        return await phone.wait_event(*kinds, timeout_s=timeout_s)
    except asyncio.TimeoutError:
        return None


async def new_call(bench: Bench, folder: Path, index: int, script_: dict) -> Call:
    phone = await start_phone(lambda attempt: caller(
        folder, f"caller{index}" + (f"-{attempt}" if attempt else ""), script_["wav"]))
    return Call(index, phone, script_, DumpClock(phone.dumps))


async def place(bench: Bench, call: Call, at: float, answer_timeout_s: float = 30.0) -> None:
    """Dial at ``at`` (monotonic), follow the call to its end, stop the phone so that its
    dumps are closed, and read them."""
    await asyncio.sleep(max(0.0, at - time.monotonic()))  # the arrival timetable
    rec, phone = call.record, call.phone
    bench.clocks.add(call.clock)
    try:
        rec["dialled_at"] = time.monotonic()
        try:
            await phone.command("dial", bench.node.uri)
        except Exception as exc:
            rec["error"] = f"dial: {type(exc).__name__}: {exc}"
            return
        event = await _event(phone, "CALL_ESTABLISHED", "CALL_CLOSED",
                             timeout_s=answer_timeout_s)
        if event is None:
            rec["error"] = f"no final answer in {answer_timeout_s:.0f} s"
            await asyncio.gather(phone.command("hangup"), return_exceptions=True)
            return
        if event["type"] == "CALL_CLOSED":
            rec["sip"] = event.get("param", "")
            rec["error"] = f"refused: {rec['sip']}"
            return
        rec["call_id"] = event.get("id")
        rec["established_at"] = event["at"]
        rec["answer_ms"] = round(1000 * (event["at"] - rec["dialled_at"]))
        closed = await _event(phone, "CALL_CLOSED", timeout_s=call.script["duration_s"] + 60)
        if closed is None:
            rec["error"] = "never closed"
            await asyncio.gather(phone.command("hangup"), return_exceptions=True)
            return
        rec["closed_by"] = closed.get("param", "")
        rec["duration_s"] = round(closed["at"] - event["at"], 1)
        rec["completed"] = rec["duration_s"] >= call.script["duration_s"] - 0.5
        rec["transferred"] = any(e.get("type") == "TRANSFER" for e in phone.events)
    finally:
        rec["phone_cpu_s"] = cpu_of(phone)
        bench.clocks.discard(call.clock)
        await phone.stop()
        phone.kill()
        call.enc, call.dec = call.clock.timeline("enc"), call.clock.timeline("dec")


def scripts_for(bench: Bench, folder: Path, n: int, per_call: int, first: int = 0,
                min_duration_s: float = 0.0) -> list[dict]:
    qs = bench.questions
    out = []
    for i in range(first, first + n):
        asked = [qs[(i + j) % len(qs)] for j in range(per_call)]
        while min_duration_s and len(asked) < 6 and _length(bench, asked) < min_duration_s:
            asked.append(qs[(i + len(asked)) % len(qs)])
        out.append(script(folder / f"caller{i}.wav", bench.greeting_ms, asked,
                          lead_jitter_s=bench.rng.uniform(0, 0.5)))
    return out


def _length(bench: Bench, asked: list[dict]) -> float:
    return (bench.greeting_ms / 1000 + 4 + sum(len(q["audio"].pcm) / 2 / LINE_RATE
                                               + q["answer_ms"] / 1000 + 2.5 for q in asked))
