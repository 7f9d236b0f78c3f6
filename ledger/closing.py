"""Closed months: the SC3.2 extraction as billed, frozen with its SHA-256; changes refused.

``voicebot report sc32 --month M --close`` stores the month's CSV extraction and its hash
(``ledger_closed_months``). From then on, whatever would change that month's figures is
refused and reported, day by day with the old and new figures, instead of silently
changing what was billed:

- a CSV import (or a contact from the feed) that would: the whole file is refused, exit
  code 2, nothing written;
- a spooled or live call event that would: set aside in ``closed-month.jsonl`` in the
  spool directory with the report, journaled, logged; ``voicebot ledger replay-spool``
  prints the report and exits 1.

Rows that leave the figures as they are (an advisor contact before every bot call of its
caller that day, say) are stored as usual: the billed extraction stays reproducible from
the export. A correction of a billed month is a commercial act (a credit note), not an
edit of the ledger; the refused rows are kept for it.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from bot.errors import VoicebotError
from ledger import store
from ledger.months import Month
from ledger.records import Row
from ledger.reports import JudgedMonth, judge_month, render_sc32
from ledger.rule import Contact, Reason, classify, day_to_date
from ledger.schema import closed_months

if TYPE_CHECKING:
    from ledger.api import Ledger

CLOSED_MONTH = "closed-month.jsonl"
"""Spooled or live events refused because they would change a closed month."""
_FIGURES = ("interactions", "productives", "secondes productives", "heures productives")


@dataclass(frozen=True)
class ClosedMonth:
    month: str
    closed_at_ms: int
    closed_by: str
    rule3: str
    sha256: str
    extraction: str
    """The CSV extraction exactly as billed (``voicebot report sc32 --month M``)."""


@dataclass(frozen=True)
class MonthChange:
    """What new rows would do to a closed month: ``(label, old fields, new fields)`` per
    day whose line would change, the total last; fields as in the extraction."""

    closed: ClosedMonth
    days: list[tuple[str, tuple[str, ...] | None, tuple[str, ...] | None]]
    call_ids: list[str]

    def french(self) -> str:
        lines = [f"Mois {self.closed.month} clos (extraction facturée, SHA-256 "
                 f"{self.closed.sha256[:16]}…) : {len(self.call_ids)} ligne(s) en changeraient "
                 "les chiffres :"]
        for label, old, new in self.days:
            old = old or (label, "0", "0", "0.000", "0.0000")
            new = new or (label, "0", "0", "0.000", "0.0000")
            figures = ", ".join(f"{name} {a} → {b}" for name, a, b in
                                zip(_FIGURES, old[1:], new[1:], strict=True) if a != b)
            lines.append(f"  {label} : {figures}")
        return "\n".join(lines)


class ClosedMonthError(VoicebotError):
    """An import would change a closed month: refused, nothing written."""

    def __init__(self, source: str, changes: list[MonthChange]):
        self.changes = changes
        report = "\n".join(change.french() for change in changes)
        super().__init__(
            f"{source} : refusé, rien n'a été importé : le registre d'un mois clos ne change "
            f"plus (sa facturation est faite).\n{report}")


def read_closed(conn: Connection) -> dict[str, ClosedMonth]:
    return {record.month: ClosedMonth(**record._mapping)
            for record in conn.execute(sa.select(closed_months))}


def close_month(ledger: Ledger, month: Month, closed_by: str, today: date
                ) -> tuple[ClosedMonth, bool]:
    """Store the month's extraction and its hash; (the closed month, newly closed?)."""
    if month.last_day >= today:
        raise VoicebotError(
            f"Le mois {month} n'est pas terminé : il ne peut être clos qu'à partir du "
            f"lendemain de son dernier jour ({month.last_day.isoformat()}).")
    judged = judge_month(ledger, month)
    text = render_sc32(judged, "csv")
    closed = ClosedMonth(str(month), store.now_ms(), closed_by[:64], judged.rule3,
                         hashlib.sha256(text.encode("utf-8")).hexdigest(), text)
    with ledger.engine.begin() as conn:
        existing = read_closed(conn).get(str(month))
        if existing is not None:
            return existing, False
        conn.execute(closed_months.insert().values(**closed.__dict__))
        store.write_journal(conn, closed.closed_at_ms, "month_closed",
                            {"month": closed.month, "sha256": closed.sha256,
                             "by": closed.closed_by})
    return closed, True


def changes_to_closed(ledger: Ledger, conn: Connection, rows: Sequence[Row]
                      ) -> list[MonthChange]:
    """What inserting ``rows`` (those not stored yet) would change in closed months."""
    closed = read_closed(conn)
    if not closed or not rows:
        return []
    calendar = ledger.calendar
    by_month: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        month = str(Month.of(day_to_date(calendar.day_of(row.started_at_ms))))
        if month in closed:
            by_month[month].append(row)
    changes = []
    for name, candidates in sorted(by_month.items()):
        stored = store.existing_rows(conn, (row.call_id for row in candidates))
        fresh = [row for row in candidates if row.call_id not in stored]
        if not fresh:
            continue
        month = Month.parse(name)
        start_ms, end_ms = month.bounds_ms(calendar)
        contacts = store.contacts_between(conn, start_ms, end_ms)
        contacts += [Contact(row.channel.value, row.caller_key, row.started_at_ms,
                             row.ended_at_ms, row.message_ms, row.listened_ms, row.handoff,
                             row.motif, row.call_id) for row in fresh]
        any_later = closed[name].rule3 == Reason.LATER_CALL.value
        verdicts = classify(contacts, calendar, any_later_call=any_later)
        judged = JudgedMonth(month, any_later, ledger.options.timezone, contacts, verdicts, {})
        days = _changed_lines(closed[name].extraction, render_sc32(judged, "csv"))
        if days:
            changes.append(MonthChange(closed[name], days, [row.call_id for row in fresh]))
    return changes


def _changed_lines(old_text: str, new_text: str
                   ) -> list[tuple[str, tuple[str, ...] | None, tuple[str, ...] | None]]:
    old = {line.split(",", 1)[0]: tuple(line.split(",")) for line in old_text.splitlines()[1:]}
    new = {line.split(",", 1)[0]: tuple(line.split(",")) for line in new_text.splitlines()[1:]}
    labels = sorted((set(old) | set(new)) - {"total"}) + ["total"]
    return [(label, old.get(label), new.get(label)) for label in labels
            if old.get(label) != new.get(label)]
