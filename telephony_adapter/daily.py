"""Jobs a node runs once a day by itself (retention purge…), so that nothing the tender
requires depends on an operator's cron.

Each job runs when the node starts if it has not run yet that day, then every day at
``node.daily_jobs_at``. A job runs in a thread (they touch the database and the disk) and
returns a line for the log; a failing job is logged and retried the next day, it never
stops the node.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.errors import SettingsError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DailyJob:
    name: str
    run: Callable[[date], str]
    """Does the day's work for ``date`` (local) and says what it did, in French."""


def parse_time_of_day(text: str) -> time:
    try:
        hour, minute = (int(part) for part in text.split(":"))
        return time(hour, minute)
    except ValueError:
        raise SettingsError(f"node.daily_jobs_at : « {text} » n'est pas une heure HH:MM "
                            "(par exemple 03:30).") from None


class DailyJobs:
    def __init__(self, jobs: Sequence[DailyJob], at: time, timezone: ZoneInfo,
                 now: Callable[[], datetime] | None = None):
        self.jobs = list(jobs)
        self.at = at
        self.timezone = timezone
        self._now = now or (lambda: datetime.now(self.timezone))
        self.last_run: dict[str, date] = {}

    async def run_due(self) -> None:
        today = self._now().date()
        for job in self.jobs:
            if self.last_run.get(job.name) == today:
                continue
            self.last_run[job.name] = today
            try:
                line = await asyncio.to_thread(job.run, today)
            except Exception:  # any failure: logged, retried tomorrow, the node runs on
                log.exception("tâche quotidienne %s en échec", job.name)
                continue
            log.warning("tâche quotidienne %s : %s", job.name, line)

    def seconds_to_next(self) -> float:
        now = self._now()
        target = datetime.combine(now.date(), self.at, now.tzinfo)
        if target <= now:
            target += timedelta(days=1)
        return (target - now).total_seconds()

    async def forever(self) -> None:
        while True:
            await self.run_due()
            await asyncio.sleep(self.seconds_to_next())
