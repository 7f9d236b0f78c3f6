"""The console application: ``create_app(settings)`` builds the FastAPI app that
``voicebot console`` serves over HTTPS.

Each page module in ``PAGE_MODULES`` exposes ``router`` (a ``fastapi.APIRouter``) and may
expose ``NAV`` (``render.NavItem``s, shown to the roles they name). Core sets
``app.state.settings``, ``.ledger`` (users, audit log and everything else live in the ledger
database), ``.audit`` (console/audit_log.py), ``.users``, ``.sessions`` and ``.secret``
(the CSRF key). Every POST is checked for its CSRF token before any page code runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
from collections.abc import AsyncIterator
from http import HTTPStatus
from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from console import audit_log
from console.audit_log import AuditLog
from console.auth import CsrfRejected, Forbidden, LoginRequired, csrf_protect
from console.render import NavItem, render
from console.security import SecurityMiddleware
from console.sessions import SessionStore
from console.users import UserStore

if TYPE_CHECKING:
    from bot.settings import Settings
    from ledger.api import Ledger

log = logging.getLogger(__name__)

PAGE_MODULES = (
    "console.pages.home",
    "console.pages.admin",
    "console.pages.audit",
    "console.pages.editor",
    "console.pages.supervision",
    "console.pages.billing",
    "console.pages.recordings",
)
STATIC_DIR = Path(__file__).resolve().parent / "static"

_HTTP_MESSAGES = {
    400: "Requête invalide.",
    404: "Page introuvable.",
    405: "Méthode non autorisée pour cette adresse.",
    413: "Envoi trop volumineux.",
    422: "Données du formulaire invalides.",
}


def create_app(settings: Settings, ledger: Ledger | None = None, *,
               maintenance: bool = False) -> FastAPI:
    """The console. ``ledger``: an open ledger to use (tests); otherwise one is opened on the
    configured database and closed with the app. ``maintenance``: run the access log's daily
    anchor and purge in the background (the served console does; tests call it directly)."""
    from ledger.api import Ledger
    from ledger.crypto import load_or_create_key_file

    owns_ledger = ledger is None
    if ledger is None:
        ledger = Ledger.open(settings, require_database=True, replay_spool=False)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        task = None
        if maintenance:
            from console.maintenance import run_daily

            task = asyncio.create_task(run_daily(settings, ledger.engine), name="audit daily")
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if owns_ledger:
                ledger.close()

    app = FastAPI(title="allo-caf console", docs_url=None, redoc_url=None, openapi_url=None,
                  dependencies=[Depends(csrf_protect)], lifespan=lifespan)
    app.state.settings = settings
    app.state.ledger = ledger
    app.state.audit = AuditLog.from_settings(settings, ledger.engine)
    app.state.users = UserStore(ledger.engine, settings.console)
    app.state.sessions = SessionStore(ledger.engine, settings.console)
    app.state.secret = load_or_create_key_file(
        settings.paths.state_dir / "secrets" / "console.key")
    app.state.nav = []
    app.add_middleware(SecurityMiddleware)
    if STATIC_DIR.is_dir():
        app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    for name in PAGE_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            log.warning("console page module %s missing: its pages are not served", name)
            continue
        app.include_router(module.router)
        app.state.nav.extend(NavItem(*item) if isinstance(item, tuple) else item
                             for item in getattr(module, "NAV", ()))
    _add_handlers(app)
    return app


def _add_handlers(app: FastAPI) -> None:
    @app.exception_handler(LoginRequired)
    async def _login(request: Request, _exc: LoginRequired) -> Response:
        if request.headers.get("hx-request"):
            return Response(status_code=401, headers={"HX-Redirect": "/login"})
        target = request.url.path
        if request.url.query:
            target += "?" + request.url.query
        if request.method != "GET" or target == "/":
            return RedirectResponse("/login", status_code=303)
        from urllib.parse import quote

        return RedirectResponse(f"/login?suite={quote(target, safe='')}", status_code=303)

    @app.exception_handler(Forbidden)
    async def _forbidden(request: Request, exc: Forbidden) -> HTMLResponse:
        await asyncio.to_thread(audit_log.record, request, exc.user, "acces_refuse",
                                f"{request.method} {request.url.path}", "refuse")
        return render(request, "core/error.html", status_code=403, title="Accès refusé",
                      message="Votre rôle ne donne pas accès à cette page.",
                      detail=f"Rôle(s) autorisé(s) : {', '.join(exc.roles)}.")

    @app.exception_handler(CsrfRejected)
    async def _csrf(request: Request, _exc: CsrfRejected) -> HTMLResponse:
        return render(request, "core/error.html", status_code=403, title="Formulaire refusé",
                      message="Le formulaire a expiré ou ne vient pas de la console.",
                      detail="Rechargez la page puis recommencez.")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        default = HTTPStatus(exc.status_code).phrase if exc.status_code in \
            HTTPStatus._value2member_map_ else ""
        custom = isinstance(exc.detail, str) and exc.detail != default
        message = exc.detail if custom else _HTTP_MESSAGES.get(exc.status_code, "Erreur.")
        response = render(request, "core/error.html", status_code=exc.status_code,
                          title="Erreur", message=message, detail="")
        for name, value in (getattr(exc, "headers", None) or {}).items():
            response.headers[name] = value
        return response

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, _exc: RequestValidationError) -> HTMLResponse:
        return render(request, "core/error.html", status_code=422, title="Erreur",
                      message=_HTTP_MESSAGES[422], detail="")
