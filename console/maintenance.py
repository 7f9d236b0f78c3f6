"""The access log's daily job (purge past retention, then anchor) and the sweep of expired
sessions and old login failures.

Runs inside ``voicebot serve`` (one of the node's daily jobs, telephony_adapter/node.py) and
in the console process, so it never depends on an operator's cron. Running it twice a day is
harmless: the anchor is written once a day, the purge only finds entries past retention.
"""

from __future__ import annotations

import time
from datetime import date, datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from console.audit_chain import PARIS

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from bot.settings import Settings


def daily_job(settings: Settings, engine: Engine, today: date | None = None) -> str:
    """Purge, anchor, sweep; returns a French line for the log."""
    from console.audit_log import AuditLog
    from console.sessions import SessionStore
    from console.users import UserStore

    audit = AuditLog.from_settings(settings, engine)
    purged = audit.purge(today)
    anchor = audit.anchor()
    SessionStore(engine, settings.console).purge_expired()
    UserStore(engine, settings.console).forget_old_failures(
        int(time.time() * 1000) - 86_400_000)
    anchored = (f"ancre n° {anchor.seq} {anchor.hash[:16]}…" if anchor
                else "ancre du jour déjà écrite ou rien de nouveau")
    return f"{purged} entrée(s) purgée(s), {anchored}"


async def run_daily(settings: Settings, engine: Engine) -> None:
    """The console's own copy of the job, on the node's schedule (``node.daily_jobs_at``)."""
    from telephony_adapter.daily import DailyJob, DailyJobs, parse_time_of_day

    jobs = DailyJobs([DailyJob("journal des accès",
                               lambda today: daily_job(settings, engine, today))],
                     parse_time_of_day(settings.node.daily_jobs_at), ZoneInfo("Europe/Paris"),
                     now=lambda: datetime.now(PARIS))
    await jobs.forever()
