"""The knowledge base as the bot uses it: motifs, FAQ entries and system messages.

Two fingerprints split what an edit needs: ``training_fingerprint`` covers what the model
learns (ids, motifs, questions), ``content_fingerprint`` covers everything. A change to
answer wording, or to the hand-off trigger phrases (matched before NLU, see
bot/kb/triggers.py), moves only the second one, so it goes live without retraining.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any, TypeVar

T = TypeVar("T")


class MotifKind(str, Enum):
    FAQ = "faq"
    HANDOFF = "handoff"
    REORIENT = "reorient"
    DIALOGUE = "dialogue"


@dataclass(frozen=True)
class Motif:
    id: str
    kind: MotifKind
    label: str
    choix: int | None = None


@dataclass(frozen=True)
class Entry:
    id: str
    motif: str
    questions: tuple[str, ...]
    answer: str | None = None
    source: str | None = None
    reviewed: str | None = None
    sms: str | None = None
    file: str = ""
    line: int = 0
    triggers: tuple[str, ...] = ()
    """Hand-off entries only (``declencheurs:``): phrases that hand off before any NLU."""
    trigger_exceptions: tuple[str, ...] = ()
    """Hand-off entries only (``sauf:``): phrases of a general question that keep this
    entry's triggers silent (bot/kb/triggers.py)."""


@dataclass(frozen=True)
class KnowledgeBase:
    motifs: dict[str, Motif]
    entries: tuple[Entry, ...]
    messages: dict[str, str]
    _by_id: dict[str, Entry] = field(default_factory=dict, compare=False, repr=False)
    _derived: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._by_id.update({e.id: e for e in self.entries})

    def entry(self, entry_id: str) -> Entry | None:
        return self._by_id.get(entry_id)

    def derived(self, key: str, build: Callable[[KnowledgeBase], T]) -> T:
        """A value computed once from this base (an index, a router), dropped with it when
        a new base is published."""
        if key not in self._derived:
            self._derived[key] = build(self)
        return self._derived[key]

    def entries_of(self, motif: str) -> list[Entry]:
        return [e for e in self.entries if e.motif == motif]

    def kind_of(self, motif: str) -> MotifKind:
        return self.motifs[motif].kind

    def training_fingerprint(self) -> str:
        learned = {
            "motifs": {m.id: m.kind.value for m in self.motifs.values()},
            "entries": sorted((e.id, e.motif, list(e.questions)) for e in self.entries),
        }
        return _digest(learned)

    def content_fingerprint(self) -> str:
        return _digest(self.to_json())

    def to_json(self) -> dict:
        return {
            "motifs": [
                {"id": m.id, "kind": m.kind.value, "label": m.label, "choix": m.choix}
                for m in self.motifs.values()
            ],
            "entries": [asdict(e) | {"questions": list(e.questions), "triggers": list(e.triggers),
                                     "trigger_exceptions": list(e.trigger_exceptions)}
                        for e in self.entries],
            "messages": dict(self.messages),
        }

    @classmethod
    def from_json(cls, data: dict) -> KnowledgeBase:
        motifs = {
            m["id"]: Motif(m["id"], MotifKind(m["kind"]), m["label"], m.get("choix"))
            for m in data["motifs"]
        }
        entries = tuple(Entry(**(e | {"questions": tuple(e["questions"]),
                                      "triggers": tuple(e.get("triggers") or ()),
                                      "trigger_exceptions":
                                          tuple(e.get("trigger_exceptions") or ())}))
                        for e in data["entries"])
        return cls(motifs, entries, dict(data["messages"]))


def _digest(value: object) -> str:
    raw = json.dumps(value, sort_keys=True, ensure_ascii=False).encode("utf-8")
    return hashlib.sha256(raw).hexdigest()[:16]
