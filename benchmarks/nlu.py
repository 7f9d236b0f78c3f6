"""Understanding and dialogue benchmark: prints one JSON object.

Measures, on this machine: training time from scratch (a fresh process and cache), model
load time, the latency of one turn, peak memory while serving, and what callers get on two
sets of phrasings absent from knowledge/, scored separately and labelled:

- ``dev`` (benchmarks/data/nlu_dev.yml): the tuning set; triggers, questions and pipeline
  variants were chosen by their score on it, so its figures are optimistic;
- ``test`` (benchmarks/data/nlu_test.yml): frozen before tuning and never used for a
  choice; the issue's targets (``TARGETS``) apply to it.

For each: FAQ accuracy by motif (and by entry where labelled), urgency and advisor recall,
personal-file routing, ordinary questions with trigger-like words that were escalated,
off-topic questions answered as a FAQ, goodbyes said to callers who did not say goodbye,
frustrated callers helped; then the time to publish an answer-wording change (no
retraining).

    .venv/bin/python benchmarks/nlu.py [--skip-training] [--set dev|test|both]
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

TARGETS = {"faq_accuracy": 0.92, "urgency_recall": 1.0, "advisor_recall": 1.0,
           "ordinary_escalated_max": 0.03, "off_topic_answered_max": 0.05,
           "turn_p50_ms_max": 50, "training_s_max": 90, "wording_publish_s_max": 5}
"""Accuracy targets apply to the frozen test set (issue 10); timings to the machine."""


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


SETS = {
    "dev": (ROOT / "benchmarks" / "data" / "nlu_dev.yml",
            "tuning: triggers, questions and pipeline variants were chosen on it"),
    "test": (ROOT / "benchmarks" / "data" / "nlu_test.yml",
             "frozen before tuning (docs/nlu.md gives its commit), never used for a choice"),
}
GOODBYE_MOTIFS = frozenset({"au_revoir", "nier"})


def ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


async def score_set(dialogue, name: str, latencies: list[float]) -> dict:
    """Say every phrasing of one set in a fresh conversation and score what the caller got.

    ``motif`` is what the reply was qualified with, ``accept`` lists other motifs that count
    as right for a phrasing that asks two things at once; ``ordinary`` marks a plain
    question with trigger-like words (never a hand-off); ``frustration`` a lost or annoyed
    caller (help or an advisor, never a goodbye).
    """
    path, role = SETS[name]
    kb = dialogue.snapshot.kb
    examples = yaml.safe_load(path.read_text(encoding="utf-8"))["examples"]
    per_motif, counts = defaultdict(Counter), Counter()
    confusions, entry_confusions = Counter(), Counter()
    escalated, frustration_goodbyes, goodbyes = [], [], []
    for number, example in enumerate(examples):
        t0 = time.perf_counter()
        reply = await dialogue.respond(f"{name}-{number}", example["text"])
        latencies.append((time.perf_counter() - t0) * 1000)
        await dialogue.forget(f"{name}-{number}")
        expected = example.get("motif")
        right = reply.motif in {expected, *example.get("accept", ())} if expected else None
        said_goodbye = reply.end_call and reply.action == "dialogue"
        if said_goodbye and expected not in GOODBYE_MOTIFS:
            goodbyes.append(example["text"])
        if example.get("frustration"):
            counts["frustration"] += 1
            counts["frustration_helped"] += reply.action in ("answer", "reorient", "clarify",
                                                             "handoff")
            if said_goodbye:
                frustration_goodbyes.append(example["text"])
            continue
        if example.get("ordinary"):
            counts["ordinary"] += 1
            if reply.handoff:
                escalated.append(f"{example['text']} -> {reply.motif}")
            if expected:
                counts["ordinary_labelled"] += 1
                counts["ordinary_right"] += right
            continue
        kind = kb.kind_of(expected).value
        per_motif[expected]["n"] += 1
        per_motif[expected]["right"] += right
        counts[f"{kind}_n"] += 1
        counts[f"{kind}_right"] += right
        counts[f"{expected}_handoff"] += reply.handoff
        counts[f"{expected}_answered"] += reply.action == "answer"
        counts[f"{expected}_urgent"] += reply.handoff and reply.motif == "urgence"
        counts["clarify"] += reply.action == "clarify"
        if not right:
            confusions[f"{expected} -> {reply.motif or 'clarify'}"] += 1
        if example.get("entry") and right:  # which of the motif's entries answered
            counts["entry_n"] += 1
            counts["entry_right"] += reply.entry_id == example["entry"]
            if reply.entry_id != example["entry"]:
                entry_confusions[f"{example['entry']} -> {reply.entry_id}"] += 1

    def motif_n(motif: str) -> int:
        return per_motif[motif]["n"]

    return {
        "set": name,
        "file": str(path.relative_to(ROOT)),
        "role": role,
        "examples": len(examples),
        "faq_examples": counts["faq_n"],
        "faq_accuracy": ratio(counts["faq_right"], counts["faq_n"]),
        "entry_examples": counts["entry_n"],
        "entry_accuracy": ratio(counts["entry_right"], counts["entry_n"]),
        "urgency_examples": motif_n("urgence"),
        "urgency_recall": ratio(counts["urgence_urgent"], motif_n("urgence")),
        "urgency_handed_off": ratio(counts["urgence_handoff"], motif_n("urgence")),
        "advisor_examples": motif_n("conseiller"),
        "advisor_recall": ratio(counts["conseiller_handoff"], motif_n("conseiller")),
        "personal_file_examples": motif_n("dossier_personnel"),
        "personal_file_routing": ratio(per_motif["dossier_personnel"]["right"],
                                       motif_n("dossier_personnel")),
        "ordinary_examples": counts["ordinary"],
        "ordinary_escalated": ratio(len(escalated), counts["ordinary"]),
        "ordinary_escalated_texts": escalated,
        "ordinary_motif_accuracy": ratio(counts["ordinary_right"], counts["ordinary_labelled"]),
        "off_topic_examples": motif_n("hors_sujet"),
        "off_topic_answered": ratio(counts["hors_sujet_answered"], motif_n("hors_sujet")),
        "reorient_accuracy": ratio(counts["reorient_right"], counts["reorient_n"]),
        "dialogue_accuracy": ratio(counts["dialogue_right"], counts["dialogue_n"]),
        "goodbye_on_non_goodbye": len(goodbyes),
        "goodbye_on_non_goodbye_texts": goodbyes,
        "frustration_examples": counts["frustration"],
        "frustration_helped": ratio(counts["frustration_helped"], counts["frustration"]),
        "frustration_goodbyes": len(frustration_goodbyes),
        "clarify_rate": ratio(counts["clarify"], len(examples)),
        "per_motif_accuracy": {m: round(c["right"] / c["n"], 3)
                               for m, c in sorted(per_motif.items())},
        "top_confusions": dict(confusions.most_common(12)),
        "top_entry_confusions": dict(entry_confusions.most_common(8)),
    }


def against_targets(scores: dict) -> dict:
    """Which of the test-set targets one set's scores meet."""
    checks = {
        "faq_accuracy": (scores["faq_accuracy"], lambda v: v >= TARGETS["faq_accuracy"]),
        "urgency_recall": (scores["urgency_recall"], lambda v: v >= TARGETS["urgency_recall"]),
        "advisor_recall": (scores["advisor_recall"], lambda v: v >= TARGETS["advisor_recall"]),
        "ordinary_escalated": (scores["ordinary_escalated"],
                               lambda v: v <= TARGETS["ordinary_escalated_max"]),
        "off_topic_answered": (scores["off_topic_answered"],
                               lambda v: v <= TARGETS["off_topic_answered_max"]),
        "goodbye_on_non_goodbye": (scores["goodbye_on_non_goodbye"], lambda v: v == 0),
    }
    return {key: value is not None and test(value) for key, (value, test) in checks.items()}


async def evaluate(tmp: Path, knowledge: Path, sets: list[str]) -> dict:
    from bot.dialogue import Dialogue
    from bot.kb.publish import publish

    state = tmp / "serve"
    link_models(state)
    settings = settings_for(state, knowledge)
    publish(settings)
    start = time.monotonic()
    dialogue = await Dialogue.load(settings)
    load_s = time.monotonic() - start
    await dialogue.respond("warm-up", "bonjour")
    latencies: list[float] = []
    results: dict = {}
    for name in sets:
        results[name] = await score_set(dialogue, name, latencies)
        results[name]["meets_targets"] = against_targets(results[name])
    latencies.sort()
    return {
        "model_load_s": round(load_s, 2),
        "turn_ms_p50": round(statistics.median(latencies), 1),
        "turn_ms_p95": round(latencies[int(0.95 * (len(latencies) - 1))], 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        **results,
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


def measure_wording_publish(tmp: Path, source: Path) -> float:
    """Change one answer's words and publish: must go live without retraining."""
    from bot.kb.publish import publish
    from bot.kb.store import KbStore

    knowledge = tmp / "knowledge"
    shutil.copytree(source, knowledge)
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
    parser.add_argument("--set", choices=("dev", "test", "both"), default="both",
                        help="which phrasings to score: dev (tune on it), test (frozen), both")
    args = parser.parse_args()
    sets = ["dev", "test"] if args.set == "both" else [args.set]
    with tempfile.TemporaryDirectory(prefix="nlu-bench-") as name:
        tmp = Path(name)
        training_s = None if args.skip_training else round(measure_training(tmp), 1)
        # One copy of the base for the whole run: editors may publish meanwhile.
        knowledge = tmp / "knowledge-snapshot"
        shutil.copytree(ROOT / "knowledge", knowledge)
        results = asyncio.run(evaluate(tmp, knowledge, sets))
        results["wording_publish_s"] = round(measure_wording_publish(tmp, knowledge), 2)
    results["training_s"] = training_s
    results["targets"] = TARGETS
    results["machine"] = {"cpus": os.cpu_count()}
    print(json.dumps(results, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
