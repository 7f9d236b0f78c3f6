"""Which entry of the predicted motif answers the caller: the one whose questions are nearest.

DIET decides the motif. Several motifs hold more than one entry, and there the entry is
the answer: ``hors_sujet`` has nine, each sending the caller to a different body (tax
office, France Travail, Assurance Maladie…), ``changement_situation`` three. The entry is
chosen by similarity to the editors' own questions: TF-IDF over words and character
n-grams within words (robust to transcription slips, like DIET's features), cosine to each
question, and the entry whose best question is closest wins.

It replaced a Rasa ResponseSelector, which cost 20 to 45 s of the training budget and
chose worse on the dev set's entry labels (``entry_accuracy`` in benchmarks/nlu.py; the
figures are in docs/nlu.md). Nothing is trained: the index is built from the published
base when first needed (tens of milliseconds), so new questions route as soon as they
are published.
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import hstack
from sklearn.feature_extraction.text import TfidfVectorizer

from bot.kb.model import Entry, KnowledgeBase
from bot.kb.triggers import normalise


class EntryRouter:
    def __init__(self, kb: KnowledgeBase):
        self._kb = kb
        questions, owners = [], []
        for entry in kb.entries:
            if len(kb.entries_of(entry.motif)) > 1:
                for question in entry.questions:
                    questions.append(normalise(question))
                    owners.append(entry)
        self._owners = owners
        self._words = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
        self._chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True)
        self._matrix = self._vectors(questions, fit=True) if questions else None

    @classmethod
    def of(cls, kb: KnowledgeBase) -> EntryRouter:
        """The router of this base, built once."""
        return kb.derived("entry_router", cls)

    def entry(self, motif: str, text: str) -> Entry | None:
        """The entry of ``motif`` that best answers ``text`` (its first one when no question
        shares anything with the text; None for an unknown motif)."""
        candidates = self._kb.entries_of(motif)
        said = normalise(text)
        if len(candidates) <= 1 or self._matrix is None or not said:
            return candidates[0] if candidates else None
        similarity = (self._matrix @ self._vectors([said]).T).toarray().ravel()
        best: dict[str, float] = {}
        for owner, score in zip(self._owners, similarity, strict=False):
            if owner.motif == motif and score > best.get(owner.id, -1.0):
                best[owner.id] = float(score)
        if not best or max(best.values()) <= 0.0:
            return candidates[0]
        return self._kb.entry(max(best, key=best.__getitem__))

    def _vectors(self, texts: list[str], fit: bool = False):
        if fit:
            words, chars = self._words.fit_transform(texts), self._chars.fit_transform(texts)
        else:
            words, chars = self._words.transform(texts), self._chars.transform(texts)
        stacked = hstack([words, chars]).tocsr()
        norms = np.sqrt(np.asarray(stacked.multiply(stacked).sum(axis=1))).ravel()
        norms[norms == 0] = 1.0
        return stacked.multiply(1.0 / norms[:, None]).tocsr()
