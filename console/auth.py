"""Who is asking: the session cookie's user, and the role check every page and action uses.

``Depends(require_role(SUPERVISEUR))`` returns the logged-in ``User``; without a valid
session the browser is sent to /login, with another role it gets a French 403 page (and
the refusal is written to the access log). The check runs on the server for every request.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Request

from console.security import SESSION_COOKIE, csrf_valid
from console.users import User

UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


class LoginRequired(Exception):  # noqa: N818 - control flow, turned into a redirect
    """No valid session: the handler redirects to /login."""


class Forbidden(Exception):  # noqa: N818 - control flow, turned into a 403 page
    def __init__(self, user: User, roles: tuple[str, ...]):
        self.user = user
        self.roles = roles


class CsrfRejected(Exception):  # noqa: N818 - control flow, turned into a 403 page
    """An unsafe request without the form's token (forged, or a form from an old page)."""


def current_user(request: Request) -> User | None:
    """The session's user (cached on the request), or None."""
    if hasattr(request.state, "user"):
        return request.state.user
    user = None
    token = request.cookies.get(SESSION_COOKIE, "")
    if token:
        user_id = request.app.state.sessions.user_id(token)
        if user_id is not None:
            found = request.app.state.users.get_by_id(user_id)
            if found is not None and found.active:
                user = found
    request.state.user = user
    return user


def require_role(*roles: str) -> Callable[[Request], User]:
    """A dependency allowing the given roles (any logged-in user when none is given)."""

    def dependency(request: Request) -> User:
        user = current_user(request)
        if user is None:
            raise LoginRequired()
        if roles and user.role not in roles:
            raise Forbidden(user, roles)
        return user

    dependency.__name__ = f"require_role_{'_'.join(roles) or 'any'}"
    return dependency


async def csrf_protect(request: Request) -> None:
    """App-wide dependency: every unsafe request carries the CSRF token of this browser."""
    if request.method not in UNSAFE_METHODS:
        return
    token = request.headers.get("x-csrf-token", "")
    if not token:
        content_type = request.headers.get("content-type", "")
        if content_type.startswith(("application/x-www-form-urlencoded",
                                    "multipart/form-data")):
            form = await request.form()
            token = str(form.get("csrf_token", ""))
    if not csrf_valid(request.app.state.secret, request.state.csrf_seed, token):
        raise CsrfRejected()
