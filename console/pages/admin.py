"""Users (``admin``): create, disable, reset a password. Each action is in the access log."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response

from bot.errors import VoicebotError
from console import audit_log
from console.auth import require_role
from console.render import NavItem, render
from console.roles import ADMIN, LABELS, ROLES
from console.users import User

router = APIRouter(prefix="/admin")
Admin = Annotated[User, Depends(require_role(ADMIN))]
"""The logged-in user, refused unless admin."""
NAV = [NavItem("Utilisateurs", "/admin", (ADMIN,))]


def _page(request: Request, status_code: int = 200, message: str = "", error: str = "",
          form: dict | None = None) -> Response:
    users = request.app.state.users.list()
    return render(request, "admin/users.html", status_code=status_code, title="Utilisateurs",
                  users=users, roles=ROLES, labels=LABELS, message=message, error=error,
                  form=form or {})


@router.get("")
def users_page(request: Request, user: Admin) -> Response:
    return _page(request)


@router.post("/utilisateurs")
async def add_user(request: Request, user: Admin, name: str = Form(""),
                   role: str = Form(""),
                   password: str = Form("")) -> Response:
    try:
        await asyncio.to_thread(request.app.state.users.add, name.strip(), role, password)
    except VoicebotError as exc:
        await asyncio.to_thread(audit_log.record, request, user, "utilisateur_ajout",
                                f"{name.strip()} ({role})", "refuse")
        return _page(request, 400, error=str(exc), form={"name": name, "role": role})
    await asyncio.to_thread(audit_log.record, request, user, "utilisateur_ajout",
                            f"{name.strip()} ({role})")
    return _page(request, message=f"Utilisateur « {name.strip()} » créé ({role}).")


@router.post("/utilisateurs/{name}/desactiver")
async def disable_user(request: Request, user: Admin, name: str) -> Response:
    if name == user.name:
        return _page(request, 400, error="Vous ne pouvez pas désactiver votre propre compte.")
    try:
        await asyncio.to_thread(request.app.state.users.disable, name)
    except VoicebotError as exc:
        return _page(request, 404, error=str(exc))
    await asyncio.to_thread(audit_log.record, request, user, "utilisateur_desactivation", name)
    return _page(request, message=f"Compte « {name} » désactivé ; ses sessions sont fermées.")


@router.post("/utilisateurs/{name}/mot-de-passe")
async def reset_user(request: Request, user: Admin, name: str,
                     password: str = Form("")) -> Response:
    try:
        await asyncio.to_thread(request.app.state.users.reset, name, password)
    except VoicebotError as exc:
        await asyncio.to_thread(audit_log.record, request, user, "utilisateur_mot_de_passe",
                                name, "refuse")
        return _page(request, 400, error=str(exc))
    await asyncio.to_thread(audit_log.record, request, user, "utilisateur_mot_de_passe", name)
    return _page(request, message=f"Nouveau mot de passe enregistré pour « {name} » ; compte "
                                  "réactivé et débloqué.")
