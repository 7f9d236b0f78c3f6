"""« Questions que le bot n'a pas comprises »: caller phrasings that ended in a request to
rephrase or in the hand-off after repeated misunderstanding, grouped by similarity.

The phrasings come from the sealed transcripts of the ledger (``Appelant : …`` / ``Bot : …``
lines, bot/pipeline.py): a caller line whose reply is the ``clarify`` or the
``handoff_misunderstood`` message is a phrasing the bot did not understand. Wordings of
those messages change when editors publish, so every wording known (the live base, the
files, each publication kept by the console) is recognised. Reading transcripts is a read
of personal data: the ledger journal and the console's access log both record it.

Grouping: TF-IDF over character n-grams within words (robust to transcription slips, as
bot/kb/routing.py does for entries), cosine similarity, each phrasing joining the most
similar group above ``GROUP_SIMILARITY``; each group gets the entry whose questions are the
closest, as a suggestion for the editor.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import numpy as np
import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from bot.kb.triggers import normalise  # « Noël ? » and « noel » are one phrasing
from ledger import store
from ledger.api import Ledger
from ledger.crypto import Sealed
from ledger.schema import interactions, transcripts

CALLER = "Appelant : "
BOT = "Bot : "
GROUP_SIMILARITY = 0.45
"""Cosine (TF-IDF of 3- to 5-character n-grams) from which a phrasing joins a group."""
SUGGEST_SIMILARITY = 0.3
"""Below this, no entry is suggested for a group."""
SCAN_LIMIT = 20_000
"""Transcripts read at most for one page (the newest of the period)."""
CLARIFY = "clarify"
HANDOFF = "handoff_misunderstood"
KINDS = {CLARIFY: "reformulation demandée", HANDOFF: "transfert après incompréhensions"}


@dataclass(frozen=True)
class Phrasing:
    text: str
    call_id: str
    started_at_ms: int
    kind: str
    """``clarify`` or ``handoff_misunderstood``: what the bot said after it."""


@dataclass
class PhrasingGroup:
    phrasings: list[Phrasing] = field(default_factory=list)
    suggestion: str | None = None
    """Id of the entry whose questions are closest."""
    suggestion_score: float = 0.0

    @property
    def label(self) -> str:
        """The most frequent phrasing of the group."""
        return self.texts[0]

    @property
    def texts(self) -> list[str]:
        """Distinct phrasings, most frequent first."""
        counts: dict[str, int] = {}
        for p in self.phrasings:
            counts[p.text] = counts.get(p.text, 0) + 1
        return sorted(counts, key=lambda t: (-counts[t], t))

    @property
    def calls(self) -> int:
        return len({p.call_id for p in self.phrasings})


@dataclass(frozen=True)
class Scan:
    phrasings: list[Phrasing]
    transcripts: int
    """Transcripts decrypted and read."""
    truncated: bool


def misunderstood_in(transcript: str, wordings: dict[str, str]) -> list[tuple[str, str]]:
    """(caller phrasing, kind) for each caller line answered by a wording in ``wordings``
    (normalised text -> kind)."""
    lines = transcript.splitlines()
    found = []
    for line, reply in zip(lines, lines[1:]):  # noqa: B905 - pairs of neighbours
        if not (line.startswith(CALLER) and reply.startswith(BOT)):
            continue
        said = line[len(CALLER):].strip()
        kind = wordings.get(_spaces(reply[len(BOT):]))
        if said and kind:
            found.append((said, kind))
    return found


def read_misunderstood(ledger: Ledger, first: date, last: date, wordings: dict[str, str],
                       reader: str, limit: int = SCAN_LIMIT) -> Scan:
    """The not-understood phrasings of bot calls on days ``first``..``last``, newest first;
    the read is journaled in the ledger with who asked."""
    start_ms = ledger.calendar.day_bounds_ms(first)[0]
    end_ms = ledger.calendar.day_bounds_ms(last)[1]
    t, i = transcripts, interactions
    query = (sa.select(t.c.call_id, t.c.key_id, t.c.nonce, t.c.ciphertext, i.c.started_at_ms)
             .select_from(t.join(i, i.c.call_id == t.c.call_id))
             .where(i.c.started_at_ms >= start_ms, i.c.started_at_ms < end_ms)
             .order_by(i.c.started_at_ms.desc(), i.c.call_id).limit(limit + 1))
    phrasings: list[Phrasing] = []
    try:
        ledger.ensure_schema()
        with ledger.engine.begin() as conn:
            rows = conn.execute(query).fetchall()
            for row in rows[:limit]:
                text = ledger.cipher.open(row.call_id, Sealed(row.key_id, bytes(row.nonce),
                                                              bytes(row.ciphertext)))
                phrasings += [Phrasing(said, row.call_id, int(row.started_at_ms), kind)
                              for said, kind in misunderstood_in(text, wordings)]
            store.write_journal(conn, store.now_ms(), "transcript_misunderstood", {
                "reader": reader, "first": first.isoformat(), "last": last.isoformat(),
                "scanned": min(len(rows), limit), "found": len(phrasings)})
    except SQLAlchemyError as exc:
        raise ledger.unavailable(exc) from None
    return Scan(phrasings, min(len(rows), limit), len(rows) > limit)


def group_phrasings(phrasings: list[Phrasing], questions: dict[str, list[str]] | None = None,
                    threshold: float = GROUP_SIMILARITY) -> list[PhrasingGroup]:
    """Groups of similar phrasings, largest first; with ``questions`` (entry id -> its
    questions), each group's closest entry as a suggestion."""
    if not phrasings:
        return []
    from sklearn.feature_extraction.text import TfidfVectorizer

    texts = [p.text for p in phrasings]
    corpus = texts + [q for qs in (questions or {}).values() for q in qs]
    vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5),
                                 preprocessor=normalise, sublinear_tf=True)
    vectorizer.fit(corpus)
    vectors = vectorizer.transform(texts).toarray()  # rows are L2-normalised
    groups: list[PhrasingGroup] = []
    centroids: list[np.ndarray] = []
    sums: list[np.ndarray] = []
    for phrasing, vector in zip(phrasings, vectors, strict=True):
        best, best_score = -1, threshold
        for index, centroid in enumerate(centroids):
            score = float(centroid @ vector)
            if score >= best_score:
                best, best_score = index, score
        if best < 0:
            groups.append(PhrasingGroup([phrasing]))
            sums.append(vector.copy())
            centroids.append(_unit(vector))
        else:
            groups[best].phrasings.append(phrasing)
            sums[best] += vector
            centroids[best] = _unit(sums[best])
    if questions:
        _suggest(groups, centroids, questions, vectorizer)
    order = sorted(range(len(groups)), key=lambda k: (-len(groups[k].phrasings),
                                                       groups[k].label))
    return [groups[k] for k in order]


def _suggest(groups: list[PhrasingGroup], centroids: list[np.ndarray],
             questions: dict[str, list[str]], vectorizer) -> None:
    owners = [entry_id for entry_id, qs in questions.items() for _ in qs]
    if not owners:
        return
    matrix = vectorizer.transform([q for qs in questions.values() for q in qs]).toarray()
    for group, centroid in zip(groups, centroids, strict=True):
        scores = matrix @ centroid
        best = int(np.argmax(scores))
        if scores[best] >= SUGGEST_SIMILARITY:
            group.suggestion, group.suggestion_score = owners[best], float(scores[best])


def _spaces(text: str) -> str:
    return " ".join(text.split())


def _unit(vector: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm else vector


def wordings_of(messages: dict[str, str]) -> dict[str, str]:
    """Normalised text -> kind for the two messages that mean « not understood »."""
    return {_spaces(messages[k]): k for k in (CLARIFY, HANDOFF) if messages.get(k)}
