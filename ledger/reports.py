"""Reports computed from the ledger: the SC3.2 extraction, by-motif reports, orders.

Every figure comes from one pass of ``rule.classify`` over a month's contacts; this module
only adds up integer milliseconds and formats them (units.py) at the very end, so a day's
seconds and the month's total are exact and the total is the sum of the days.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from sqlalchemy.exc import SQLAlchemyError

from ledger import store
from ledger.gc_pause import collector_paused
from ledger.months import Month
from ledger.orders import Order, latest_orders
from ledger.rule import Contact, Reason, Verdict, classify, day_to_date
from ledger.units import format_hours, format_percent, format_seconds, hours

if TYPE_CHECKING:
    from ledger.api import Ledger

SC32_COLUMNS = ("date", "interactions", "productive", "productive_seconds", "productive_hours")
MOTIF_COLUMNS = ("period", "motif", "interactions", "productive", "productive_seconds",
                 "productive_hours", "ordered_hours", "billable_hours", "ratio_percent",
                 "days_under_95")
DETAIL_COLUMNS = ("call_id", "date", "started_at", "ended_at", "duration_seconds",
                  "productive", "reason")
TOTAL = "total"
BILLABLE_CAP_PERCENT = 110
"""Hours above 110 % of the order are not paid (tender §4.1.3)."""
FLOOR_PERCENT = 95
"""Below 95 % of the order, the ID1 penalty applies (tender §5.2)."""
GRANULARITIES = ("daily", "weekly", "monthly")


@dataclass
class Tally:
    interactions: int = 0
    productive: int = 0
    productive_ms: int = 0

    def add(self, verdict: Verdict) -> None:
        self.interactions += 1
        if verdict.productive:
            self.productive += 1
            self.productive_ms += verdict.productive_ms

    def merge(self, other: Tally) -> None:
        self.interactions += other.interactions
        self.productive += other.productive
        self.productive_ms += other.productive_ms


@dataclass(frozen=True)
class JudgedMonth:
    """A month's contacts with their verdicts (None for advisor contacts), and its orders."""

    month: Month
    any_later_call: bool
    timezone: str
    contacts: list[Contact]
    verdicts: list[Verdict | None]
    orders: dict[date, Order]

    @property
    def rule3(self) -> str:
        return (Reason.LATER_CALL if self.any_later_call else Reason.LATER_ADVISOR).value

    def judged(self) -> Iterator[tuple[Contact, Verdict]]:
        """The bot interactions and their verdicts."""
        for contact, verdict in zip(self.contacts, self.verdicts, strict=True):
            if verdict is not None:
                yield contact, verdict

    def day_tallies(self) -> dict[date, Tally]:
        tallies: dict[int, Tally] = defaultdict(Tally)
        for verdict in self.verdicts:
            if verdict is not None:
                tallies[verdict.day].add(verdict)
        return {day_to_date(day): tallies[day] for day in sorted(tallies)}


def judge_month(ledger: Ledger, month: Month) -> JudgedMonth:
    """Read the month's contacts (whole Paris days) and apply the rule once."""
    start_ms, end_ms = month.bounds_ms(ledger.calendar)
    any_later = ledger.options.rule3_any_later_call
    with collector_paused():
        try:
            ledger.ensure_schema()
            with ledger.engine.connect() as conn:
                contacts = store.contacts_between(conn, start_ms, end_ms)
                orders = latest_orders(conn, month.first_day, month.last_day)
        except SQLAlchemyError as exc:
            raise ledger.unavailable(exc) from None
        verdicts = classify(contacts, ledger.calendar, any_later_call=any_later)
    return JudgedMonth(month, any_later, ledger.options.timezone, contacts, verdicts, orders)


# --- SC3.2 extraction ------------------------------------------------------------------------
def sc32_rows(judged: JudgedMonth) -> list[tuple[str, Tally]]:
    """One row per day with bot activity, then the month's total."""
    rows = [(day.isoformat(), tally) for day, tally in judged.day_tallies().items()]
    total = Tally()
    for _, tally in rows:
        total.merge(tally)
    rows.append((TOTAL, total))
    return rows


def sc32_hours(rows: list[tuple[str, Tally]]) -> list[Decimal]:
    """Productive hours of each row, rounded once: a day's exact milliseconds are rounded
    half up to 4 decimals, and the total is the sum of the days as printed, so the billed
    total is exactly the sum of its lines. (The total's seconds are exact, the sum of the
    days' milliseconds; its hours may differ from those seconds / 3600 by the days'
    roundings, at most 0.00005 h a day.)"""
    days = [hours(tally.productive_ms) for label, tally in rows if label != TOTAL]
    return [*days, sum(days, Decimal(0))] if rows and rows[-1][0] == TOTAL else days


def _sc32_fields(label: str, tally: Tally, row_hours: Decimal) -> tuple[str, str, str, str, str]:
    return (label, str(tally.interactions), str(tally.productive),
            format_seconds(tally.productive_ms), f"{row_hours:.4f}")


def render_sc32(judged: JudgedMonth, fmt: str) -> str:
    rows = sc32_rows(judged)
    row_hours = sc32_hours(rows)
    if fmt == "csv":
        lines = [",".join(SC32_COLUMNS)]
        lines += [",".join(_sc32_fields(label, tally, h))
                  for (label, tally), h in zip(rows, row_hours, strict=True)]
        return "\n".join(lines) + "\n"
    if fmt == "json":
        body = {
            "month": str(judged.month), "timezone": judged.timezone, "rule3": judged.rule3,
            "rows": [{"date": label, "interactions": tally.interactions,
                      "productive": tally.productive,
                      "productive_seconds": _json_decimal(format_seconds(tally.productive_ms)),
                      "productive_hours": _json_decimal(f"{h:.4f}")}
                     for (label, tally), h in zip(rows, row_hours, strict=True)],
        }
        return json.dumps(body, ensure_ascii=False) + "\n"
    if fmt == "xml":
        root = ET.Element("sc32", month=str(judged.month), timezone=judged.timezone,
                          rule3=judged.rule3)
        for (label, tally), h in zip(rows, row_hours, strict=True):
            row = ET.SubElement(root, "row")
            for name, value in zip(SC32_COLUMNS, _sc32_fields(label, tally, h), strict=True):
                ET.SubElement(row, name).text = value
        return _xml_text(root)
    raise ValueError(f"unknown format {fmt}")


def render_detail(judged: JudgedMonth, tz: ZoneInfo) -> Iterator[tuple[str, ...]]:
    """Per interaction, in time order: the verdict and its reason, for an auditor."""
    from ledger.csv_io import format_instant, neutralise_cell

    yield DETAIL_COLUMNS
    for contact, verdict in sorted(judged.judged(),
                                   key=lambda pair: (pair[0].started_at_ms, pair[0].call_id)):
        yield (neutralise_cell(contact.call_id), day_to_date(verdict.day).isoformat(),
               format_instant(contact.started_at_ms, tz), format_instant(contact.ended_at_ms, tz),
               format_seconds(contact.ended_at_ms - contact.started_at_ms),
               "true" if verdict.productive else "false", verdict.reason.value)


# --- by motif, with orders -------------------------------------------------------------------
@dataclass
class PeriodLine:
    period: str
    motif: str
    tally: Tally
    ordered_ms: int | None = None
    billable_ms: int | None = None
    days_under_95: int | None = None

    def fields(self) -> tuple[str, ...]:
        is_total = self.motif == TOTAL
        ordered = self.ordered_ms
        return (
            self.period, self.motif, str(self.tally.interactions), str(self.tally.productive),
            format_seconds(self.tally.productive_ms), format_hours(self.tally.productive_ms),
            format_hours(ordered) if ordered is not None else "",
            format_hours(self.billable_ms) if is_total and self.billable_ms is not None else "",
            format_percent(self.tally.productive_ms, ordered) if ordered else "",
            str(self.days_under_95) if is_total and self.days_under_95 is not None else "",
        )


@dataclass
class _PeriodAccumulator:
    motifs: dict[str, Tally] = field(default_factory=lambda: defaultdict(Tally))
    total: Tally = field(default_factory=Tally)
    ordered_ms: int | None = None
    billable_ms: int = 0
    days_under_95: int = 0

    def add_day(self, tally: Tally, order: Order | None) -> None:
        self.total.merge(tally)
        if order is None:
            return  # no order: nothing of that day is billable
        self.ordered_ms = (self.ordered_ms or 0) + order.ordered_ms
        cap_ms = order.ordered_ms * BILLABLE_CAP_PERCENT // 100
        self.billable_ms += min(tally.productive_ms, cap_ms)
        if order.ordered_ms > 0 and 100 * tally.productive_ms < FLOOR_PERCENT * order.ordered_ms:
            self.days_under_95 += 1

    def lines(self, period: str) -> list[PeriodLine]:
        lines = [PeriodLine(period, motif, self.motifs[motif]) for motif in sorted(self.motifs)]
        lines.append(PeriodLine(period, TOTAL, self.total, self.ordered_ms, self.billable_ms,
                                self.days_under_95))
        return lines


def period_of(day: date, granularity: str) -> str:
    if granularity == "daily":
        return day.isoformat()
    if granularity == "weekly":
        year, week, _ = day.isocalendar()
        return f"{year}-W{week:02d}"
    return f"{day.year:04d}-{day.month:02d}"


def motif_lines(judged: JudgedMonth, granularity: str) -> list[PeriodLine]:
    """Per period: one line per motif, then the period's total with ordered/billable hours;
    last, the month's total. Days with an order but no activity count (0 productive)."""
    day_motifs: dict[date, dict[str, Tally]] = defaultdict(lambda: defaultdict(Tally))
    for contact, verdict in judged.judged():
        day_motifs[day_to_date(verdict.day)][contact.motif].add(verdict)
    periods: dict[str, _PeriodAccumulator] = {}
    month_total = _PeriodAccumulator()
    for day in sorted(set(day_motifs) | set(judged.orders)):
        tally = Tally()
        for t in day_motifs.get(day, {}).values():
            tally.merge(t)
        accumulator = periods.setdefault(period_of(day, granularity), _PeriodAccumulator())
        for motif, t in day_motifs.get(day, {}).items():
            accumulator.motifs[motif].merge(t)
        accumulator.add_day(tally, judged.orders.get(day))
        month_total.add_day(tally, judged.orders.get(day))
    lines = [line for period, acc in periods.items() for line in acc.lines(period)]
    total = month_total.lines(TOTAL)[-1]
    return lines + [total]


def render_motif_report(judged: JudgedMonth, granularity: str, fmt: str) -> str:
    lines = motif_lines(judged, granularity)
    if fmt == "csv":
        text = [",".join(MOTIF_COLUMNS)] + [",".join(line.fields()) for line in lines]
        return "\n".join(text) + "\n"
    if fmt == "xml":
        root = ET.Element("report", kind=granularity, month=str(judged.month),
                          timezone=judged.timezone, rule3=judged.rule3)
        current: ET.Element | None = None
        for line in lines:
            values = dict(zip(MOTIF_COLUMNS, line.fields(), strict=True))
            if line.period == TOTAL:
                parent = root
            else:
                if current is None or current.get("id") != line.period:
                    current = ET.SubElement(root, "period", id=line.period)
                parent = current
            attributes = {k: v for k, v in values.items() if k not in ("period", "motif") and v}
            if line.motif == TOTAL:
                ET.SubElement(parent, "total", attributes)
            else:
                ET.SubElement(parent, "motif", {"id": line.motif, **attributes})
        return _xml_text(root)
    raise ValueError(f"unknown format {fmt}")


def daily_series(judged: JudgedMonth) -> list[tuple[date, float, float | None]]:
    """Every day of the month: productive hours and ordered hours (None without order)."""
    tallies = judged.day_tallies()
    series = []
    for day in judged.month.days():
        productive = float(hours(tallies[day].productive_ms)) if day in tallies else 0.0
        order = judged.orders.get(day)
        series.append((day, productive, float(hours(order.ordered_ms)) if order else None))
    return series


def _json_decimal(text: str) -> float:
    """A fixed-decimal string as a JSON number; exact here (far below 15 significant digits)."""
    return float(text)


def _xml_text(root: ET.Element) -> str:
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
