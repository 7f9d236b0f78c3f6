"""Supervisors' pages (role ``superviseur``): live calls, dashboards, conversation analysis."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
