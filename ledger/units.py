"""Milliseconds to the seconds and hours printed in files, exactly (Decimal, half up)."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

MS_PER_HOUR = 3_600_000
_HOURS_QUANTUM = Decimal("0.0001")
_PERCENT_QUANTUM = Decimal("0.01")


def format_seconds(ms: int) -> str:
    """12345 ms -> ``12.345``: exact to the millisecond, always 3 decimals."""
    sign = "-" if ms < 0 else ""
    ms = abs(ms)
    return f"{sign}{ms // 1000}.{ms % 1000:03d}"


def hours(ms: int) -> Decimal:
    """Hours to 4 decimals, rounded half up (the tender's productive hours)."""
    return (Decimal(ms) / MS_PER_HOUR).quantize(_HOURS_QUANTUM, rounding=ROUND_HALF_UP)


def format_hours(ms: int) -> str:
    return f"{hours(ms):.4f}"


def format_percent(part_ms: int, whole_ms: int) -> str:
    """``part/whole`` in percent to 2 decimals; empty when there is no whole."""
    if whole_ms <= 0:
        return ""
    value = (Decimal(part_ms) * 100 / Decimal(whole_ms)).quantize(
        _PERCENT_QUANTUM, rounding=ROUND_HALF_UP)
    return f"{value:.2f}"
