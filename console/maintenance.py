"""The access log's daily job (anchor, purge) and the sweep of expired sessions.

Runs inside ``voicebot serve`` (telephony_adapter/node.py) and in the console process, so it
never depends on an operator's cron; both may run it, the job is idempotent per day (the
anchor is written once a day, the purge only finds entries past retention).
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy.exc import SQLAlchemyError

from console.audit_chain import PARIS

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from bot.settings import Settings

log = logging.getLogger(__name__)

CHECK_EVERY_S = 3600.0
"""How often the job wakes up (it acts once a day); also its retry delay after an error."""


def daily_job(settings: Settings, engine: Engine, now: datetime | None = None) -> None:
    from console.audit_log import AuditLog
    from console.sessions import SessionStore
    from console.users import UserStore

    AuditLog.from_settings(settings, engine).daily(now)
    SessionStore(engine, settings.console).purge_expired()
    UserStore(engine, settings.console).forget_old_failures(
        int(time.time() * 1000) - 86_400_000)


async def run_daily(settings: Settings, engine: Engine) -> None:
    """Forever: the job now, then at each wake-up (a timer, not a synchronisation)."""
    while True:
        try:
            await asyncio.to_thread(daily_job, settings, engine)
        except (SQLAlchemyError, OSError) as exc:
            log.error("access log daily job failed (%s: %s); retried in %.0f s",
                      type(exc).__name__, exc, CHECK_EVERY_S)
        now = datetime.now(PARIS)
        midnight = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), PARIS)
        await asyncio.sleep(min(CHECK_EVERY_S, (midnight - now).total_seconds() + 60))
