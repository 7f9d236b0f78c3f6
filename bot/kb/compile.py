"""Turn the knowledge base into Rasa training data: what the model learns, never what it says.

Each FAQ, hand-off and reorientation motif becomes a retrieval intent whose sub-intents are
its entries (``aide_logement/apl_demande``): DIET predicts the motif, and the entry within
it is chosen at run time by similarity to the questions (bot/kb/routing.py); the
sub-intents keep that pairing visible in the data. Responses hold only the entry id; the
words come from the published snapshot at run time, so rewording an answer needs no
retraining. Rules are generated too: a motif's
kind decides the action that handles it (the low-confidence rule is hand-written in
bot/data/rules.yml).
"""

from __future__ import annotations

from pathlib import Path

import yaml

from bot.kb.model import KnowledgeBase, MotifKind

ACTION_FOR_KIND = {
    MotifKind.FAQ: "action_answer",
    MotifKind.HANDOFF: "action_handoff",
    MotifKind.REORIENT: "action_reorient",
    MotifKind.DIALOGUE: "action_conversation",
}
RESPONSE_PREFIX = "utter_"


def uses_retrieval(kind: MotifKind) -> bool:
    return kind is not MotifKind.DIALOGUE


def compile_training_data(kb: KnowledgeBase, base_domain: Path, out_dir: Path) -> dict[str, Path]:
    """Write nlu.yml, rules.yml and the full domain.yml into ``out_dir``; return their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "nlu": out_dir / "nlu.yml",
        "rules": out_dir / "rules.yml",
        "domain": out_dir / "domain.yml",
    }
    _write(paths["nlu"], _nlu(kb))
    _write(paths["rules"], _rules(kb))
    _write(paths["domain"], _domain(kb, base_domain))
    return paths


def _nlu(kb: KnowledgeBase) -> dict:
    blocks = []
    for entry in kb.entries:
        kind = kb.kind_of(entry.motif)
        intent = f"{entry.motif}/{entry.id}" if uses_retrieval(kind) else entry.motif
        examples = "".join(f"- {_plain(q)}\n" for q in entry.questions)
        blocks.append({"intent": intent, "examples": _literal(examples)})
    return {"version": "3.1", "nlu": blocks}


def _plain(question: str) -> str:
    """Brackets and braces mean entity annotations to Rasa; a caller's words never do."""
    return " ".join(question.translate(str.maketrans("[](){}", "      ")).split())


def _rules(kb: KnowledgeBase) -> dict:
    rules = [
        {"rule": f"{motif.id} -> {ACTION_FOR_KIND[motif.kind]}",
         "steps": [{"intent": motif.id}, {"action": ACTION_FOR_KIND[motif.kind]}]}
        for motif in kb.motifs.values()
    ]
    return {"version": "3.1", "rules": rules}


def _domain(kb: KnowledgeBase, base_domain: Path) -> dict:
    domain = yaml.safe_load(base_domain.read_text(encoding="utf-8"))
    domain["intents"] = list(kb.motifs)
    domain["responses"] = {
        f"{RESPONSE_PREFIX}{entry.motif}/{entry.id}": [{"text": entry.id}]
        for entry in kb.entries
        if uses_retrieval(kb.kind_of(entry.motif))
    }
    return domain


class _literal(str):
    """A string dumped as a YAML block (``|``), the way Rasa's own files list examples."""


def _literal_representer(dumper: yaml.SafeDumper, value: _literal) -> yaml.Node:
    return dumper.represent_scalar("tag:yaml.org,2002:str", str(value), style="|")


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(_literal, _literal_representer)


def _write(path: Path, data: dict) -> None:
    header = "# Generated from knowledge/ by bot/kb/compile.py: do not edit.\n"
    text = yaml.dump(data, Dumper=_Dumper, allow_unicode=True, sort_keys=False, width=1000)
    path.write_text(header + text, encoding="utf-8")
