"""The access log (``auditeur``, read-only): filter, verify the chain, export as CSV."""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from console import audit_log
from console.audit_log import CSV_COLUMNS, csv_text, day_bounds_ms
from console.auth import require_role
from console.render import NavItem, render
from console.roles import AUDITEUR
from console.users import User

router = APIRouter(prefix="/audit")
Auditor = Annotated[User, Depends(require_role(AUDITEUR))]
"""The logged-in user, refused unless auditeur."""
NAV = [NavItem("Journal des accès", "/audit", (AUDITEUR,))]
PAGE_ROWS = 500


def _day(text: str, label: str, errors: list[str]) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        errors.append(f"{label} : date attendue au format AAAA-MM-JJ (reçu « {text} »).")
        return None


@router.get("")
async def audit_page(request: Request, user: Auditor, du: str = "", au: str = "",
                     utilisateur: str = "",
                     action: str = "", texte: str = "") -> Response:
    audit = request.app.state.audit
    errors: list[str] = []
    start, end = _day(du, "Du", errors), _day(au, "Au", errors)
    start_ms = day_bounds_ms(start, start)[0] if start else None
    end_ms = day_bounds_ms(end, end)[1] if end else None
    entries = await asyncio.to_thread(
        audit.entries, start_ms, end_ms, utilisateur.strip(), action.strip(), texte.strip(),
        PAGE_ROWS + 1, True)
    await asyncio.to_thread(audit_log.record, request, user, "consultation_journal",
                            _describe(du, au, utilisateur, action, texte))
    return render(request, "audit/log.html", title="Journal des accès",
                  entries=entries[:PAGE_ROWS], truncated=len(entries) > PAGE_ROWS,
                  errors=errors, actions=await asyncio.to_thread(audit.actions),
                  filters={"du": du, "au": au, "utilisateur": utilisateur, "action": action,
                           "texte": texte}, page_rows=PAGE_ROWS, verdict=None)


@router.get("/verification")
async def verify_page(request: Request, user: Auditor) -> Response:
    audit = request.app.state.audit
    verdict = await asyncio.to_thread(audit.verify)
    await asyncio.to_thread(audit_log.record, request, user, "verification_journal",
                            "chaîne complète", "ok" if verdict.ok else "alteration")
    return render(request, "audit/verify.html", title="Vérification du journal",
                  verdict=verdict)


@router.get("/export.csv")
async def export_csv(request: Request, user: Auditor, du: str = "", au: str = "") -> Response:
    errors: list[str] = []
    start, end = _day(du, "Du", errors), _day(au, "Au", errors)
    if errors or start is None or end is None:
        return render(request, "core/error.html", status_code=400, title="Export",
                      message=" ".join(errors) or "Indiquez les dates du et au (AAAA-MM-JJ).",
                      detail="")
    text = await asyncio.to_thread(csv_text, request.app.state.audit, start, end)
    await asyncio.to_thread(audit_log.record, request, user, "export_journal",
                            f"du {start} au {end} : {text.count(chr(10)) - 1} entrée(s)")
    return Response(text, media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="journal-acces-{start}-{end}.csv"'})


def _describe(*values: str) -> str:
    labels = ("du", "au", "utilisateur", "action", "texte")
    parts = [f"{label}={value}" for label, value in zip(labels, values, strict=True) if value]
    return "filtres : " + (", ".join(parts) if parts else "aucun")


__all__ = ["CSV_COLUMNS", "router"]
