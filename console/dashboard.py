"""The supervisors' figures for a range of Paris days: one table per period and motif, the
same figures as CSV, and the charts (console/svg.py) drawn from them.

Rates are percent of calls; reply times are nearest-rank percentiles of every turn's reply
time in the period; "productive" is the SC3.2 verdict, the same as billing's.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from markupsafe import Markup

from bot.errors import VoicebotError
from console import svg
from ledger.stats import (
    FLAG_FRUSTRATION,
    FLAG_HANGUP,
    FLAG_MISUNDERSTOOD,
    FLAG_SILENCE,
    TOTAL,
    CallFacts,
    Figures,
    by_motif,
    period_of,
    periods_between,
    total,
)

CSV_COLUMNS = ("period", "motif", "calls", "answered_percent", "handoff_percent",
               "reoriented_percent", "turns", "misunderstood_turns", "hangups_during_answer",
               "productive_percent", "reply_p50_ms", "reply_p95_ms", "satisfaction_mean",
               "satisfaction_answers")
GRANULARITIES = {"jour": "day", "semaine": "week", "mois": "month"}
"""The page's French names for the periods and ``ledger.stats``' names."""
FLAG_LABELS = {
    FLAG_SILENCE: "silence long",
    FLAG_MISUNDERSTOOD: "incompréhension répétée",
    FLAG_FRUSTRATION: "mots de frustration",
    FLAG_HANGUP: "raccroché pendant une réponse",
}
OUTCOME_LABELS = {
    "answered": "répondu", "handoff": "transféré", "reoriented": "réorienté",
    "hangup": "raccroché", "closed": "hors horaires", "error": "erreur (transféré)",
}
MAX_RANGE_DAYS = 400


@dataclass(frozen=True)
class Range:
    first: date
    last: date
    granularity: str
    """``day``, ``week`` or ``month``."""
    motif: str | None = None

    @property
    def label(self) -> str:
        if self.first == self.last:
            return f"le {self.first:%d/%m/%Y}"
        return f"du {self.first:%d/%m/%Y} au {self.last:%d/%m/%Y}"


def parse_range(first: str | None, last: str | None, granularity: str | None,
                motif: str | None, today: date) -> Range:
    """The page's query (``du``, ``au``, ``par``, ``motif``), checked; French errors."""
    start = _day(first, "du") if first else today
    end = _day(last, "au") if last else (start if first else today)
    if end < start:
        raise VoicebotError("La date de fin (« au ») précède la date de début (« du »).")
    if (end - start).days >= MAX_RANGE_DAYS:
        raise VoicebotError(f"Période trop longue : {MAX_RANGE_DAYS} jours au plus.")
    if granularity and granularity not in GRANULARITIES:
        raise VoicebotError(f"Regroupement « {granularity} » inconnu : jour, semaine ou mois.")
    return Range(start, end, GRANULARITIES[granularity or "jour"], motif or None)


def _day(text: str, name: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise VoicebotError(f"Date « {text} » invalide pour « {name} » : attendu AAAA-MM-JJ."
                            ) from None


def percent(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def figure_fields(period: str, motif: str, f: Figures) -> tuple[str, ...]:
    p50, p95, mean = f.reply_percentile(50), f.reply_percentile(95), f.satisfaction_mean
    return (period, motif, str(f.calls), percent(f.rate(f.answered)),
            percent(f.rate(f.handoffs)), percent(f.rate(f.reoriented)), str(f.turns),
            str(f.misunderstood_turns), str(f.hangups_during_answer),
            percent(f.rate(f.productive)), "" if p50 is None else str(p50),
            "" if p95 is None else str(p95), "" if mean is None else f"{mean:.2f}",
            str(len(f.satisfaction)))


@dataclass
class Dashboard:
    range: Range
    periods: list[str]
    per_period: dict[str, Figures]
    per_period_motif: dict[str, dict[str, Figures]]
    per_motif: dict[str, Figures]
    overall: Figures

    @classmethod
    def build(cls, calls: Sequence[CallFacts], wanted: Range,
              date_of: Callable[[int], date]) -> Dashboard:
        periods = periods_between(wanted.first, wanted.last, wanted.granularity)
        grouped: dict[str, list[CallFacts]] = {p: [] for p in periods}
        for call in calls:
            grouped[period_of(date_of(call.started_at_ms), wanted.granularity)].append(call)
        return cls(wanted, periods, {p: total(grouped[p]) for p in periods},
                   {p: by_motif(grouped[p]) for p in periods}, by_motif(calls), total(calls))

    def csv_rows(self) -> list[tuple[str, ...]]:
        rows = [CSV_COLUMNS]
        for period in self.periods:
            for motif, figures in self.per_period_motif[period].items():
                rows.append(figure_fields(period, motif, figures))
            rows.append(figure_fields(period, TOTAL, self.per_period[period]))
        for motif, figures in self.per_motif.items():
            rows.append(figure_fields(TOTAL, motif, figures))
        rows.append(figure_fields(TOTAL, TOTAL, self.overall))
        return rows

    def csv_text(self) -> str:
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerows(self.csv_rows())
        return out.getvalue()

    # --- charts -----------------------------------------------------------------------------
    def charts(self) -> list[Markup]:
        labels = [_short(p, self.range.granularity) for p in self.periods]
        figures = [self.per_period[p] for p in self.periods]
        where = self.range.label + (f", motif {self.range.motif}" if self.range.motif else "")
        charts = [
            svg.bar_chart("Appels par période", f"Nombre d'appels traités par le bot {where}.",
                          labels, [f.calls for f in figures], "appels"),
            svg.line_chart(
                "Issues des appels (% des appels)",
                f"Part des appels répondus, transférés, réorientés et productifs {where}.",
                labels,
                [("répondus", [f.rate(f.answered) for f in figures]),
                 ("transférés", [f.rate(f.handoffs) for f in figures]),
                 ("réorientés", [f.rate(f.reoriented) for f in figures]),
                 ("productifs", [f.rate(f.productive) for f in figures])],
                "%", top=100),
            svg.line_chart(
                "Temps de réponse du bot (ms)",
                f"Médiane et 95e centile du temps de réponse par période {where}.", labels,
                [("médiane (p50)", [f.reply_percentile(50) for f in figures]),
                 ("p95", [f.reply_percentile(95) for f in figures])], "ms"),
        ]
        if self.per_motif:
            motifs = list(self.per_motif)
            charts.append(svg.hbar_chart(
                "Appels par motif", f"Nombre d'appels par motif {where}.", motifs,
                [self.per_motif[m].calls for m in motifs], "appels"))
        return charts


def _short(period: str, granularity: str) -> str:
    if granularity == "day":
        return f"{period[8:10]}/{period[5:7]}"
    if granularity == "week":
        return "S" + period.split("-W")[1]
    return f"{period[5:7]}/{period[:4]}"


def quick_ranges(today: date) -> list[tuple[str, str]]:
    """Links above the dashboard: today, the last 7 days, this month, last month."""
    first_this = today.replace(day=1)
    last_prev = first_this - timedelta(days=1)
    first_prev = last_prev.replace(day=1)
    return [
        ("Aujourd'hui", f"du={today}&au={today}&par=jour"),
        ("7 derniers jours", f"du={today - timedelta(days=6)}&au={today}&par=jour"),
        ("Ce mois-ci", f"du={first_this}&au={today}&par=jour"),
        ("Mois précédent", f"du={first_prev}&au={last_prev}&par=semaine"),
    ]
