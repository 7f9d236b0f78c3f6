"""Editors' pages (role ``editeur``): browse, edit, check, hear, publish the knowledge base."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
