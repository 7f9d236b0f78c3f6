"""The hand-off safety net: trigger phrases the editors list under ``declencheurs:``.

A caller who says an urgency ("mes allocations sont suspendues", "expulsion", "trop-perçu")
or asks for a person ("parler à un conseiller") must never get a FAQ answer because the
classifier hesitated. Hand-off entries may list trigger phrases; the dialogue core looks
for them in the utterance before any NLU and, on a match, hands off with that entry.

Matching is done on a normalised form (lowercase, no accents, apostrophes, hyphens and
punctuation turned into spaces) and on whole words only, so "dette" matches "ma dette"
but not "endetté", and "trop-perçu" matches "trop perçu".

Whisper drops or swaps the small words of telephone French ("j'attends pour parler un
préposé", heard over G.711 for "… parler à un préposé"), so a trigger of several words
also matches once articles and prepositions are left out on both sides. A trigger that
such stripping would reduce to one word ("un humain") keeps matching only as written,
or "un conseiller" would fire on "un rendez-vous avec un conseiller".

The words of an urgency also turn up in ordinary questions: "à quelle date il faut que je
rende ma déclaration", "attestation de non dette", "mon rsa est suspendu pendant les
vacances ou pas". An entry may therefore list exceptions (``sauf:``): the turns of a
general question ("c'est quoi", "à quel âge", "pendant les vacances", "non dette"). When
one of them is said too, that entry's triggers stay silent and the classifier reads the
question like any other; a caller who is really in debt is still understood there, since
the urgency's own training questions say so. Exceptions are matched like triggers.
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


GLUE_WORDS = frozenset("a au aux d de des du en l la le les un une".split())
"""Articles and prepositions, the words ASR loses first (normalised, so "à" is "a")."""


def without_glue(normalised: str) -> str:
    return " ".join(word for word in normalised.split() if word not in GLUE_WORDS)


def _whole_words(normalised: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![a-z0-9]){re.escape(normalised)}(?![a-z0-9])")


@dataclass(frozen=True)
class TriggerRule:
    """One trigger phrase, as written and without its small words (see the module doc)."""

    trigger: str
    exact: re.Pattern[str]
    loose: re.Pattern[str] | None

    @classmethod
    def of(cls, trigger: str) -> TriggerRule:
        bare = without_glue(normalise(trigger))
        return cls(trigger, _whole_words(normalise(trigger)),
                   _whole_words(bare) if len(bare.split()) >= 2 else None)

    def found_in(self, normalised: str, bare: str) -> bool:
        """Whether it is in a text given normalised and ``without_glue`` of that."""
        return bool(self.exact.search(normalised) or (self.loose and self.loose.search(bare)))


@dataclass(frozen=True)
class TriggerMatch:
    entry: Entry
    trigger: str


class TriggerIndex:
    """All trigger phrases of one knowledge base, compiled once."""

    def __init__(self, kb: KnowledgeBase):
        self._rules = [(TriggerRule.of(trigger), entry)
                       for entry in kb.entries for trigger in entry.triggers
                       if normalise(trigger)]
        self._exceptions = {entry.id: [TriggerRule.of(phrase) for phrase in entry.trigger_exceptions
                                       if normalise(phrase)]
                            for entry in kb.entries}

    def excepted(self, entry: Entry, normalised: str, bare: str) -> bool:
        """Whether the text says one of ``entry``'s exceptions: a general question, not a case."""
        return any(rule.found_in(normalised, bare) for rule in self._exceptions.get(entry.id, ()))

    def match(self, text: str) -> TriggerMatch | None:
        """The hand-off entry a caller's utterance triggers, or None.

        An urgency beats a plain request for a person ("je veux un conseiller, j'ai une
        dette" is qualified ``urgence``); otherwise the first trigger in base order wins.
        """
        normalised = normalise(text)
        if not normalised:
            return None
        bare = without_glue(normalised)
        found: TriggerMatch | None = None
        for rule, entry in self._rules:
            if rule.found_in(normalised, bare) and not self.excepted(entry, normalised, bare):
                if entry.motif != GENERIC_HANDOFF_MOTIF:
                    return TriggerMatch(entry, rule.trigger)
                found = found or TriggerMatch(entry, rule.trigger)
        return found
