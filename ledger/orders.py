"""Orders of productive hours per Paris day: firm (at D-10) or indicative (at D-40).

Append-only: setting a day again adds a row, the latest row is the order, earlier rows stay
as the audit trail. A firm order is only replaced by another firm order (an amendment);
an indicative figure cannot silently overwrite it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from bot.errors import VoicebotError
from ledger import store
from ledger.months import Month
from ledger.schema import orders
from ledger.units import MS_PER_HOUR

if TYPE_CHECKING:
    from ledger.api import Ledger

_HOURS = re.compile(r"(\d+)(?:\.(\d{1,4}))?\Z")


@dataclass(frozen=True)
class Order:
    day: date
    ordered_ms: int
    """Ordered productive time of the day."""
    firm: bool
    recorded_at_ms: int


def parse_hours(text: str) -> int:
    """Ordered hours (``12.5``, up to 4 decimals) to milliseconds, exactly."""
    match = _HOURS.match(text.strip())
    if match is None:
        hint = " : utilisez le point comme séparateur décimal" if "," in text else ""
        raise VoicebotError(f"Nombre d'heures « {text} » invalide{hint} "
                            "(nombre positif, au plus 4 décimales, ex. 12.5).")
    whole, decimals = match.group(1), match.group(2) or ""
    # 1 h = 3 600 000 ms, so 4 decimals of an hour are a whole 360 ms: exact.
    return int(whole) * MS_PER_HOUR + int(decimals.ljust(4, "0")) * (MS_PER_HOUR // 10_000)


def set_order(ledger: Ledger, day: date, ordered_ms: int, firm: bool) -> Order:
    try:
        ledger.ensure_schema()
        with ledger.engine.begin() as conn:
            current = latest_orders(conn, day, day).get(day)
            if current is not None and current.firm and not firm:
                raise VoicebotError(
                    f"Une commande ferme existe déjà pour le {day.isoformat()} "
                    f"({current.ordered_ms / MS_PER_HOUR:g} h) : une commande indicative ne la "
                    "remplace pas. Ajoutez --firm pour la modifier.")
            order = Order(day, ordered_ms, firm, store.now_ms())
            conn.execute(orders.insert().values(
                day=day.isoformat(), ordered_ms=ordered_ms, firm=firm,
                recorded_at_ms=order.recorded_at_ms))
    except SQLAlchemyError as exc:
        raise ledger.unavailable(exc) from None
    return order


def latest_orders(conn: Connection, first: date, last: date) -> dict[date, Order]:
    """The order in force for each day of [first, last] that has one."""
    found: dict[date, Order] = {}
    for order in order_history(conn, first, last):
        found[order.day] = order  # history is in recording order: the last one wins
    return found


def order_history(conn: Connection, first: date, last: date) -> list[Order]:
    query = (
        sa.select(orders.c.day, orders.c.ordered_ms, orders.c.firm, orders.c.recorded_at_ms)
        .where(orders.c.day >= first.isoformat(), orders.c.day <= last.isoformat())
        .order_by(orders.c.day, orders.c.id)
    )
    return [Order(date.fromisoformat(r.day), int(r.ordered_ms), bool(r.firm),
                  int(r.recorded_at_ms)) for r in conn.execute(query)]


def month_orders(ledger: Ledger, month: Month, *, history: bool = False) -> list[Order]:
    try:
        ledger.ensure_schema()
        with ledger.engine.connect() as conn:
            if history:
                return order_history(conn, month.first_day, month.last_day)
            return list(latest_orders(conn, month.first_day, month.last_day).values())
    except SQLAlchemyError as exc:
        raise ledger.unavailable(exc) from None
