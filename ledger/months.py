"""Calendar months as the reports and the orders name them (``2024-03``)."""

from __future__ import annotations

import calendar as _calendar
import re
from dataclasses import dataclass
from datetime import date

from bot.errors import VoicebotError
from ledger.rule import Calendar

_MONTH = re.compile(r"(\d{4})-(\d{2})\Z")
MONTH_NAMES_FR = ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août",
                  "septembre", "octobre", "novembre", "décembre")


@dataclass(frozen=True, order=True)
class Month:
    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> Month:
        match = _MONTH.match(text.strip())
        if match is None or not 1 <= int(match.group(2)) <= 12:
            raise VoicebotError(f"Mois « {text} » invalide : attendu AAAA-MM (ex. 2024-03).")
        return cls(int(match.group(1)), int(match.group(2)))

    @classmethod
    def of(cls, day: date) -> Month:
        return cls(day.year, day.month)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def first_day(self) -> date:
        return date(self.year, self.month, 1)

    @property
    def last_day(self) -> date:
        return date(self.year, self.month, _calendar.monthrange(self.year, self.month)[1])

    def days(self) -> list[date]:
        return [date(self.year, self.month, d)
                for d in range(1, self.last_day.day + 1)]

    def bounds_ms(self, calendar: Calendar) -> tuple[int, int]:
        """First and one-past-last epoch millisecond of the month in the calendar's zone."""
        return calendar.day_bounds_ms(self.first_day)[0], calendar.day_bounds_ms(self.last_day)[1]

    def french_name(self) -> str:
        return f"{MONTH_NAMES_FR[self.month - 1]} {self.year}"

    def minus(self, months: int) -> Month:
        index = self.year * 12 + self.month - 1 - months
        return Month(index // 12, index % 12 + 1)


def parse_day(text: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise VoicebotError(f"Date « {text} » invalide : attendu AAAA-MM-JJ (ex. 2024-03-15).") \
            from None
