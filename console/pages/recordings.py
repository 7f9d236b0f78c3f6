"""Call recordings played in the page (role ``superviseur``): streamed, never offered for download."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
