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
from ledger.months import Month, parse_day
from ledger.orders import Order, month_orders, parse_hours, set_order
from ledger.plot import COLOURS, day_status
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
            marks += [svg.Mark(i, ordered, "#1a1a1a"),
                      svg.Mark(i, ordered * FLOOR_PERCENT / 100, COLOURS["under"], dashed=True),
                      svg.Mark(i, ordered * BILLABLE_CAP_PERCENT / 100, "#8a4b00", dashed=True)]
    legend = [("heures commandées", "#1a1a1a"),
              (f"{FLOOR_PERCENT} % (tirets)", COLOURS["under"]),
              (f"{BILLABLE_CAP_PERCENT} % (tirets)", "#8a4b00"),
              ("dans la bande", "#1e7d3c")]
    colours = {"under": "#b3261e", "band": "#1e7d3c", "over": "#b35900", "unordered": "#6b6b6b"}
    return svg.bar_chart(
        f"SC3.2 — heures productives par jour, {month.french_name()}",
        "Barres : heures productives de chaque jour (rouge sous 95 % de la commande, vert dans "
        "la bande, orange au-delà de 110 %, gris sans commande). Traits : heures commandées, "
        "95 % et 110 % de la commande.",
        [f"{line.day.day}" for line in lines],
        [line.tally.productive_ms / 3_600_000 for line in lines], "heures",
        colours=[colours[line.status] for line in lines], marks=marks, legend=legend)


def _month(request: Request) -> Month:
    text = request.query_params.get("mois")
    if text:
        return Month.parse(text)
    return Month.of(datetime.now(request.app.state.ledger.calendar.tz).date())


def _closure(ledger, month: Month):
    """The month's closing (who, when, hash), or None while it is open."""
    import sqlalchemy as sa

    from ledger.schema import closed_months

    with ledger.engine.connect() as conn:
        return conn.execute(sa.select(closed_months.c.closed_at_ms, closed_months.c.closed_by,
                                      closed_months.c.sha256)
                            .where(closed_months.c.month == str(month))).first()


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
                  rule3=judged.rule3, hours=format_hours, status_labels=STATUS_LABELS,
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
    try:
        digest = await run_in_threadpool(close_month, request.app.state.ledger, month,
                                         user.name)
    except VoicebotError as exc:
        await run_in_threadpool(record, request, user, "cloture_mois", f"mois {month}",
                                "refuse")
        return _back(month, erreur=str(exc))
    await run_in_threadpool(record, request, user, "cloture_mois",
                            f"mois {month} (SHA-256 {digest})")
    return _back(month, cloture=digest)


def close_month(ledger, month: Month, closed_by: str) -> str:
    """Close the month as ``voicebot report sc32 --month M --close`` does; its hash."""
    try:
        from ledger.closing import close_month as close_in_ledger
    except ImportError:
        raise VoicebotError("La clôture des mois n'est pas encore disponible dans cette "
                            "version du registre.") from None
    return str(close_in_ledger(ledger, month, closed_by))
