"""Console users in the ledger database: creation, listing, disabling, password reset, login.

Login throttling is per typed name, known or not, and counts failures in a row: after
``lockout_failures`` of them the name is refused for ``lockout_seconds``, right password or
not. Failures keep counting after the wait, so each later failure locks the name again;
a success resets the count.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from enum import Enum

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from bot.errors import VoicebotError
from console import passwords
from console.options import ConsoleOptions
from console.roles import ROLES
from ledger.schema import console_login_failures as failures_t
from ledger.schema import console_sessions as sessions_t
from ledger.schema import console_users as users_t

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,63}$")


@dataclass(frozen=True)
class User:
    id: int
    name: str
    role: str
    active: bool = True
    created_at_ms: int = 0
    last_login_at_ms: int | None = None


class UserError(VoicebotError):
    """A user command that cannot be done (unknown user, name taken, bad role…)."""


class LoginOutcome(str, Enum):
    OK = "ok"
    BAD_CREDENTIALS = "echec"
    LOCKED = "verrouille"
    DISABLED = "desactive"


@dataclass(frozen=True)
class LoginResult:
    outcome: LoginOutcome
    user: User | None = None
    locked_for_s: int = 0


def _now_ms() -> int:
    return int(time.time() * 1000)


class UserStore:
    def __init__(self, engine: Engine, options: ConsoleOptions):
        self.engine = engine
        self.options = options

    # --- administration -----------------------------------------------------------------------
    def add(self, name: str, role: str, password: str) -> User:
        check_name(name)
        check_role(role)
        passwords.check_password(password, name)
        now = _now_ms()
        try:
            with self.engine.begin() as conn:
                conn.execute(users_t.insert().values(
                    name=name, role=role, password_hash=passwords.hash_password(password),
                    active=True, created_at_ms=now, password_changed_at_ms=now))
        except IntegrityError:
            raise UserError(f"L'utilisateur « {name} » existe déjà.") from None
        return self.get(name)  # type: ignore[return-value]

    def get(self, name: str) -> User | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(users_t).where(users_t.c.name == name)).first()
        return _user(row) if row else None

    def get_by_id(self, user_id: int) -> User | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(users_t).where(users_t.c.id == user_id)).first()
        return _user(row) if row else None

    def list(self) -> list[User]:
        with self.engine.connect() as conn:
            return [_user(r) for r in conn.execute(sa.select(users_t).order_by(users_t.c.name))]

    def disable(self, name: str) -> User:
        user = self._existing(name)
        with self.engine.begin() as conn:
            conn.execute(users_t.update().where(users_t.c.id == user.id).values(active=False))
            conn.execute(sessions_t.delete().where(sessions_t.c.user_id == user.id))
        return self.get(name)  # type: ignore[return-value]

    def reset(self, name: str, password: str) -> User:
        """New password; the account is active again, unlocked, and its sessions closed."""
        user = self._existing(name)
        passwords.check_password(password, name)
        with self.engine.begin() as conn:
            conn.execute(users_t.update().where(users_t.c.id == user.id).values(
                password_hash=passwords.hash_password(password), active=True,
                password_changed_at_ms=_now_ms()))
            conn.execute(sessions_t.delete().where(sessions_t.c.user_id == user.id))
            conn.execute(failures_t.delete().where(failures_t.c.name == name))
        return self.get(name)  # type: ignore[return-value]

    def _existing(self, name: str) -> User:
        user = self.get(name)
        if user is None:
            raise UserError(f"Utilisateur inconnu : « {name} ». "
                            "Voir « voicebot users list ».")
        return user

    # --- login --------------------------------------------------------------------------------
    def authenticate(self, name: str, password: str) -> LoginResult:
        name = name.strip()[:64]
        now = _now_ms()
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(users_t).where(users_t.c.name == name)).first()
            failure = conn.execute(sa.select(failures_t)
                                   .where(failures_t.c.name == name)).first()
        # Always hash, so that a locked, unknown or disabled name answers as slowly as others.
        matches = passwords.verify_password(row.password_hash if row else None, password)
        if failure is not None and failure.locked_until_ms > now:
            locked = failure.locked_until_ms - now
            return LoginResult(LoginOutcome.LOCKED, locked_for_s=max(1, -(-locked // 1000)))
        if row is None or not matches:
            locked_until = self._fail(name, now)
            if locked_until > now:
                return LoginResult(LoginOutcome.LOCKED,
                                   locked_for_s=max(1, -(-(locked_until - now) // 1000)))
            return LoginResult(LoginOutcome.BAD_CREDENTIALS)
        if not row.active:
            return LoginResult(LoginOutcome.DISABLED, _user(row))
        with self.engine.begin() as conn:
            conn.execute(failures_t.delete().where(failures_t.c.name == name))
            values: dict = {"last_login_at_ms": now}
            if passwords.needs_rehash(row.password_hash):
                values["password_hash"] = passwords.hash_password(password)
            conn.execute(users_t.update().where(users_t.c.id == row.id).values(**values))
        return LoginResult(LoginOutcome.OK, _user(row))

    def _fail(self, name: str, now: int) -> int:
        """Count one failure; returns until when the name is locked (0 when it is not)."""
        limit, lock_ms = self.options.lockout_failures, self.options.lockout_seconds * 1000
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(failures_t).where(failures_t.c.name == name)).first()
            failures = (row.failures if row else 0) + 1
            locked_until = now + lock_ms if failures >= limit else 0
            values = {"failures": failures, "last_failure_ms": now,
                      "locked_until_ms": locked_until}
            if row is None:
                conn.execute(failures_t.insert().values(name=name, **values))
            else:
                conn.execute(failures_t.update().where(failures_t.c.name == name)
                             .values(**values))
        return locked_until

    def forget_old_failures(self, older_than_ms: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(failures_t.delete().where(
                failures_t.c.last_failure_ms < older_than_ms,
                failures_t.c.locked_until_ms < _now_ms()))


def check_name(name: str) -> None:
    if not NAME_PATTERN.match(name):
        raise UserError(f"Nom d'utilisateur invalide : « {name} » (2 à 64 caractères : lettres "
                        "sans accent, chiffres, point, tiret, souligné ; commence par une "
                        "lettre ou un chiffre).")


def check_role(role: str) -> None:
    if role not in ROLES:
        raise UserError(f"Rôle inconnu : « {role} ». Rôles possibles : {', '.join(ROLES)}.")


def _user(row) -> User:  # noqa: ANN001
    return User(id=row.id, name=row.name, role=row.role, active=bool(row.active),
                created_at_ms=row.created_at_ms, last_login_at_ms=row.last_login_at_ms)
