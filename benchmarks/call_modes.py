"""The three ways ``benchmarks/calls.py`` loads one node: rounds of N calls, a saturation
burst, a soak. Each returns a plain dict for the JSON report (``calls.py`` adds targets).

- ``run_round``: N callers arriving at random instants within ``stagger_s``, each asking
  its questions; per question the phone-side reply time (``phone_timing.py``) beside the
  engine's own ``response`` figure, and what was understood beside the offline reading.
- ``run_saturation``: N callers dialling at the same instant and saying nothing; what each
  phone heard in its first seconds, recognised against the bot's pre-rendered greeting and
  saturation message, or the SIP failure it got.
- ``run_soak``: calls arriving at a steady rate with about ``concurrency`` up at a time;
  at the end one ledger row per call, no process of the node gone, memory growth.
"""

from __future__ import annotations

import asyncio
import shutil
import statistics
import time

from audio_match import match
from call_place import Bench, Call, new_call, place, scripts_for
from call_report import aggregate, count, ledger_check, summarise_call, turns_by_call
from call_script import silent_script
from node_watch import NodeWatch, Window
from phone_timing import LOUD_DBFS, frame_dbfs, summary

from bot.audio import AudioFrame

SAME_AUDIO = 0.85
"""Correlation above which a phone heard a reference message (see tests' audio_match.py:
a G.711 round trip scores ≥ 0.94, other speech ≈ 0.1)."""
REFERENCE_HEAD_S = 3.0
"""How much of a message's start is looked for in what a saturation caller heard."""


# --- mode 1: rounds of N calls ------------------------------------------------------------
async def run_round(bench: Bench, n: int, stagger_s: float, per_call: int) -> dict:
    folder = bench.workdir / f"n{n}"
    folder.mkdir()
    scripts = scripts_for(bench, folder, n, per_call)
    delays = sorted(bench.rng.uniform(0, stagger_s) for _ in range(n)) if n > 1 else [0.0]
    delays = [d - delays[0] for d in delays]
    since_line, since_wall = len(bench.node.lines), time.time()
    calls = []
    try:
        for i in range(n):
            calls.append(await new_call(bench, folder, i, scripts[i]))
        window = Window(bench.watch)
        t0 = time.monotonic() + 0.5
        await asyncio.gather(*(place(bench, c, t0 + d) for c, d in zip(calls, delays, strict=True)))
    finally:
        for c in calls:
            c.phone.kill()
    cpu = window.close(sum(c.record.get("phone_cpu_s", 0.0) for c in calls))
    return await report_calls(bench, calls, since_line, since_wall, window, cpu,
                              {"calls": n, "stagger_s": stagger_s, "questions_per_call": per_call})


async def report_calls(bench: Bench, calls: list[Call], since_line: int, since_wall: float,
                       window: Window, cpu: dict, head: dict) -> dict:
    node = bench.node
    turns = turns_by_call(node, since_line)
    items, questions = [], []
    for c in calls:
        cid = c.record.get("call_id")
        transcript = await asyncio.to_thread(node.transcript, cid) if cid else None
        item, rows = summarise_call(bench, c, turns.get(cid or "", []), transcript)
        items.append(item)
        questions += rows
    return await aggregate(bench, items, questions, turns, since_line, since_wall, window,
                           cpu, head)


# --- mode 2: saturation -------------------------------------------------------------------
async def run_saturation(bench: Bench, n: int, listen_s: float) -> dict:
    folder = bench.workdir / f"saturation{n}"
    folder.mkdir()
    wav = silent_script(folder / "silence.wav", listen_s + 2.0)
    since_line, since_wall = len(bench.node.lines), time.time()
    calls = []
    try:
        for i in range(n):
            calls.append(await new_call(bench, folder, i, {"wav": wav,
                                                           "duration_s": listen_s + 2.0,
                                                           "questions": []}))
        window = Window(bench.watch)
        t0 = time.monotonic() + 0.5
        await asyncio.gather(*(place(bench, c, t0) for c in calls))
    finally:
        for c in calls:
            c.phone.kill()
    cpu = window.close(sum(c.record.get("phone_cpu_s", 0.0) for c in calls))
    heads = {key: _head(bench.references[key]) for key in ("greeting", "saturation")
             if key in bench.references}
    outcomes = []
    for c in calls:
        outcomes.append({"index": c.index, "call_id": c.record.get("call_id"),
                         "answer_ms": c.record.get("answer_ms"),
                         **classify(c, heads, listen_s)})
    ids = [c.record["call_id"] for c in calls if "call_id" in c.record]
    ledger = await ledger_check(bench.node, ids, since_wall)
    return {"calls": n, "listen_s": listen_s, "heard": count(o["heard"] for o in outcomes),
            "answer_ms": summary([o["answer_ms"] for o in outcomes if o["answer_ms"]]),
            "ledger": {k: v for k, v in ledger.items() if k != "_rows"},
            "cpu": cpu, "memory": bench.watch.memory(window.started, time.monotonic()),
            "node_warnings": bench.node.problems(since_line)[:20], "calls_detail": outcomes}


def _head(audio: AudioFrame) -> AudioFrame:
    """The message's first seconds, from its first loud frame."""
    levels = frame_dbfs(audio)
    first = next((i for i, db in enumerate(levels) if db >= LOUD_DBFS), 0)
    size = audio.sample_rate * 2 // 50
    body = audio.pcm[first * size:]
    return AudioFrame(body[: int(REFERENCE_HEAD_S * audio.sample_rate) * 2], audio.sample_rate)


def classify(call: Call, heads: dict[str, AudioFrame], listen_s: float) -> dict:
    """``busy`` (486), ``refused`` (another SIP failure), ``greeting``, ``saturation``,
    ``silence`` (nothing loud in the first ``listen_s``), ``other audio``."""
    rec = call.record
    if "call_id" not in rec:
        sip = rec.get("sip", "")
        return {"heard": "busy" if sip.startswith("486") else "refused",
                "why": rec.get("error")}
    dec = call.dec
    if dec is None:
        return {"heard": "silence", "why": "no received-audio dump"}
    first = AudioFrame(dec.audio.pcm[: int(listen_s * dec.rate) * 2], dec.rate)
    levels = frame_dbfs(first)
    loud = [i for i, db in enumerate(levels) if db >= LOUD_DBFS]
    scores = {key: round(match(head, first)[0], 3) for key, head in heads.items()}
    out: dict = {"scores": scores, "first_audio_ms": loud[0] * 20 if loud else None,
                 "transferred": rec.get("transferred", False)}
    best = max(scores, key=scores.get) if scores else None
    if best is not None and scores[best] >= SAME_AUDIO:
        out["heard"] = best
    elif not loud:
        out["heard"] = "silence"
    else:
        out["heard"] = "other audio"
    return out


# --- mode 3: soak -------------------------------------------------------------------------
async def run_soak(bench: Bench, total: int, minutes: float, concurrency: int,
                   per_call: int, warmup_calls: int, window_s: float) -> dict:
    """``total`` calls, one every ``minutes * 60 / total`` s, never more than
    ``concurrency`` up; each call asks enough questions to last about ``concurrency``
    arrival intervals, so that about ``concurrency`` calls are up at a time."""
    folder = bench.workdir / "soak"
    folder.mkdir()
    interval = minutes * 60 / total
    target_s = concurrency * interval
    since_line, since_wall = len(bench.node.lines), time.time()
    idle_before = await asyncio.to_thread(bench.watch.sample)
    window = Window(bench.watch)
    slots = asyncio.Semaphore(concurrency)
    items: list[dict] = []
    questions: list[dict] = []
    phones_cpu: list[float] = []
    up: list[int] = []
    ended_at: list[float] = []
    dialled_at: list[float] = []
    t0 = time.monotonic() + 1.0

    async def one(i: int) -> None:
        await asyncio.sleep(max(0.0, t0 + i * interval - time.monotonic()))  # timetable
        async with slots:
            if not bench.node.alive:  # counted in crashes; no use dialling a dead node
                items.append({"index": i, "call_id": None, "error": "the node had exited",
                              "timing": {"clocked": False}})
                return
            script_ = scripts_for(bench, folder, 1, per_call, first=i,
                                  min_duration_s=0.9 * target_s)[0]
            try:
                call = await new_call(bench, folder, i, script_)
            except RuntimeError as exc:  # no phone: counted, and the soak goes on
                items.append({"index": i, "call_id": None, "error": f"phone: {exc}",
                              "timing": {"clocked": False}})
                return
            up.append(i)
            try:
                await place(bench, call, time.monotonic())
            finally:
                up.remove(i)
                ended_at.append(time.monotonic())
                call.phone.kill()
        dialled_at.append(call.record.get("dialled_at", 0.0))
        phones_cpu.append(call.record.get("phone_cpu_s", 0.0))
        cid = call.record.get("call_id") or ""
        turns = [t for t in bench.node.turns(since_line) if t["call_id"] == cid]
        item, rows = summarise_call(bench, call, turns, None, details=False)
        items.append(item)
        questions.extend(rows)
        shutil.rmtree(call.phone.dir, ignore_errors=True)  # ~2 MB of dumps a call
        script_["wav"].unlink(missing_ok=True)
        bench.log(f"soak: {len(items)}/{total} calls ended, {len(up)} up")

    async def count_up(stop: asyncio.Event, out: list[int]) -> None:
        while not stop.is_set():
            out.append(len(up))
            await asyncio.sleep(1.0)  # a once-a-second measurement

    stop, levels = asyncio.Event(), []
    counter = asyncio.create_task(count_up(stop, levels))
    try:
        await asyncio.gather(*(one(i) for i in range(total)))
    finally:
        stop.set()
        await counter
    last_arrival = max(dialled_at, default=t0)
    cpu = window.close(sum(phones_cpu))
    items.sort(key=lambda item: item["index"])
    result = await aggregate(bench, items, questions, turns_by_call(bench.node, since_line),
                             since_line, since_wall, window, cpu,
                             {"calls": total, "minutes": minutes, "concurrency": concurrency,
                              "interval_s": round(interval, 2)})
    await asyncio.sleep(5.0)  # let the node settle to idle before the last memory sample
    idle_after = await asyncio.to_thread(bench.watch.sample)
    ended_at.sort()
    warm = ended_at[min(warmup_calls, len(ended_at)) - 1] if ended_at else t0
    result["calls_up"] = {"mean": round(statistics.fmean(levels), 1) if levels else None,
                          "max": max(levels, default=None)}
    result["memory_growth"] = growth(bench.watch, warm, last_arrival, window_s,
                                     idle_before.pss_kb, idle_after.pss_kb)
    result["crashes"] = bench.watch.crashes(window.started, time.monotonic())
    result["calls_detail"] = [c for c in result["calls_detail"]
                              if c.get("error") or not c.get("completed")
                              or c.get("ledger_rows") != 1]
    return result


def growth(watch: NodeWatch, warm: float, last_arrival: float, window_s: float,
           idle_before_kb: int, idle_after_kb: int) -> dict:
    """Node PSS under the same load just after warm-up and at the end, medians over
    ``window_s`` each (the number of calls up moves PSS; a median over minutes does not)."""
    base = [s.pss_kb for s in watch.between(warm, warm + window_s)]
    end = [s.pss_kb for s in watch.between(last_arrival - window_s, last_arrival)]
    out = {"unit": "MB = 10^6 bytes", "window_s": window_s,
           "idle_before_mb": round(idle_before_kb * 1024 / 10**6),
           "idle_after_mb": round(idle_after_kb * 1024 / 10**6)}
    if base and end and min(base) > 0:  # 0: the node was gone (see crashes)
        b, e = statistics.median(base), statistics.median(end)
        out.update({"after_warmup_mb": round(b * 1024 / 10**6),
                    "at_end_mb": round(e * 1024 / 10**6),
                    "growth_pct": round(100 * (e - b) / b, 2),
                    "samples": [len(base), len(end)]})
    return out
