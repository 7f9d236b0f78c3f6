"""Home, login and logout."""

from __future__ import annotations

import asyncio
import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from console import audit_log
from console.auth import current_user, require_role
from console.render import render
from console.security import SESSION_COOKIE, cookie_header
from console.users import LoginOutcome, User

router = APIRouter()

BAD_CREDENTIALS = "Identifiant ou mot de passe incorrect."


@router.get("/")
def home(request: Request, user: Annotated[User, Depends(require_role())]) -> Response:
    return render(request, "core/home.html", title="Accueil",
                  idle_minutes=request.app.state.settings.console.session_idle_minutes)


@router.get("/login")
def login_form(request: Request, suite: str = "", deconnecte: str = "") -> Response:
    if current_user(request) is not None:
        return RedirectResponse(_safe_next(suite), status_code=303)
    notice = ""
    if deconnecte:
        notice = "Vous êtes déconnecté."
    elif request.cookies.get(SESSION_COOKIE):
        notice = "Votre session a expiré : reconnectez-vous."
    return render(request, "core/login.html", title="Connexion", error="", notice=notice,
                  username="", next_path=_safe_next(suite))


@router.post("/login")
async def login(request: Request, username: str = Form(""), password: str = Form(""),
                suite: str = Form("")) -> Response:
    users = request.app.state.users
    result = await asyncio.to_thread(users.authenticate, username, password)
    name = username.strip()[:64]
    if result.outcome is LoginOutcome.OK:
        user = result.user
        source = request.client.host if request.client else "inconnue"
        token = await asyncio.to_thread(request.app.state.sessions.create, user.id, source)
        request.state.user = user
        request.state.csrf_seed_renewed = secrets.token_urlsafe(32)
        await asyncio.to_thread(audit_log.record, request, user, "connexion", name, "ok")
        response = RedirectResponse(_safe_next(suite), status_code=303)
        response.headers.append("set-cookie", cookie_header(SESSION_COOKIE, token).decode())
        return response
    await asyncio.to_thread(audit_log.record, request, name, "connexion", name,
                            result.outcome.value)
    if result.outcome is LoginOutcome.LOCKED:
        error, status = (f"Trop d'essais manqués : ce compte est bloqué pendant encore "
                         f"{result.locked_for_s} s, même avec le bon mot de passe."), 429
    elif result.outcome is LoginOutcome.DISABLED:
        error, status = ("Ce compte est désactivé : adressez-vous à l'administrateur de la "
                         "console."), 403
    else:
        error, status = BAD_CREDENTIALS, 401
    return render(request, "core/login.html", status_code=status, title="Connexion",
                  error=error, notice="", username=name, next_path=_safe_next(suite))


@router.post("/logout")
async def logout(request: Request) -> Response:
    token = request.cookies.get(SESSION_COOKIE, "")
    user = current_user(request)
    if token:
        await asyncio.to_thread(request.app.state.sessions.delete, token)
    if user is not None:
        await asyncio.to_thread(audit_log.record, request, user, "deconnexion", user.name)
    response = RedirectResponse("/login?deconnecte=1", status_code=303)
    response.headers.append("set-cookie", cookie_header(SESSION_COOKIE, "", 0).decode())
    return response


def _safe_next(target: str) -> str:
    """Only a path of this site (never ``//host`` or a full URL): no open redirect."""
    if target.startswith("/") and not target.startswith(("//", "/\\")) and "\n" not in target:
        return target
    return "/"
