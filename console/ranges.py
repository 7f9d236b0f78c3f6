"""HTTP byte ranges (RFC 9110 §14) for audio streamed to the page's player.

Browsers fetch an ``<audio>`` source in ranges (``bytes=0-`` first, then wherever the
listener seeks). One range per request is served; a request for several gets the first,
which the RFC allows. A range that starts past the end is unsatisfiable (416).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_SPEC = re.compile(r"\s*(\d*)\s*-\s*(\d*)\s*")


@dataclass(frozen=True)
class ByteRange:
    start: int
    end: int
    """Inclusive, as in ``Content-Range``."""

    @property
    def length(self) -> int:
        return self.end - self.start + 1

    def content_range(self, size: int) -> str:
        return f"bytes {self.start}-{self.end}/{size}"


class Unsatisfiable(Exception):
    """No byte of the requested range exists (answer 416 with ``bytes */size``)."""


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The range to serve; None to serve the whole body with 200 (no or unreadable header).

    Raises :class:`Unsatisfiable` for a well-formed range outside the body.
    """
    if not header:
        return None
    unit, _, specs = header.partition("=")
    if unit.strip().lower() != "bytes" or not specs:
        return None
    match = _SPEC.fullmatch(specs.split(",")[0])
    if match is None:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # a suffix: the last N bytes
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise Unsatisfiable
        return ByteRange(max(0, size - suffix), size - 1)
    start = int(first)
    if start >= size:
        raise Unsatisfiable
    end = int(last) if last else size - 1
    if end < start:
        return None  # invalid: ignored, the whole body is served
    return ByteRange(start, min(end, size - 1))
