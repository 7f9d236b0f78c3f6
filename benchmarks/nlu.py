"""Understanding and dialogue benchmark: prints one JSON object.

Measures, on this machine: training time from scratch (a fresh process and cache), model
load time, the latency of one turn, peak memory while serving, accuracy on the held-out
dev set (benchmarks/data/nlu_dev.yml, phrasings absent from knowledge/) by motif kind, the
entry chosen within motifs of several entries (``entry_accuracy``, over the phrasings whose
motif was right and which carry an ``entry`` label), and the time to publish an
answer-wording change (no retraining).

    .venv/bin/python benchmarks/nlu.py [--skip-training]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot import settings as settings_module  # noqa: E402
from bot.kb.model import MotifKind  # noqa: E402

DEV_SET = ROOT / "benchmarks" / "data" / "nlu_dev.yml"
TARGETS = {"faq_accuracy": 0.92, "handoff_recall": 1.0, "off_topic_answered_max": 0.05,
           "turn_p50_ms_max": 50, "training_s_max": 90, "wording_publish_s_max": 5}


def settings_for(state: Path, knowledge: Path | None = None):
    paths = {"state_dir": state, "generated_dir": state / "generated"}
    if knowledge is not None:
        paths["knowledge_dir"] = knowledge
    return settings_module.replace(settings_module.load(env={}), paths=paths)


def link_models(state: Path) -> None:
    cache = ROOT / "var" / "models"
    cache.mkdir(parents=True, exist_ok=True)
    state.mkdir(parents=True, exist_ok=True)
    (state / "models").symlink_to(cache, target_is_directory=True)


def measure_training(tmp: Path) -> float:
    """Train from scratch in a child process: a cold Rasa cache and no warm imports."""
    state = tmp / "cold"
    env = dict(os.environ, VOICEBOT_PATHS_STATE_DIR=str(state),
               VOICEBOT_PATHS_GENERATED_DIR=str(state / "generated"))
    start = time.monotonic()
    subprocess.run([str(ROOT / ".venv" / "bin" / "voicebot"), "train", "--force"], env=env,
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.monotonic() - start


async def evaluate(tmp: Path) -> dict:
    from bot.dialogue import Dialogue
    from bot.kb.publish import publish

    state = tmp / "serve"
    link_models(state)
    settings = settings_for(state)
    publish(settings)
    start = time.monotonic()
    dialogue = await Dialogue.load(settings)
    load_s = time.monotonic() - start
    kb = dialogue.snapshot.kb

    examples = yaml.safe_load(DEV_SET.read_text(encoding="utf-8"))["examples"]
    await dialogue.respond("warm-up", "bonjour")
    latencies, per_motif, per_kind = [], defaultdict(Counter), defaultdict(Counter)
    confusions = Counter()
    entries, entry_confusions = Counter(), Counter()
    for number, example in enumerate(examples):
        expected = example["motif"]
        kind = kb.kind_of(expected)
        t0 = time.perf_counter()
        reply = await dialogue.respond(f"dev-{number}", example["text"])
        latencies.append((time.perf_counter() - t0) * 1000)
        await dialogue.forget(f"dev-{number}")
        correct = reply.motif == expected
        per_motif[expected]["n"] += 1
        per_motif[expected]["correct"] += correct
        per_kind[kind.value]["n"] += 1
        per_kind[kind.value]["correct"] += correct
        per_kind[kind.value][f"action_{reply.action}"] += 1
        per_motif[expected][f"action_{reply.action}"] += 1
        if not correct:
            confusions[f"{expected} -> {reply.motif or 'clarify'}"] += 1
        if example.get("entry") and correct:  # which of the motif's entries answered
            entries["n"] += 1
            entries["correct"] += reply.entry_id == example["entry"]
            if reply.entry_id != example["entry"]:
                entry_confusions[f"{example['entry']} -> {reply.entry_id}"] += 1

    def rate(kind: MotifKind, key: str) -> float:
        counts = per_kind[kind.value]
        return round(counts[key] / counts["n"], 4) if counts["n"] else 0.0

    handoff_n = per_kind["handoff"]["n"]
    hors_sujet = per_motif["hors_sujet"]
    latencies.sort()
    return {
        "model_load_s": round(load_s, 2),
        "turn_ms_p50": round(statistics.median(latencies), 1),
        "turn_ms_p95": round(latencies[int(0.95 * (len(latencies) - 1))], 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "dev_examples": len(examples),
        "faq_accuracy": rate(MotifKind.FAQ, "correct"),
        "handoff_recall": round(per_kind["handoff"]["action_handoff"] / handoff_n, 4) if handoff_n else 0.0,
        "handoff_motif_accuracy": rate(MotifKind.HANDOFF, "correct"),
        "reorient_accuracy": rate(MotifKind.REORIENT, "correct"),
        "dialogue_accuracy": rate(MotifKind.DIALOGUE, "correct"),
        "off_topic_answered": round(hors_sujet["action_answer"] / hors_sujet["n"], 4) if hors_sujet["n"] else 0.0,
        "off_topic_accuracy": round(hors_sujet["correct"] / hors_sujet["n"], 4) if hors_sujet["n"] else 0.0,
        "clarify_rate": round(sum(c["action_clarify"] for c in per_kind.values()) / len(examples), 4),
        "per_motif_accuracy": {m: round(c["correct"] / c["n"], 3) for m, c in sorted(per_motif.items())},
        "top_confusions": dict(confusions.most_common(12)),
        "entry_examples": entries["n"],
        "entry_accuracy": round(entries["correct"] / entries["n"], 4) if entries["n"] else 0.0,
        "top_entry_confusions": dict(entry_confusions.most_common(8)),
    }


BLOCK_INDICATORS = re.compile(r"^[>|][-+0-9]*\s*(#.*)?$")


def reword_first_answer(knowledge: Path) -> tuple[str, str]:
    """Change the words of the first answer in the theme files, whatever its YAML style
    (plain, quoted, or a ``>-`` / ``|`` block): insert a word at the start of its text.
    Returns (entry id, new answer)."""
    from bot.kb.check import MESSAGES_FILE, MOTIFS_FILE
    from bot.kb.yaml_lines import LDict, load_yaml

    for theme in sorted(knowledge.glob("*.yml")):
        if theme.name in (MOTIFS_FILE, MESSAGES_FILE):
            continue
        data, _ = load_yaml(theme, theme.name)
        entries = data.get("entries") if isinstance(data, dict) else None
        for entry in entries or []:
            if not isinstance(entry, LDict) or not isinstance(entry.get("answer"), str):
                continue
            lines = theme.read_text(encoding="utf-8").splitlines(keepends=True)
            index = entry.key_lines["answer"] - 1
            head, _, value = lines[index].partition("answer:")
            if BLOCK_INDICATORS.match(value.strip()):  # the text starts on the next line
                index += 1
                while not lines[index].strip():
                    index += 1
                indent = len(lines[index]) - len(lines[index].lstrip())
                lines[index] = lines[index][:indent] + "Bonjour. " + lines[index][indent:]
            else:
                stripped = value.lstrip()
                quote = stripped[:1] if stripped[:1] in "\"'" else ""
                lines[index] = f"{head}answer: {quote}Bonjour. {stripped[len(quote):]}"
            theme.write_text("".join(lines), encoding="utf-8")
            return str(entry["id"]), "Bonjour. " + " ".join(entry["answer"].split())
    raise RuntimeError(f"no answer to reword in {knowledge}")


def measure_wording_publish(tmp: Path) -> float:
    """Change one answer's words and publish: must go live without retraining."""
    from bot.kb.publish import publish
    from bot.kb.store import KbStore

    knowledge = tmp / "knowledge"
    shutil.copytree(ROOT / "knowledge", knowledge)
    entry_id, expected = reword_first_answer(knowledge)
    state = tmp / "wording"
    link_models(state)
    settings = settings_for(state, knowledge)
    start = time.monotonic()
    result = publish(settings)
    seconds = time.monotonic() - start
    assert not result.training.trained, "a wording change must not retrain"
    live = KbStore(state).current().kb.entry(entry_id)
    assert live is not None and live.answer == expected, f"new wording not live: {live!r}"
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--skip-training", action="store_true", help="do not measure cold training")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="nlu-bench-") as name:
        tmp = Path(name)
        training_s = None if args.skip_training else round(measure_training(tmp), 1)
        results = asyncio.run(evaluate(tmp))
        results["wording_publish_s"] = round(measure_wording_publish(tmp), 2)
    results["training_s"] = training_s
    results["targets"] = TARGETS
    results["machine"] = {"cpus": os.cpu_count()}
    print(json.dumps(results, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
