"""Billing pages (role ``facturation``): the SC3.2 month, orders, exports, closing."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
