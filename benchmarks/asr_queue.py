"""Callers' turns through the node's ASR under load, per scheduling mode: prints one JSON object.

N simulated callers each finish a turn (a recorded French prompt from tests/data/asr/fr, at
the line's 8 kHz), one every ``--spacing-ms``, all wanting their reply within
``--target-ms``. For each mode: how long a turn waited before Whisper started on it and
how long until its transcript was back (p50, p95, max), and how many missed the target.

- ``threads``: one ``asyncio.to_thread`` per turn, as the pipeline did before the scheduler.
- ``parallel_jobs=1`` / ``parallel_jobs=2``: ``AsrScheduler`` with that many workers on the
  node's model (CTranslate2 with one replica, ``cpu_threads`` threads).
- ``parallel_jobs=2 on 2 replicas x 1 thread`` (CPU only): a model with two CTranslate2
  replicas of one thread each, so two runs really proceed side by side.
- ``batch_max=B``: batched passes of up to B turns, one worker, 50 ms window.

With ``--repeat R`` the modes run R times in turn (so that a neighbour's load spike
spreads over all of them) and the percentiles pool every turn; ``p50_completion_per_run``
and ``p95_completion_per_run`` show the spread, and ``cpu_ms_per_turn`` (this process's CPU
time per turn), which a neighbour's load barely changes, the cost.

``per_utterance_asr_ms``: one bare encoder pass over a 30 s window (every turn pays it,
whatever its length), then the same utterances one by one and in batches of 4 and 8 (wall
and CPU time per utterance). ``machine``: the load average before and after, since the
machine may be shared.

Usage: ``.venv/bin/python benchmarks/asr_queue.py [--callers 8] [--spacing-ms 500]
[--target-ms 1500] [--repeat 1] [--speculate] [--device cuda] [--modes threads,…]``.
``--speculate`` adds the pipeline's speculation: 300 ms before each end of turn the
utterance is sent ahead; two callers in three use that transcript (``claim``), the third
speaks again and it is wasted (with threads, it runs to its end regardless).
``--device cuda`` needs a visible CUDA GPU and says so when there is none.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from asr.model_files import AsrModelError, resolve_model  # noqa: E402
from asr.options import AsrOptions  # noqa: E402
from asr.prompt import build_prompt  # noqa: E402
from asr.scheduler import AsrScheduler  # noqa: E402
from asr.transcriber import Transcriber, Transcript  # noqa: E402
from asr.vad import SileroModel  # noqa: E402
from bot.audio import LINE_RATE, AudioFrame, read_wav, resample  # noqa: E402

DATA = ROOT / "tests" / "data" / "asr" / "fr"
MODELS = ROOT / "models"
PROMPT = build_prompt(["allocataire", "Mon Compte", "prime d'activité", "RSA", "APL",
                       "FranceConnect", "numéro allocataire", "mot de passe"])


@dataclasses.dataclass(frozen=True)
class Mode:
    name: str
    parallel_jobs: int = 1
    batch_max: int = 1
    threads: bool = False
    """One thread per turn, no scheduler (the pipeline before it)."""
    replicas: int = 1
    """CTranslate2 replicas of the model, ``cpu_threads`` / replicas threads each."""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--callers", type=int, default=8)
    parser.add_argument("--spacing-ms", type=int, default=500,
                        help="time between two callers' ends of turn")
    parser.add_argument("--target-ms", type=int, default=1500,
                        help="deadline after the end of turn (the p95 response target)")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each mode, in turn")
    parser.add_argument("--speculate", action="store_true",
                        help="a speculation 300 ms before each end of turn; 2 callers in 3 "
                             "use it, the third speaks again")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--modes", default="",
                        help="comma-separated mode names to run (default: all for the device)")
    args = parser.parse_args()

    compute_type = "int8" if args.device == "cpu" else "float16"
    options = AsrOptions(device=args.device, compute_type=compute_type, batch_window_ms=50)
    load_before = os.getloadavg()
    try:
        transcriber = Transcriber.load(options, MODELS)
    except AsrModelError as error:
        print(f"asr_queue: {error}", file=sys.stderr)
        return 2
    utterances = _utterances()
    transcriber.transcribe(utterances[0], PROMPT)  # warm-up: first-call allocations

    modes = _modes(args.device)
    if args.modes:
        wanted = set(args.modes.split(","))
        modes = [mode for mode in modes if mode.name in wanted]
    report: dict = {
        "machine": {"cpus": os.cpu_count(), "device": args.device, "compute_type": compute_type,
                    "cpu_threads": options.cpu_threads,
                    "load_average_before": [round(x, 2) for x in load_before]},
        "load": {"callers": args.callers, "spacing_ms": args.spacing_ms,
                 "target_ms": args.target_ms, "speculate": args.speculate,
                 "audio_ms": [u.duration_ms for u in _turns(utterances, args.callers)]},
        "per_utterance_asr_ms": _per_utterance(transcriber, utterances[:8]),
    }
    engines = {mode.name: transcriber if mode.replicas == 1
               else _replicated(options, mode.replicas) for mode in modes}
    runs: dict[str, list[dict]] = {mode.name: [] for mode in modes}
    for _ in range(args.repeat):
        for mode in modes:
            runs[mode.name].append(
                asyncio.run(_serve(engines[mode.name], options, mode, utterances, args)))
    report["modes"] = [_summary(mode.name, runs[mode.name], args.target_ms) for mode in modes]
    report["machine"]["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(report, ensure_ascii=False, indent=1))
    return 0


def _modes(device: str) -> list[Mode]:
    if device == "cuda":
        return [Mode("threads", threads=True), Mode("parallel_jobs=1"),
                *(Mode(f"batch_max={b}", batch_max=b) for b in (8, 16, 32))]
    return [Mode("threads", threads=True), Mode("parallel_jobs=1"),
            Mode("parallel_jobs=2", parallel_jobs=2),
            Mode("parallel_jobs=2 on 2 replicas x 1 thread", parallel_jobs=2, replicas=2),
            Mode("batch_max=4", batch_max=4), Mode("batch_max=8", batch_max=8)]


def _utterances() -> list[AudioFrame]:
    return [resample(read_wav(path), LINE_RATE) for path in sorted(DATA.glob("*.wav"))]


def _turns(utterances: list[AudioFrame], callers: int) -> list[AudioFrame]:
    return [utterances[i % len(utterances)] for i in range(callers)]


def _replicated(options: AsrOptions, replicas: int) -> Transcriber:
    """The model with several CTranslate2 replicas sharing the cores (CPU only)."""
    from faster_whisper import WhisperModel

    threads = max(1, options.cpu_threads // replicas)
    model = WhisperModel(resolve_model(options.model, MODELS).location, device="cpu",
                         compute_type=options.compute_type, cpu_threads=threads,
                         num_workers=replicas)
    engine = Transcriber(model, SileroModel.load(), options)
    engine.transcribe(_utterances()[0], PROMPT)
    return engine


def _per_utterance(transcriber: Transcriber, utterances: list[AudioFrame]) -> dict:
    """Whisper time per utterance, alone and in batches of 4 and 8 (the same utterances)."""
    model = transcriber._model  # noqa: SLF001 - a measurement of the model itself
    window = np.zeros((1, 80, model.feature_extractor.nb_max_frames), dtype=np.float32)
    report = {"encoder_pass": _timed(lambda: model.encode(window), 1)}
    report["alone"] = _timed(lambda: [transcriber.transcribe(a, PROMPT) for a in utterances],
                             len(utterances))
    for size in (4, 8):
        chunks = [utterances[i:i + size] for i in range(0, len(utterances), size)]
        report[f"batch_of_{size}"] = _timed(lambda chunks=chunks: [
            transcriber.transcribe_batch(chunk, [PROMPT] * len(chunk)) for chunk in chunks],
            len(utterances))
    return report


def _timed(work, count: int) -> dict:
    """Wall and CPU (this process, all threads) milliseconds per item of ``work``.

    On a shared machine the wall time grows with the neighbours' load; the CPU time
    mostly does not, so it tells the cost of a turn when the wall time cannot."""
    cpu, wall = _cpu_s(), time.monotonic()
    work()
    return {"wall": round((time.monotonic() - wall) * 1000 / count),
            "cpu": round((_cpu_s() - cpu) * 1000 / count)}


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _serve(engine: Transcriber, options: AsrOptions, mode: Mode,
                 utterances: list[AudioFrame], args) -> dict:
    """All callers' turns through one mode: each turn's wait, completion and run in ms."""
    scheduler = None
    if not mode.threads:
        scheduler = AsrScheduler(engine, dataclasses.replace(
            options, parallel_jobs=mode.parallel_jobs, batch_max=mode.batch_max))
    started, cpu = time.monotonic(), _cpu_s()

    async def transcribe(audio: AudioFrame, deadline: float, speculative: bool = False):
        if scheduler is None:  # as the pipeline did: a thread each, speculation included
            return await asyncio.to_thread(engine.transcribe, audio, PROMPT)
        return await scheduler.transcribe(audio, PROMPT, deadline=deadline,
                                          speculative=speculative)

    async def caller(index: int, audio: AudioFrame) -> tuple[float, Transcript]:
        arrival = started + index * args.spacing_ms / 1000
        deadline = arrival + args.target_ms / 1000
        speculation = None
        if args.speculate:  # the pause 300 ms before the end of turn starts a speculation
            await _until(arrival - 0.3)
            speculation = asyncio.create_task(transcribe(audio, deadline, speculative=True))
        await _until(arrival)
        if speculation is not None and index % 3 != 2:  # the caller did not speak again
            if scheduler is None or scheduler.claim(audio, deadline=deadline):
                transcript = await speculation
            else:
                transcript = await transcribe(audio, deadline)
        else:  # every third caller spoke again: the speculation is wasted
            if speculation is not None:
                speculation.cancel()  # a thread runs on regardless, as it did
            transcript = await transcribe(audio, deadline)
        if speculation is not None:
            await asyncio.gather(speculation, return_exceptions=True)
        return (time.monotonic() - arrival) * 1000, transcript

    results = await asyncio.gather(*(caller(i, audio) for i, audio in
                                     enumerate(_turns(utterances, args.callers))))
    run = {
        "completion_ms": [ms for ms, _ in results],
        "wait_ms": [max(0.0, ms - t.asr_ms) for ms, t in results],  # asr_ms: run or batch
        "asr_ms": [t.asr_ms for _, t in results],
        "elapsed_ms": (time.monotonic() - started) * 1000,
        "cpu_ms_per_turn": (_cpu_s() - cpu) * 1000 / len(results),
    }
    if scheduler is not None:
        stats = scheduler.stats()
        run["batches"] = stats.batches
        run["batched_utterances"] = stats.batch_size.total
        await scheduler.close()
    return run


def _summary(name: str, runs: list[dict], target_ms: int) -> dict:
    """Percentiles over every turn of every run of one mode."""
    completion = [ms for run in runs for ms in run["completion_ms"]]
    report = {
        "mode": name,
        "wait_ms": _percentiles([ms for run in runs for ms in run["wait_ms"]]),
        "completion_ms": _percentiles(completion),
        "p50_completion_per_run": [_percentiles(run["completion_ms"])["p50"] for run in runs],
        "p95_completion_per_run": [_percentiles(run["completion_ms"])["p95"] for run in runs],
        "asr_ms_mean": round(float(np.mean([ms for run in runs for ms in run["asr_ms"]]))),
        "late_fraction": round(sum(ms > target_ms for ms in completion) / len(completion), 2),
        "elapsed_ms_mean": round(float(np.mean([run["elapsed_ms"] for run in runs]))),
        "cpu_ms_per_turn": round(float(np.mean([run["cpu_ms_per_turn"] for run in runs]))),
    }
    batches = sum(run.get("batches", 0) for run in runs)
    if batches:
        report["mean_batch_size"] = round(
            sum(run["batched_utterances"] for run in runs) / batches, 2)
    return report


async def _until(instant: float) -> None:
    """Pace a simulated caller against the start of the run, as the line paces audio."""
    await asyncio.sleep(max(0.0, instant - time.monotonic()))


def _percentiles(values: list[float]) -> dict:
    p50, p95 = np.percentile(values, [50, 95])
    return {"p50": round(float(p50)), "p95": round(float(p95)), "max": round(max(values))}


if __name__ == "__main__":
    sys.exit(main())
