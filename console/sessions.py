"""Server-side sessions: the cookie carries a random token, the database its SHA-256.

A session ends on logout, after ``session_idle_minutes`` without a request, after
``session_max_hours`` in any case, and when its user is disabled or gets a new password.
"""

from __future__ import annotations

import hashlib
import secrets
import time

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from console.options import ConsoleOptions
from ledger.schema import console_sessions as sessions_t

TOUCH_EVERY_MS = 15_000
"""``last_seen_ms`` is written at most this often per session (not on every request)."""


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


class SessionStore:
    def __init__(self, engine: Engine, options: ConsoleOptions):
        self.engine = engine
        self.idle_ms = options.session_idle_minutes * 60_000
        self.max_ms = options.session_max_hours * 3_600_000

    def create(self, user_id: int, source: str) -> str:
        token = secrets.token_urlsafe(32)
        now = int(time.time() * 1000)
        with self.engine.begin() as conn:
            conn.execute(sessions_t.insert().values(token_hash=token_hash(token),
                                                    user_id=user_id, created_at_ms=now,
                                                    last_seen_ms=now, source=source[:64]))
        return token

    def user_id(self, token: str) -> int | None:
        """The session's user, or None when unknown or expired (then it is deleted)."""
        if not token or len(token) > 128:
            return None
        key = token_hash(token)
        now = int(time.time() * 1000)
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(sessions_t).where(sessions_t.c.token_hash == key)).first()
        if row is None:
            return None
        if now - row.last_seen_ms > self.idle_ms or now - row.created_at_ms > self.max_ms:
            self.delete(token)
            return None
        if now - row.last_seen_ms > TOUCH_EVERY_MS:
            with self.engine.begin() as conn:
                conn.execute(sessions_t.update().where(sessions_t.c.token_hash == key)
                             .values(last_seen_ms=now))
        return int(row.user_id)

    def delete(self, token: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(sessions_t.delete().where(sessions_t.c.token_hash == token_hash(token)))

    def purge_expired(self) -> int:
        now = int(time.time() * 1000)
        with self.engine.begin() as conn:
            return conn.execute(sessions_t.delete().where(sa.or_(
                sessions_t.c.last_seen_ms < now - self.idle_ms,
                sessions_t.c.created_at_ms < now - self.max_ms))).rowcount
