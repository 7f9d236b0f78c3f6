"""Pause CPython's cyclic garbage collector while a month of rows is built or imported."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    """Half of a 500 k-row report or import went into full collections triggered by the
    allocation of a million small tuples. Those tuples hold no reference cycles, so
    reference counting frees them all the same; the collector resumes afterwards."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
