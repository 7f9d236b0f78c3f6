"""A child process's line to its supervisor: JSON objects, one per line, on an inherited pipe.

The supervisor creates the pipe and passes its write end to the child (``--status-fd``);
the child says when it is ready, how many calls it holds, and hands over what must reach
the ledger when the engine could not write it. A pipe needs no port, no address and no
authentication, and it closes by itself when either side dies.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import AsyncIterator
from typing import Any

log = logging.getLogger(__name__)

MAX_LINE_BYTES = 1 << 20


class StatusWriter:
    """The child's end. ``send`` never raises: a supervisor that went away is not fatal."""

    def __init__(self, fd: int | None):
        self.fd = fd

    def send(self, message: dict[str, Any]) -> None:
        if self.fd is None:
            return
        data = (json.dumps(message, separators=(",", ":")) + "\n").encode()
        try:
            os.write(self.fd, data)  # under PIPE_BUF for status lines: written whole
        except OSError:
            self.fd = None


async def read_status(fd: int) -> AsyncIterator[dict[str, Any]]:
    """The supervisor's end: each JSON object the child sends, until it closes the pipe."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=MAX_LINE_BYTES)
    transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(fd, "rb", buffering=0))
    try:
        while line := await reader.readline():
            try:
                message = json.loads(line)
            except ValueError:
                log.warning("unreadable status line from a child process ignored")
                continue
            if isinstance(message, dict):
                yield message
    finally:
        transport.close()
