"""Pages: Jinja2 templates in the base layout, with the navigation the user's role may open.

``render(request, "area/page.html", title=…, **context)``; a form gets its CSRF field with
``{{ csrf_field() }}``. Templates are autoescaped.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from console.audit_chain import PARIS
from console.roles import LABELS
from console.security import csrf_token

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"

environment = Environment(loader=FileSystemLoader(TEMPLATES_DIR),
                          autoescape=select_autoescape(("html", "xml", "svg")),
                          trim_blocks=True, lstrip_blocks=True)


@dataclass(frozen=True)
class NavItem:
    """One entry of the navigation: shown only to ``roles``."""

    label: str
    path: str
    roles: tuple[str, ...]


def _datetime_ms(value: int | None) -> str:
    if value is None:
        return "—"
    return datetime.fromtimestamp(value / 1000, PARIS).strftime("%d/%m/%Y %H:%M:%S")


environment.filters["datetime_ms"] = _datetime_ms
environment.globals["role_label"] = lambda role: LABELS.get(role, role)


def csrf_value(request: Request) -> str:
    seed = getattr(request.state, "csrf_seed_renewed", None) or request.state.csrf_seed
    return csrf_token(request.app.state.secret, seed)


def render(request: Request, template_name: str, status_code: int = 200,
           **context: object) -> HTMLResponse:
    user = getattr(request.state, "user", None)
    nav = [item for item in getattr(request.app.state, "nav", [])
           if user is not None and user.role in item.roles]
    token = csrf_value(request)
    template = environment.get_template(template_name)
    html = template.render(
        request=request, user=user, nav=nav, current_path=request.url.path,
        csrf_token=token,
        csrf_field=lambda: Markup('<input type="hidden" name="csrf_token" value="{}">')
        .format(token),
        **context)
    return HTMLResponse(html, status_code=status_code)
