"""The caller's answer to the satisfaction question ("tapez de 1 à 5"), stored with the call.

One row per call that was asked (``ledger_call_satisfaction``, migration 0004), keyed by
``call_id`` like the interaction it belongs to, which takes it along when deleted. A call
that was asked and answered nothing has a NULL score, so dashboards can give the response
rate beside the mean. A live call hands its answer in with its interaction
(``Interaction.satisfaction``): it is written in the row's transaction, or spooled with the
row when the database is down, and replayed with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import sqlalchemy as sa

from ledger.schema import call_satisfaction

if TYPE_CHECKING:
    from ledger.api import Ledger

SCORES = range(1, 6)


@dataclass(frozen=True)
class SatisfactionSummary:
    """The answers of calls started in a period."""

    asked: int
    """Calls the question was put to."""
    scores: tuple[int, ...]
    """The keys pressed, in call order (calls with no answer left out)."""

    @property
    def answered(self) -> int:
        return len(self.scores)

    @property
    def mean(self) -> float | None:
        return sum(self.scores) / len(self.scores) if self.scores else None


def read_satisfaction(ledger: Ledger, call_id: str) -> tuple[bool, int | None]:
    """(asked, score) of one call."""
    with ledger.engine.connect() as conn:
        row = conn.execute(sa.select(call_satisfaction.c.score)
                           .where(call_satisfaction.c.call_id == call_id)).first()
    return (False, None) if row is None else (True, row.score)


def summarise(ledger: Ledger, start_ms: int, end_ms: int) -> SatisfactionSummary:
    """The answers of the calls started in [``start_ms``, ``end_ms``)."""
    t = call_satisfaction
    with ledger.engine.connect() as conn:
        rows = conn.execute(sa.select(t.c.score)
                            .where(t.c.started_at_ms >= start_ms, t.c.started_at_ms < end_ms)
                            .order_by(t.c.started_at_ms, t.c.call_id)).all()
    return SatisfactionSummary(len(rows), tuple(r.score for r in rows if r.score is not None))
