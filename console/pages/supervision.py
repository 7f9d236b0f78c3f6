"""Supervisors' pages (role ``superviseur``): live calls, dashboards, conversation analysis.

- ``/supervision``: calls in progress on each node, their duration and motif, the engine's
  health (the nodes' ``/health``, refreshed in the page every few seconds);
- ``/supervision/tableau`` (+ ``.csv``): figures for any range of days by day, week or month
  and by motif, with charts; the CSV export is logged;
- ``/supervision/appels``: the calls of a range with their flags (long silence, repeated
  misunderstanding, frustration words, hang-up during an answer) and satisfaction;
- ``/supervision/appels/{call_id}``: one call, its transcript (a logged read) and recording;
- ``/supervision/recherche``: transcripts searched by words and motif (logged, results too);
- ``/supervision/echantillon`` (+ ``.csv``): the month's random sample for the Cnaf.

Pages list call ids, times, motifs and figures, never a caller's number or pseudonym.
"""

from __future__ import annotations

import csv
import io
from datetime import date, datetime

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from bot.errors import VoicebotError
from console.audit_log import record
from console.auth import require_role
from console.dashboard import (
    FLAG_LABELS,
    OUTCOME_LABELS,
    Dashboard,
    figure_fields,
    parse_range,
    quick_ranges,
)
from console.live import node_urls, read_nodes
from console.render import NavItem, render
from console.roles import SUPERVISEUR
from ledger import stats
from ledger.months import Month

router = APIRouter()
NAV = [NavItem("Supervision", "/supervision", (SUPERVISEUR,))]
SUPERVISOR = Depends(require_role(SUPERVISEUR))
CALLS_SHOWN = 500
"""Calls listed on one page at most (the CSV of the dashboard has every figure)."""
SAMPLE_DEFAULT = 30
SAMPLE_COLUMNS = ("call_id", "started_at", "motif", "outcome", "duration_seconds", "flags",
                  "satisfaction", "has_transcript", "has_recording")


def _ledger(request: Request):
    return request.app.state.ledger


def _today(request: Request) -> date:
    return datetime.now(_ledger(request).calendar.tz).date()


def _error(request: Request, message: str, status_code: int = 400) -> Response:
    return render(request, "core/error.html", status_code=status_code, title="Erreur",
                  message=message, detail="")


def _csv_response(rows, filename: str) -> Response:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"',
                             "Cache-Control": "no-store"})


# --- live -------------------------------------------------------------------------------------
@router.get("/supervision")
async def live_page(request: Request, user=SUPERVISOR) -> Response:
    nodes = await read_nodes(node_urls(request.app.state.settings))
    return render(request, "supervision/live.html", title="Supervision en direct",
                  nodes=nodes, section="direct")


@router.get("/supervision/direct")
async def live_fragment(request: Request, user=SUPERVISOR) -> Response:
    """The live table alone, for the page's periodic refresh."""
    nodes = await read_nodes(node_urls(request.app.state.settings))
    return render(request, "supervision/_live_nodes.html", nodes=nodes)


# --- dashboards -------------------------------------------------------------------------------
async def _dashboard(request: Request) -> Dashboard:
    q = request.query_params
    wanted = parse_range(q.get("du"), q.get("au"), q.get("par"), q.get("motif"),
                         _today(request))
    ledger = _ledger(request)
    calls = await run_in_threadpool(stats.read_calls, ledger, wanted.first, wanted.last,
                                    motif=wanted.motif)
    return Dashboard.build(calls, wanted, ledger.calendar.date_of)


@router.get("/supervision/tableau")
async def dashboard_page(request: Request, user=SUPERVISOR) -> Response:
    try:
        board = await _dashboard(request)
    except VoicebotError as exc:
        return _error(request, str(exc))
    return render(request, "supervision/dashboard.html", title="Tableaux de bord",
                  board=board, rows=board.csv_rows()[1:], quick=quick_ranges(_today(request)),
                  query=request.url.query, section="tableau", fields=figure_fields)


@router.get("/supervision/tableau.csv")
async def dashboard_csv(request: Request, user=SUPERVISOR) -> Response:
    try:
        board = await _dashboard(request)
    except VoicebotError as exc:
        return _error(request, str(exc))
    wanted = board.range
    await run_in_threadpool(record, request, user, "export_tableau_csv",
                            f"tableau de bord {wanted.first}..{wanted.last} par "
                            f"{wanted.granularity}" + (f", motif {wanted.motif}"
                                                       if wanted.motif else ""))
    return _csv_response(board.csv_rows(),
                         f"tableau-{wanted.first}-{wanted.last}-{wanted.granularity}.csv")


# --- calls and their flags --------------------------------------------------------------------
@router.get("/supervision/appels")
async def calls_page(request: Request, user=SUPERVISOR) -> Response:
    q = request.query_params
    try:
        wanted = parse_range(q.get("du"), q.get("au"), None, q.get("motif"), _today(request))
    except VoicebotError as exc:
        return _error(request, str(exc))
    flag = q.get("signal") or ""
    if flag and flag not in stats.FLAGS:
        return _error(request, f"Signal « {flag} » inconnu.")
    calls = await run_in_threadpool(stats.read_calls, _ledger(request), wanted.first,
                                    wanted.last, motif=wanted.motif)
    counts = {name: sum(1 for c in calls if name in c.flags) for name in stats.FLAGS}
    shown = [c for c in reversed(calls) if not flag or flag in c.flags]
    return render(request, "supervision/calls.html", title="Appels et signalements",
                  range=wanted, calls=shown[:CALLS_SHOWN], total=len(shown), counts=counts,
                  flag=flag, flag_labels=FLAG_LABELS, outcomes=OUTCOME_LABELS,
                  limit=CALLS_SHOWN, section="appels")


@router.get("/supervision/appels/{call_id:path}")
async def call_page(request: Request, call_id: str, user=SUPERVISOR) -> Response:
    ledger = _ledger(request)
    call = await run_in_threadpool(stats.read_call, ledger, call_id)
    if call is None:
        return _error(request, f"Aucun appel du bot n'a l'identifiant « {call_id} ».", 404)
    transcript = None
    if call.has_transcript:
        transcript = await run_in_threadpool(ledger.read_transcript, call_id, user.name)
        await run_in_threadpool(record, request, user, "lecture_transcription",
                                f"appel {call_id}",
                                "ok" if transcript is not None else "introuvable")
    return render(request, "supervision/call.html", title=f"Appel {call_id}", call=call,
                  transcript=transcript, flag_labels=FLAG_LABELS, outcomes=OUTCOME_LABELS,
                  section="appels")


# --- transcript search ------------------------------------------------------------------------
@router.get("/supervision/recherche")
async def search_page(request: Request, user=SUPERVISOR) -> Response:
    q = request.query_params
    words = (q.get("mots") or "").strip()
    searched = "mots" in q or "motif" in q
    result = None
    try:
        default_first = _today(request).replace(day=1).isoformat()
        wanted = parse_range(q.get("du") or default_first, q.get("au"), None, q.get("motif"),
                             _today(request))
    except VoicebotError as exc:
        return _error(request, str(exc))
    if searched:
        if not words and not wanted.motif:
            return _error(request, "Indiquez des mots à chercher ou un motif.")
        result = await run_in_threadpool(
            stats.search_transcripts, _ledger(request), wanted.first, wanted.last, words,
            user.name, motif=wanted.motif)
        described = (f"recherche « {words} »" + (f", motif {wanted.motif}" if wanted.motif
                                                  else "")
                     + f", {wanted.first}..{wanted.last} : {len(result.hits)} résultat(s)")
        await run_in_threadpool(record, request, user, "recherche_transcriptions", described)
    return render(request, "supervision/search.html", title="Recherche dans les transcriptions",
                  range=wanted, words=words, result=result,
                  needles=stats.normalise(words).split(), section="recherche")


# --- the monthly quality sample ---------------------------------------------------------------
async def _sample(request: Request) -> tuple[Month, int, list[stats.CallFacts]]:
    q = request.query_params
    today = _today(request)
    month = Month.parse(q["mois"]) if q.get("mois") else Month.of(today).minus(1)
    try:
        size = int(q.get("taille") or SAMPLE_DEFAULT)
    except ValueError:
        raise VoicebotError("Taille d'échantillon invalide : un nombre de 25 à 50.") from None
    if not stats.SAMPLE_MIN <= size <= stats.SAMPLE_MAX:
        raise VoicebotError(f"Taille d'échantillon {size} : de {stats.SAMPLE_MIN} à "
                            f"{stats.SAMPLE_MAX} appels.")
    calls = await run_in_threadpool(stats.read_calls, _ledger(request), month.first_day,
                                    month.last_day)
    return month, size, stats.quality_sample(calls, month, size)


@router.get("/supervision/echantillon")
async def sample_page(request: Request, user=SUPERVISOR) -> Response:
    try:
        month, size, chosen = await _sample(request)
    except VoicebotError as exc:
        return _error(request, str(exc))
    return render(request, "supervision/sample.html", title="Échantillon qualité",
                  month=month, size=size, calls=chosen, seed=stats.sample_seed(month),
                  flag_labels=FLAG_LABELS, outcomes=OUTCOME_LABELS, section="echantillon",
                  sample_min=stats.SAMPLE_MIN, sample_max=stats.SAMPLE_MAX)


@router.get("/supervision/echantillon.csv")
async def sample_csv(request: Request, user=SUPERVISOR) -> Response:
    try:
        month, size, chosen = await _sample(request)
    except VoicebotError as exc:
        return _error(request, str(exc))
    tz = _ledger(request).calendar.tz
    rows = [SAMPLE_COLUMNS] + [
        (c.call_id, datetime.fromtimestamp(c.started_at_ms / 1000, tz).isoformat(),
         c.motif, c.outcome or "", f"{c.duration_ms / 1000:.3f}", " ".join(c.flags),
         "" if c.satisfaction is None else str(c.satisfaction),
         "true" if c.has_transcript else "false", "true" if c.has_recording else "false")
        for c in chosen]
    await run_in_threadpool(record, request, user, "export_echantillon_csv",
                            f"échantillon qualité {month} ({len(chosen)} appels)")
    return _csv_response(rows, f"echantillon-{month}.csv")
