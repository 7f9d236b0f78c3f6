"""Fixtures of the pipeline tests: the clocked line (``clocked_line.py``)."""

from __future__ import annotations

import pytest
from clocked_line import ClockedLine


@pytest.fixture()
def line(event_loop_runner) -> ClockedLine:
    async def make() -> ClockedLine:
        return ClockedLine()

    return event_loop_runner(make())
