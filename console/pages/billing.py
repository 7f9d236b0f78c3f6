"""Billing pages (role ``facturation``): the SC3.2 month, orders, exports, closing.

The figures are those of ``voicebot report sc32`` (the same ``judge_month``), the orders
those of ``voicebot orders`` (the same ``set_order``), the closing that of ``voicebot
report sc32 --close``. Exports and actions are written to the access log.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from bot.errors import VoicebotError
from console import svg
from console.audit_log import record
from console.auth import require_role
from console.render import NavItem, render
from console.roles import FACTURATION
from ledger.closing import ClosedMonth, close_month, read_closed
from ledger.months import Month, parse_day
from ledger.orders import Order, month_orders, parse_hours, set_order
from ledger.plot import day_status
from ledger.reports import (
    BILLABLE_CAP_PERCENT,
    FLOOR_PERCENT,
    JudgedMonth,
    Tally,
    judge_month,
    render_sc32,
)
from ledger.units import format_hours, format_percent

router = APIRouter()
NAV = [NavItem("Facturation", "/facturation", (FACTURATION,))]
BILLING = Depends(require_role(FACTURATION))
STATUS_LABELS = {"under": f"sous {FLOOR_PERCENT} %", "band": "dans la bande",
                 "over": f"au-delà de {BILLABLE_CAP_PERCENT} %", "unordered": "sans commande"}
BAR_COLOURS = {"under": "#b3261e", "band": "#1e7d3c", "over": "#b35900", "unordered": "#6b6b6b"}
"""ledger/plot.py's statuses, darkened for 3:1 contrast on white."""
LINE_COLOURS = {"ordered": "#1a1a1a", "floor": "#1f5fa8", "cap": "#7a2f8c"}
EXPORT_TYPES = {"csv": "text/csv; charset=utf-8", "xml": "application/xml; charset=utf-8"}


@dataclass(frozen=True)
class DayLine:
    day: date
    tally: Tally
    order: Order | None

    @property
    def status(self) -> str:
        ordered = self.order.ordered_ms / 3_600_000 if self.order else None
        return day_status(self.tally.productive_ms / 3_600_000, ordered)

    @property
    def billable_ms(self) -> int:
        if self.order is None:
            return 0
        return min(self.tally.productive_ms, self.order.ordered_ms * BILLABLE_CAP_PERCENT // 100)

    @property
    def ratio(self) -> str:
        return format_percent(self.tally.productive_ms, self.order.ordered_ms) \
            if self.order else ""


def day_lines(judged: JudgedMonth) -> list[DayLine]:
    tallies = judged.day_tallies()
    return [DayLine(day, tallies.get(day, Tally()), judged.orders.get(day))
            for day in judged.month.days()]


def month_chart(month: Month, lines: list[DayLine]):
    marks = []
    for i, line in enumerate(lines):
        if line.order is not None:
            ordered = line.order.ordered_ms / 3_600_000
            marks += [svg.Mark(i, ordered, LINE_COLOURS["ordered"]),
                      svg.Mark(i, ordered * FLOOR_PERCENT / 100, LINE_COLOURS["floor"],
                               dashed=True),
                      svg.Mark(i, ordered * BILLABLE_CAP_PERCENT / 100, LINE_COLOURS["cap"],
                               dashed=True)]
    legend = [("commande", LINE_COLOURS["ordered"]),
              (f"{FLOOR_PERCENT} %", LINE_COLOURS["floor"]),
              (f"{BILLABLE_CAP_PERCENT} %", LINE_COLOURS["cap"]),
              ("dans la bande", BAR_COLOURS["band"]),
              (f"sous {FLOOR_PERCENT} %", BAR_COLOURS["under"]),
              (f"au-delà de {BILLABLE_CAP_PERCENT} %", BAR_COLOURS["over"]),
              ("sans commande", BAR_COLOURS["unordered"])]
    return svg.bar_chart(
        f"SC3.2 — heures productives par jour, {month.french_name()}",
        f"Barres : heures productives de chaque jour (rouge sous {FLOOR_PERCENT} % de la "
        f"commande, vert dans la bande, orange au-delà de {BILLABLE_CAP_PERCENT} %, gris sans "
        f"commande). Traits : heures commandées (plein), {FLOOR_PERCENT} % et "
        f"{BILLABLE_CAP_PERCENT} % de la commande (tirets).",
        [f"{line.day.day}" for line in lines],
        [line.tally.productive_ms / 3_600_000 for line in lines], "heures",
        colours=[BAR_COLOURS[line.status] for line in lines], marks=marks, legend=legend)


def _month(request: Request) -> Month:
    text = request.query_params.get("mois")
    if text:
        return Month.parse(text)
    return Month.of(datetime.now(request.app.state.ledger.calendar.tz).date())


def _closure(ledger, month: Month) -> ClosedMonth | None:
    """The month's closing (who, when, hash, billed extraction), or None while it is open."""
    with ledger.engine.connect() as conn:
        return read_closed(conn).get(str(month))


def _back(month: Month, **flags: str) -> RedirectResponse:
    query = "&".join(f"{k}={quote(v)}" for k, v in flags.items())
    return RedirectResponse(f"/facturation?mois={month}" + (f"&{query}" if query else ""),
                            status_code=303)


@router.get("/facturation")
async def month_page(request: Request, user=BILLING) -> Response:
    ledger = request.app.state.ledger
    try:
        month = _month(request)
    except VoicebotError as exc:
        return render(request, "core/error.html", status_code=400, title="Erreur",
                      message=str(exc), detail="")
    judged = await run_in_threadpool(judge_month, ledger, month)
    history = await run_in_threadpool(month_orders, ledger, month, history=True)
    closure = await run_in_threadpool(_closure, ledger, month)
    differs = closure is not None and closure.extraction != render_sc32(judged, "csv")
    lines = day_lines(judged)
    totals = Tally()
    for line in lines:
        totals.merge(line.tally)
    ordered_ms = sum(line.order.ordered_ms for line in lines if line.order)
    q = request.query_params
    return render(request, "billing/month.html", title=f"Facturation SC3.2 — {month}",
                  month=month, lines=lines, totals=totals, ordered_ms=ordered_ms,
                  billable_ms=sum(line.billable_ms for line in lines),
                  days_under=sum(1 for line in lines if line.status == "under"),
                  chart=month_chart(month, lines), history=history, closure=closure,
                  differs=differs, rule3=judged.rule3, hours=format_hours,
                  status_labels=STATUS_LABELS,
                  previous=month.minus(1), following=month.minus(-1),
                  saved=q.get("enregistre"), closed_now=q.get("cloture"),
                  error=q.get("erreur"), floor=FLOOR_PERCENT, cap=BILLABLE_CAP_PERCENT)


@router.get("/facturation/sc32.{fmt}")
async def export(request: Request, fmt: str, user=BILLING) -> Response:
    if fmt not in EXPORT_TYPES:
        return render(request, "core/error.html", status_code=404, title="Erreur",
                      message="Format d'export inconnu : csv ou xml.", detail="")
    try:
        month = _month(request)
    except VoicebotError as exc:
        return render(request, "core/error.html", status_code=400, title="Erreur",
                      message=str(exc), detail="")
    ledger = request.app.state.ledger
    judged = await run_in_threadpool(judge_month, ledger, month)
    text = render_sc32(judged, fmt)
    await run_in_threadpool(record, request, user, f"export_sc32_{fmt}",
                            f"extraction SC3.2 {month} ({fmt.upper()})")
    return Response(text, media_type=EXPORT_TYPES[fmt],
                    headers={"Content-Disposition": f'attachment; filename="sc32-{month}.{fmt}"',
                             "Cache-Control": "no-store"})


@router.post("/facturation/commandes")
async def order_entry(request: Request, user=BILLING) -> Response:
    form = await request.form()
    day_text = str(form.get("date", ""))
    hours_text = str(form.get("heures", ""))
    firm = form.get("ferme") in ("1", "on", "true")
    try:
        day = parse_day(day_text)
        month = Month.of(day)
        ordered_ms = parse_hours(hours_text)
        order = await run_in_threadpool(set_order, request.app.state.ledger, day, ordered_ms,
                                        firm)
    except VoicebotError as exc:
        await run_in_threadpool(record, request, user, "commande",
                                f"commande du {day_text} : {hours_text} h", "refuse")
        try:
            month = Month.of(parse_day(day_text))
        except VoicebotError:
            month = _month(request)
        return _back(month, erreur=str(exc))
    kind = "ferme" if order.firm else "indicative"
    await run_in_threadpool(record, request, user, "commande",
                            f"commande {kind} du {day} : {format_hours(order.ordered_ms)} h")
    return _back(month, enregistre=f"{day} : {format_hours(order.ordered_ms)} h ({kind})")


@router.post("/facturation/cloture")
async def close(request: Request, user=BILLING) -> Response:
    form = await request.form()
    try:
        month = Month.parse(str(form.get("mois", "")))
    except VoicebotError as exc:
        return render(request, "core/error.html", status_code=400, title="Erreur",
                      message=str(exc), detail="")
    if form.get("confirmer") not in ("1", "on", "true"):
        return _back(month, erreur="Cochez la case de confirmation pour clôturer le mois.")
    ledger = request.app.state.ledger
    today = datetime.now(ledger.calendar.tz).date()
    try:  # the function of ``voicebot report sc32 --month M --close``
        closed, new = await run_in_threadpool(close_month, ledger, month, user.name, today)
    except VoicebotError as exc:
        await run_in_threadpool(record, request, user, "cloture_mois", f"mois {month}",
                                "refuse")
        return _back(month, erreur=str(exc))
    await run_in_threadpool(record, request, user, "cloture_mois",
                            f"mois {month} (SHA-256 {closed.sha256})",
                            "ok" if new else "deja_clos")
    return _back(month, cloture=closed.sha256)
