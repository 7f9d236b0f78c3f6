"""The hand-off safety net: trigger phrases the editors list under ``declencheurs:``.

A caller who says an urgency ("mes allocations sont suspendues", "expulsion", "trop-perçu")
or asks for a person ("parler à un conseiller") must never get a FAQ answer because the
classifier hesitated. Hand-off entries may list trigger phrases; the dialogue core looks
for them in the utterance before any NLU and, on a match, hands off with that entry.

Matching is done on a normalised form (lowercase, no accents, apostrophes, hyphens and
punctuation turned into spaces) and on whole words only, so "dette" matches "ma dette"
but not "endetté", and "trop-perçu" matches "trop perçu".
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from bot.kb.model import Entry, KnowledgeBase

GENERIC_HANDOFF_MOTIF = "conseiller"
"""A plain request for a person: when an urgency is also said, the urgency qualifies the call."""


def normalise(text: str) -> str:
    """Lowercase, no accents, words separated by single spaces (the validator's form too)."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(re.sub(r"[^a-z0-9]+", " ", bare).split())


def trigger_pattern(trigger: str) -> re.Pattern[str]:
    """Whole-word pattern of one normalised trigger, to search in a normalised text."""
    return re.compile(rf"(?<![a-z0-9]){re.escape(normalise(trigger))}(?![a-z0-9])")


@dataclass(frozen=True)
class TriggerMatch:
    entry: Entry
    trigger: str


class TriggerIndex:
    """All trigger phrases of one knowledge base, compiled once."""

    def __init__(self, kb: KnowledgeBase):
        self.kb = kb
        self._rules: list[tuple[re.Pattern[str], str, Entry]] = [
            (trigger_pattern(trigger), trigger, entry)
            for entry in kb.entries
            for trigger in entry.triggers
            if normalise(trigger)
        ]

    def match(self, text: str) -> TriggerMatch | None:
        """The hand-off entry a caller's utterance triggers, or None.

        An urgency beats a plain request for a person ("je veux un conseiller, j'ai une
        dette" is qualified ``urgence``); otherwise the first trigger in base order wins.
        """
        normalised = normalise(text)
        if not normalised:
            return None
        found: TriggerMatch | None = None
        for pattern, trigger, entry in self._rules:
            if pattern.search(normalised):
                if entry.motif != GENERIC_HANDOFF_MOTIF:
                    return TriggerMatch(entry, trigger)
                found = found or TriggerMatch(entry, trigger)
        return found
