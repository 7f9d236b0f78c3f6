"""Headers every console response carries, and the CSRF seed cookie (pure ASGI middleware).

CSRF: each browser gets a random ``__Host-allo_csrf`` cookie (Secure, HttpOnly, SameSite
Strict); forms carry ``csrf_token`` = HMAC-SHA256(server key, cookie). Every unsafe request
must carry it (form field or ``X-CSRF-Token`` header): a page on another site can neither
read the cookie nor compute the token. The cookie is renewed at each login.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from http.cookies import SimpleCookie

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSRF_COOKIE = "__Host-allo_csrf"
SESSION_COOKIE = "__Host-allo_session"

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "media-src 'self'; font-src 'self'; connect-src 'self'; object-src 'none'; "
       "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
HEADERS = {
    "content-security-policy": CSP,
    "strict-transport-security": "max-age=31536000; includeSubDomains",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "permissions-policy": "camera=(), microphone=(), geolocation=(), payment=()",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
}


def cookie_header(name: str, value: str, max_age: int | None = None) -> bytes:
    parts = [f"{name}={value}", "Path=/", "Secure", "HttpOnly", "SameSite=Strict"]
    if max_age is not None:
        parts.append(f"Max-Age={max_age}")
    return "; ".join(parts).encode("latin-1")


def read_cookies(scope: Scope) -> dict[str, str]:
    cookies: dict[str, str] = {}
    for key, value in scope.get("headers", []):
        if key == b"cookie":
            jar = SimpleCookie()
            try:
                jar.load(value.decode("latin-1"))
            except Exception:  # noqa: BLE001 - a malformed cookie header is just ignored
                continue
            cookies.update({k: m.value for k, m in jar.items()})
    return cookies


def csrf_token(key: bytes, seed: str) -> str:
    return hmac.new(key, f"csrf:{seed}".encode(), hashlib.sha256).hexdigest()


def csrf_valid(key: bytes, seed: str, token: str) -> bool:
    return bool(seed and token) and hmac.compare_digest(csrf_token(key, seed), token)


class SecurityMiddleware:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        seed = read_cookies(scope).get(CSRF_COOKIE, "")
        new_seed = ""
        if not (16 <= len(seed) <= 128):
            seed = new_seed = secrets.token_urlsafe(32)
        scope.setdefault("state", {})["csrf_seed"] = seed
        static = scope.get("path", "").startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                for name, value in HEADERS.items():
                    if name.encode() not in present:
                        headers.append((name.encode(), value.encode()))
                if b"cache-control" not in present:
                    headers.append((b"cache-control",
                                    b"max-age=3600" if static else b"no-store"))
                state = scope.get("state", {})
                renewed = state.get("csrf_seed_renewed")
                if renewed or new_seed:
                    headers.append((b"set-cookie", cookie_header(CSRF_COOKIE,
                                                                 renewed or new_seed)))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
