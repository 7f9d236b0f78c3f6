"""Simultaneous-calls benchmark: N scripted phone calls against ``voicebot serve`` on one node.

Prints one JSON object on stdout (progress on stderr). Everything runs on 127.0.0.1 and on
the CPU; no GPU, no network.

    .venv/bin/python benchmarks/calls.py --quick          # N in {1, 4}
    .venv/bin/python benchmarks/calls.py                  # N in {1, 4, 8, 10, 12, 16, 20}
    .venv/bin/python benchmarks/calls.py --calls 6,10 --stagger-s 3

How a node is laid out: the PyPI pjsua2 wheel holds at most 4 calls per process
(``PJSUA_MAX_CALLS``), so a node runs K = ceil(N_max / 4) ``voicebot serve`` processes on
consecutive SIP ports (distinct HTTP and RTP ports, one shared published state directory
and SQLite ledger), and the SIP load balancer's dispatcher lists each as a destination.
This benchmark does the same: it starts the K services once, reuses them for every N, and
spreads the calls over them round-robin, as the dispatcher's round-robin algorithm would.

Each call is one headless baresip (PCMU, 8 kHz) playing a WAV that is the caller's script:
silence through the greeting (not interruptible), a real recorded French question
(``tests/data/asr/fr``, chosen at start-up among those the bot answers without a hand-off),
silence while the answer plays, a second question, silence through its answer, then the
end of the file, where baresip hangs up. The N calls start at random instants within
``--stagger-s`` seconds, so their questions overlap: that is the load that matters (each
question costs a Whisper run; the greeting and answers are pre-rendered audio).

Measured per N, from each service's log (one INFO line per answered turn; its
``response N ms`` is from the end of the caller's speech, end-of-turn silence wait
included, to the reply's first audio being ready, i.e. VAD wait + ASR + dialogue + the
read from the pre-rendered cache, logged as ``tts N ms``):
response_ms p50/p95/max, asr_ms, calls completed, turns answered, failures (calls that did
not get an answer to every question), machine CPU use, load average and the services' RSS.
``/metrics``' response histogram is read as a cross-check. Target: p95 <= 1.5 s; the
node's capacity is the largest N that meets it with no failed call.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from sip_load import (Baresip, ServiceProcess, load_caller, cpu_seconds, free_port,  # noqa: E402
                      free_port_block, loadavg, machine_cpu, problem_lines, turn_lines)

from bot.audio import AudioFrame, read_wav, resample, write_wav  # noqa: E402

VOICEBOT = ROOT / ".venv" / "bin" / "voicebot"
ASR_DATA = ROOT / "tests" / "data" / "asr" / "fr"
CANDIDATES = ("conf-invalidpin.wav", "ss-noservice.wav", "agent-alreadyon.wav",
              "pbx-parkingfailed.wav", "vm-starmain.wav", "conf-roll-callcomplete.wav",
              "vm-tocancelmsg.wav", "dictate_record_help.wav", "privacy-incorrect.wav",
              "vm-savefolder.wav")
"""Real French recordings; the ones the live knowledge base answers (``answer`` or
``reorient``, no hand-off) become the callers' questions."""
OPEN_MONDAY = "2026-11-23T10:00:00+01:00"
QUICK_CALLS = (1, 4)
FULL_CALLS = (1, 4, 8, 10, 12, 16, 20)
TARGET_P95_MS = 1500
CALLS_PER_PROCESS = 4
LINE_RATE = 8000
AFTER_GREETING_S = 1.5
"""Silence the caller leaves after the greeting before speaking (it is not interruptible)."""
AFTER_ANSWER_S = 2.5
"""Silence after an answer (its expected length, plus this) before the next question, so
a slow answer is still heard whole instead of being barged in on."""
HANGUP_AFTER_S = 3.0


def log(message: str) -> None:
    print(f"[calls {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def percentile(values: list[int], q: float) -> int | None:
    """Nearest-rank percentile (no interpolation: a reported p95 is a measured turn)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


# --- set-up -------------------------------------------------------------------------------
def state_env(state_dir: Path) -> dict[str, str]:
    return dict(os.environ, VOICEBOT_PATHS_STATE_DIR=str(state_dir),
                VOICEBOT_PATHS_GENERATED_DIR=str(state_dir / "generated"))


def publish(state_dir: Path) -> float:
    """``voicebot kb publish`` into ``state_dir``, the trained model shared through var/models."""
    state_dir.mkdir(parents=True, exist_ok=True)
    models = state_dir / "models"
    cache = ROOT / "var" / "models"
    cache.mkdir(parents=True, exist_ok=True)
    if not models.exists():
        models.symlink_to(cache, target_is_directory=True)
    started = time.monotonic()
    done = subprocess.run([str(VOICEBOT), "kb", "publish"], env=state_env(state_dir),
                          stdin=subprocess.DEVNULL, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"kb publish failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return time.monotonic() - started


def spoken_durations(state_dir: Path) -> tuple[int, dict[str, int]]:
    """The greeting's length and the length of every cached text, in ms (pre-rendered audio)."""
    from bot import settings as settings_module
    from bot.kb.store import KbStore
    from tts.speaker import Speaker, spoken_texts

    settings = settings_module.load(env=state_env(state_dir))
    kb = KbStore(settings.paths.state_dir).current().kb
    speaker = Speaker.load(settings)
    durations = {}
    for text in spoken_texts(kb):
        audio = speaker.cached(text)
        if audio is not None:
            durations[text] = audio.duration_ms
    return durations[kb.messages["greeting"]], durations


def reply_ms(reply: str, durations: dict[str, int]) -> int:
    """How long a reply plays: the cached parts it is made of (15 characters a second for
    anything not found, a generous estimate for espeak at the configured rate)."""
    total, rest = 0, reply
    for text in sorted(durations, key=len, reverse=True):
        if text and text in rest:
            total += durations[text]
            rest = rest.replace(text, " ", 1)
    leftover = len(rest.strip(" .")) if rest.strip(" .") else 0
    return total + int(leftover / 15 * 1000)


def choose_questions(workdir: Path, state_dir: Path, durations: dict[str, int],
                     names: tuple[str, ...]) -> list[dict]:
    """What the bot makes of each candidate at 8 kHz, alone (``voicebot ask --audio``)."""
    paths = []
    for name in names:
        audio = resample(read_wav(ASR_DATA / name), LINE_RATE)
        path = workdir / "questions" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        write_wav(path, audio)
        paths.append(path)
    done = subprocess.run([str(VOICEBOT), "ask", "--audio"], env=state_env(state_dir),
                          input="\n".join(map(str, paths)) + "\n", capture_output=True,
                          text=True)
    if done.returncode != 0:
        raise RuntimeError(f"voicebot ask --audio failed:\n{done.stderr[-3000:]}")
    chosen = []
    for path, line in zip(paths, done.stdout.splitlines()):
        result = json.loads(line)
        ok = result.get("action") in ("answer", "reorient") and result.get("confidence", 0) >= 0.5
        log(f"question {path.name}: {result.get('action')} {result.get('motif')} "
            f"({result.get('confidence', 0):.2f}){'' if ok else ' — not used'}")
        if ok:
            chosen.append({"file": path.name, "path": path, "audio": read_wav(path),
                           "action": result["action"], "motif": result["motif"],
                           "transcript": result.get("transcript") or result.get("input"),
                           "answer_ms": reply_ms(result.get("reply") or "", durations)})
    if len(chosen) < 2:
        raise RuntimeError("fewer than two candidate questions are answered by this knowledge "
                           "base; pass others with --questions")
    return chosen


def script(path: Path, greeting_ms: int, questions: list[dict], lead_jitter_s: float) -> dict:
    """The caller's WAV: silence through the greeting, then question / silence for the
    answer, …, then the hang-up (baresip hangs up at the end of the file)."""
    silence = lambda s: b"\0" * (int(s * LINE_RATE) * 2)  # noqa: E731
    pcm = silence(greeting_ms / 1000 + AFTER_GREETING_S + lead_jitter_s)
    offsets = []
    for i, question in enumerate(questions):
        offsets.append(len(pcm) / 2 / LINE_RATE)
        pcm += question["audio"].pcm
        pause = question["answer_ms"] / 1000
        pcm += silence(pause + (AFTER_ANSWER_S if i + 1 < len(questions) else HANGUP_AFTER_S))
    frame = AudioFrame(pcm, LINE_RATE)
    write_wav(path, frame)
    return {"wav": path, "duration_s": frame.duration_ms / 1000,
            "questions": [q["file"] for q in questions], "offsets_s": offsets,
            "answers_ms": [q["answer_ms"] for q in questions]}


def start_services(count: int, workdir: Path, state_dir: Path, startup_s: float,
                   grace_s: float) -> list[ServiceProcess]:
    closures = workdir / "fermetures.txt"
    closures.write_text("# aucun jour de fermeture pendant le banc d'essai\n", encoding="utf-8")
    sip_base = free_port_block(count)
    rtp_base = free_port_block(100 * count, start=40000, stop=60000)
    env = dict(state_env(state_dir),
               VOICEBOT_TELEPHONY_NOW=OPEN_MONDAY,
               VOICEBOT_TELEPHONY_CLOSURES_FILE=str(closures),
               VOICEBOT_TELEPHONY_MAX_CALLS=str(CALLS_PER_PROCESS),
               VOICEBOT_TELEPHONY_SIP_EXTRA_CALLS="0",
               VOICEBOT_TELEPHONY_ADVISOR_URI=f"sip:conseiller@127.0.0.1:{free_port()}")
    env.pop("VOICEBOT_TELEPHONY_CRISIS_MESSAGE_FILE", None)
    services = [ServiceProcess(VOICEBOT, i, sip_base + i, free_port(), rtp_base + 100 * i,
                               rtp_base + 100 * i + 99, env, workdir / f"serve-{i}.log",
                               grace_s=grace_s)
                for i in range(count)]
    for service in services:
        service.start()
    log(f"{count} voicebot serve process(es) starting on SIP ports "
        f"{sip_base}-{sip_base + count - 1}")
    started = time.monotonic()
    for service in services:
        service.wait_ready(max(1.0, startup_s - (time.monotonic() - started)))
    log(f"services ready in {time.monotonic() - started:.0f} s")
    return services


# --- one round: N calls -------------------------------------------------------------------
async def _event(phone: Baresip, *kinds: str, timeout_s: float) -> dict | None:
    try:
        return await phone.wait_event(*kinds, timeout_s=timeout_s)
    except asyncio.TimeoutError:
        return None


async def one_call(index: int, caller: Baresip, service: ServiceProcess, delay_s: float,
                   call_s: float, t0: float) -> dict:
    await asyncio.sleep(max(0.0, t0 + delay_s - time.monotonic()))
    record = {"index": index, "service": service.index, "delay_s": round(delay_s, 2)}
    dialled = time.monotonic()
    try:
        await caller.command("dial", service.uri)
    except Exception as exc:
        record["error"] = f"dial: {type(exc).__name__}: {exc}"
        return record
    event = await _event(caller, "CALL_ESTABLISHED", "CALL_CLOSED", timeout_s=20)
    if event is None or event["type"] != "CALL_ESTABLISHED":
        record["error"] = ("not answered: " + (event or {}).get("param", "no reply in 20 s"))
        return record
    record["call_id"] = event.get("id")
    record["established_wall"] = time.time() - (time.monotonic() - event["at"])
    record["answer_s"] = round(event["at"] - dialled, 3)
    closed = await _event(caller, "CALL_CLOSED", timeout_s=call_s + 60)
    if closed is None:
        record["error"] = "never closed"
        await asyncio.gather(caller.command("hangup"), return_exceptions=True)
        return record
    record["closed_by"] = closed.get("param", "")
    record["duration_s"] = round(closed["at"] - event["at"], 1)
    return record


async def run_round(n: int, services: list[ServiceProcess], workdir: Path, greeting_ms: int,
                    questions: list[dict], per_call: int, stagger_s: float,
                    rng: random.Random) -> dict:
    round_dir = workdir / f"n{n}"
    round_dir.mkdir()
    scripts = []
    for i in range(n):
        asked = [questions[(i + j) % len(questions)] for j in range(per_call)]
        scripts.append(script(round_dir / f"caller{i}.wav", greeting_ms, asked,
                              lead_jitter_s=rng.uniform(0, 0.5)))
    delays = sorted(rng.uniform(0, stagger_s) for _ in range(n)) if n > 1 else [0.0]
    delays = [d - delays[0] for d in delays]
    # baresip also listens for SIP-TLS on sip_port + 1: 4 ports per caller
    ports = free_port_block(4 * (n + 3), start=23000, stop=32000)
    callers = [load_caller(round_dir, f"caller{i}", scripts[i]["wav"],
                           sip_port=ports + 4 * i, ctrl_port=ports + 4 * i + 2)
               for i in range(n)]
    spare = iter(range(ports + 4 * n, ports + 4 * (n + 3), 2))
    offsets = [s.log_size() for s in services]
    metrics_before = [_histogram(s) for s in services]
    cpu_before = [cpu_seconds(s.pid) for s in services]
    busy0, total0 = machine_cpu()
    load_start = loadavg()
    samples: list[dict] = []
    stop_sampling = asyncio.Event()

    async def sample() -> None:
        while not stop_sampling.is_set():
            samples.append({"rss_kb": [s.sample_rss() for s in services],
                            "load1": loadavg()[0]})
            try:
                await asyncio.wait_for(stop_sampling.wait(), 1.0)
            except asyncio.TimeoutError:
                pass

    try:
        async def start(i: int) -> None:
            for attempt in range(3):
                try:
                    await callers[i].start()
                    return
                except RuntimeError as exc:  # a port taken meanwhile: try others
                    log(f"{exc}; retrying")
                    callers[i] = load_caller(round_dir, f"caller{i}-{attempt + 1}",
                                             scripts[i]["wav"], sip_port=next(spare),
                                             ctrl_port=next(spare))
            await callers[i].start()

        await asyncio.gather(*(start(i) for i in range(n)))
        sampler = asyncio.create_task(sample())
        t0 = time.monotonic() + 0.5
        records = await asyncio.gather(*(
            one_call(i, callers[i], services[i % len(services)], delays[i],
                     scripts[i]["duration_s"], t0) for i in range(n)))
        wall_s = time.monotonic() - t0
        stop_sampling.set()
        await sampler
    finally:
        await asyncio.gather(*(c.stop() for c in callers), return_exceptions=True)
        for c in callers:
            c.kill()
    busy1, total1 = machine_cpu()
    await asyncio.sleep(1.0)  # the services write their ledger rows and last lines
    cpu_after = [cpu_seconds(s.pid) for s in services]
    texts = [s.log_text(o) for s, o in zip(services, offsets)]
    turns_by_call: dict[str, list[dict]] = {}
    for text in texts:
        for turn in turn_lines(text):
            turns_by_call.setdefault(turn["call_id"], []).append(turn)
    turns = [t for r in records for t in turns_by_call.get(r.get("call_id") or "", [])]
    stray = sum(len(v) for k, v in turns_by_call.items()
                if k not in {r.get("call_id") for r in records})
    failures = []
    for r, s in zip(records, scripts):
        got = turns_by_call.get(r.get("call_id") or "", [])
        r["turns"] = len(got)
        r["response_ms"] = [t["response_ms"] for t in got]
        r["actions"] = [f"{t['action']}:{t['motif']}" for t in got]
        expected = len(s["questions"])
        if "error" in r or len(got) < expected:
            failures.append({"index": r["index"], "service": r["service"],
                             "call_id": r.get("call_id"), "error": r.get("error"),
                             "questions": s["questions"],
                             "turns": len(got), "expected_turns": expected,
                             "closed_by": r.get("closed_by"), "actions": r["actions"],
                             "response_ms": r["response_ms"], "why": _why(r, s, got)})
    response = [t["response_ms"] for t in turns]
    asr = [t["asr_ms"] for t in turns]
    metrics_after = [_histogram(s) for s in services]
    actions: dict[str, int] = {}
    for t in turns:
        actions[t["action"]] = actions.get(t["action"], 0) + 1
    rss = [max((x["rss_kb"][i] for x in samples), default=0) for i in range(len(services))]
    problems = [line for text in texts for line in problem_lines(text)]
    result = {
        "calls": n,
        "services_used": min(n, len(services)),
        "max_calls_per_process": max(sum(1 for i in range(n) if i % len(services) == k)
                                     for k in range(len(services))),
        "stagger_s": stagger_s,
        "questions_per_call": per_call,
        "calls_established": sum(1 for r in records if "call_id" in r),
        "calls_completed": sum(1 for r in records if "call_id" in r and "error" not in r),
        "turns": len(turns),
        "turns_expected": n * per_call,
        "failures": len(failures),
        "response_ms": {"p50": percentile(response, 50), "p95": percentile(response, 95),
                        "max": max(response, default=None),
                        "mean": round(statistics.fmean(response)) if response else None},
        "asr_ms": {"p50": percentile(asr, 50), "p95": percentile(asr, 95),
                   "max": max(asr, default=None)},
        "metrics_response": _histogram_summary(metrics_before, metrics_after),
        "actions": actions,
        "wall_s": round(wall_s, 1),
        "cpu": {
            "machine_busy_pct": round(100 * (busy1 - busy0) / max(1, total1 - total0), 1),
            "services_cpu_s": round(sum(a - b for a, b in zip(cpu_after, cpu_before)), 1),
            "services_cpu_pct_of_2_cores": round(
                100 * sum(a - b for a, b in zip(cpu_after, cpu_before))
                / max(1e-9, wall_s * (os.cpu_count() or 1)), 1),
            "loadavg_start": load_start,
            "load1_max": max((x["load1"] for x in samples), default=None),
            "loadavg_end": loadavg(),
        },
        "services_peak_rss_mb": [round(k / 1024) for k in rss],
        "services_peak_pss_mb_total": round(sum(s.peak_pss_kb for s in services) / 1024),
        "call_answer_s_max": max((r.get("answer_s", 0) for r in records), default=None),
    }
    if stray:
        result["turns_of_unknown_calls"] = stray
    if failures:
        result["failed_calls"] = failures
    if problems:
        result["service_warnings"] = problems[:20]
    return result


def _why(record: dict, script_: dict, got: list[dict]) -> str:
    """A best guess at why a call lacks a turn, from the script's timing and the log."""
    if "error" in record:
        return record["error"]
    if not got:
        return "no answer at all"
    last = got[-1]
    k = len(got)  # the question that got no turn
    if last["action"] == "clarify":
        return ("the previous question was misunderstood (clarify): the short reply left the "
                "line silent for the long answer the script waited for, so the bot prompted "
                "for input and the next question met its prompts")
    try:
        when = datetime.strptime(last["time"], "%Y-%m-%d %H:%M:%S,%f").timestamp()
    except ValueError:
        return "unexplained"
    answer_end = when + script_["answers_ms"][k - 1] / 1000
    asked = record["established_wall"] + script_["offsets_s"][k]
    if answer_end > asked:
        return (f"the previous answer came late and still played {answer_end - asked:.1f} s "
                "into the next question, which produced no turn (no barge-in taken)")
    return "unexplained: the question came after the answer and produced no turn"


_BUCKET = re.compile(r'^allo_caf_response_seconds_bucket\{le="([^"]+)"\} (\d+)', re.M)


def _histogram(service: ServiceProcess) -> dict[str, int]:
    try:
        text = service.metrics()
    except Exception:  # a cross-check only: the log is the measurement
        return {}
    return {le: int(count) for le, count in _BUCKET.findall(text)}


def _histogram_summary(before: list[dict], after: list[dict]) -> dict:
    """The cross-check from /metrics: turns counted and the bucket holding p50 and p95."""
    total: dict[str, int] = {}
    for b, a in zip(before, after):
        for le, count in a.items():
            total[le] = total.get(le, 0) + count - b.get(le, 0)
    if not total:
        return {}
    ordered = sorted(total.items(), key=lambda kv: float(kv[0]))  # cumulative, +Inf last
    count = ordered[-1][1]

    def bucket(q: float) -> str | None:
        if count == 0:
            return None
        for le, c in ordered:
            if c >= q / 100 * count:
                return le
        return None

    return {"turns": count, "p50_le_s": bucket(50), "p95_le_s": bucket(95)}


# --- main -------------------------------------------------------------------------------------
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help=f"N in {set(QUICK_CALLS)}")
    parser.add_argument("--calls", help="comma-separated N values (default: the full set "
                        f"{','.join(map(str, FULL_CALLS))})")
    parser.add_argument("--services", type=int, default=None,
                        help=f"serve processes (default: ceil(max N / {CALLS_PER_PROCESS}))")
    parser.add_argument("--stagger-s", type=float, default=5.0,
                        help="the N calls start at random instants within this window")
    parser.add_argument("--questions-per-call", type=int, default=2)
    parser.add_argument("--questions", help="comma-separated WAV names in tests/data/asr/fr")
    parser.add_argument("--state-dir", type=Path, default=None,
                        help="a state directory to publish into and reuse (default: temporary)")
    parser.add_argument("--skip-publish", action="store_true",
                        help="the state directory is already published")
    parser.add_argument("--target-p95-ms", type=int, default=TARGET_P95_MS)
    parser.add_argument("--stop-p95-ms", type=int, default=None,
                        help="stop after two N values whose p95 exceeds this (default: the "
                        "target); raise it to see how the response time degrades")
    parser.add_argument("--startup-s", type=float, default=900.0)
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    parser.add_argument("--seed", type=int, default=3230)
    args = parser.parse_args()

    if shutil.which("baresip") is None:
        print(json.dumps({"error": "baresip not installed (apt-get install baresip)"}))
        return 2
    if args.calls:
        plan = tuple(int(x) for x in args.calls.split(","))
    else:
        plan = QUICK_CALLS if args.quick else FULL_CALLS
    k = args.services or math.ceil(max(plan) / CALLS_PER_PROCESS)
    workdir = Path(tempfile.mkdtemp(prefix="allo-caf-calls-"))
    state_dir = args.state_dir or workdir / "state"
    rng = random.Random(args.seed)
    out: dict = {
        "benchmark": "calls",
        "mode": "quick" if args.quick else ("custom" if args.calls else "full"),
        "target_p95_ms": args.target_p95_ms,
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {"cpu_count": os.cpu_count(), "loadavg_start": loadavg(),
                    "memory_mb": os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") >> 20,
                    "note": "other work may share these cores; see loadavg and cpu"},
        "layout": {"services": k, "calls_per_process_max": CALLS_PER_PROCESS,
                   "distribution": "round-robin", "codec": "PCMU",
                   "stagger_s": args.stagger_s, "questions_per_call": args.questions_per_call},
    }
    services: list[ServiceProcess] = []
    started = time.monotonic()
    try:
        if not args.skip_publish:
            log(f"publishing the knowledge base into {state_dir}")
            out["publish_s"] = round(publish(state_dir), 1)
        greeting_ms, durations = spoken_durations(state_dir)
        names = tuple(args.questions.split(",")) if args.questions else CANDIDATES
        questions = choose_questions(workdir, state_dir, durations, names)
        out["greeting_ms"] = greeting_ms
        out["questions"] = [{k2: q[k2] for k2 in ("file", "action", "motif", "answer_ms")}
                            for q in questions]
        services = start_services(k, workdir, state_dir, args.startup_s, grace_s=10)
        out["services_idle_rss_mb"] = [round(s.sample_rss() / 1024) for s in services]
        out["services_idle_pss_mb_total"] = round(sum(s.peak_pss_kb for s in services) / 1024)
        results = []
        over = 0
        for n in plan:
            log(f"N = {n}: {n} call(s) over {min(n, k)} service(s)")
            try:
                result = asyncio.run(run_round(n, services, workdir, greeting_ms, questions,
                                               args.questions_per_call, args.stagger_s, rng))
            except Exception as exc:  # the benchmark's own plumbing failed: say so, stop
                out["error"] = f"N = {n}: {type(exc).__name__}: {exc}"
                log(out["error"])
                break
            results.append(result)
            log(f"N = {n}: response p50 {result['response_ms']['p50']} ms, "
                f"p95 {result['response_ms']['p95']} ms, max {result['response_ms']['max']} ms, "
                f"{result['turns']}/{result['turns_expected']} turns, "
                f"{result['failures']} failure(s), CPU {result['cpu']['machine_busy_pct']} %")
            dead = [s.index for s in services if s.process.poll() is not None]
            if dead:
                out["services_died"] = dead
                log(f"service(s) {dead} exited; stopping")
                break
            p95 = result["response_ms"]["p95"]
            if p95 is None or p95 > (args.stop_p95_ms or args.target_p95_ms) \
                    or result["failures"]:
                over += 1
                if over >= 2:
                    log("target missed twice: stopping")
                    break
        out["results"] = results

        def capacity(limit_ms: int) -> int:
            ok = [r["calls"] for r in results
                  if r["response_ms"]["p95"] is not None
                  and r["response_ms"]["p95"] <= limit_ms and r["failures"] == 0]
            return max(ok, default=0)

        out["capacity"] = {
            "max_simultaneous_calls_p95_ok": capacity(args.target_p95_ms),
            "rule": f"largest N with response p95 <= {args.target_p95_ms} ms and no failed call",
            "max_simultaneous_calls_p95_le": {f"{ms}": capacity(ms)
                                              for ms in (2000, 2500, 3000, 4000)},
            "services": k,
            "targets": {"per_node": 10, "moonshot": 20},
        }
    finally:
        codes = [s.stop() for s in services]
        if services:
            out["services_exit_codes"] = codes
        out["machine"]["loadavg_end"] = loadavg()
        out["elapsed_s"] = round(time.monotonic() - started, 1)
        if args.keep:
            out["workdir"] = str(workdir)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps(out, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
