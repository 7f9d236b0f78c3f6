"""The media stream between a SIP media worker and the speech engine: one WebSocket per call.

Shaped after the two established protocols for putting a voice bot behind a telephony
platform, so that the engine can also sit behind an operator's own PBX:

- jambonz ``listen``: one WebSocket per call, a first JSON text frame with the call's
  metadata and sample rate, then raw PCM16 little-endian audio in binary frames;
- Twilio Media Streams: JSON events named ``media``, ``dtmf``, ``mark`` and ``clear``, where a
  ``mark`` sent after some audio comes back once that audio has been played, and ``clear``
  drops what is queued (barge-in).

What we add, and why: a mark comes back with the milliseconds really sent to the caller
(jambonz's ``playDone`` carries a duration too), because SC3.2 billing needs exactly how
much of each message was heard; and the call-control verbs a bot needs on a phone line
(answer, transfer with context headers, hang-up). docs/media-stream.md is the reference.

Text frames are JSON objects with an ``event`` field. Binary frames are audio: from the
worker, the caller's voice at the call's ``sample_rate``, 20 ms per frame (a whole number
of 20 ms frames when a sender merges what queued up); from the engine, the bot's voice at
8000 Hz, belonging to the message last opened by ``play``.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Mapping
from typing import Any, Protocol

SUBPROTOCOL = "audio.allo-caf.v1"
CALLS_PATH = "/calls"
"""WebSocket path of the call streams on the engine."""
LINK_PATH = "/link"
"""WebSocket path a worker keeps open to know the engine is up (no audio on it)."""
PLAY_RATE = 8000
"""Rate of the audio the engine sends: the line's, whatever the call's codec."""
MAX_TEXT_BYTES = 64 * 1024
"""A control message is small; anything larger is garbage, not a message."""
MAX_MERGED_BYTES = 64 * 1024
"""Audio queued behind a slow socket goes out merged, up to this much per frame."""

# worker -> engine
START = "start"
"""First frame: ``call_id``, ``caller``, ``called``, ``worker``, ``received_at`` (ISO 8601),
``last_resort``."""
ANSWERED = "answered"
"""The call is answered (``at``, ISO 8601)."""
MEDIA = "media"
"""The caller's RTP flows: ``codec`` and the ``sample_rate`` of the binary frames to come."""
DTMF = "dtmf"
"""A key: ``digit`` in 0-9, *, #."""
PLAYED = "played"
"""A message finished: ``id``, ``message_ms``, ``listened_ms``, ``interrupted``."""
TRANSFER_RESULT = "transfer_result"
"""``request``, ``outcome``, ``sip_status``, ``reason``, ``method``, ``refer_status``."""
BRIDGED = "bridged"
"""The caller is bridged to an advisor by the worker: the bot is out of the audio."""
STOP = "stop"
"""The call is over: ``ended_at``, ``ended_by_caller``, ``end_status``, ``dropped_frames``."""

# engine -> worker
ANSWER = "answer"
PLAY = "play"
"""Open a message: ``id``. Binary frames that follow are its audio."""
MARK = "mark"
"""The message ``id`` has all its audio; it is reported ``played`` once heard or cut."""
CLEAR = "clear"
"""Barge-in: drop every queued message now."""
TRANSFER = "transfer"
"""``request`` (an id), ``target`` (a SIP URI, empty: the worker's advisor) and ``headers``
(name -> value) to carry on the REFER target."""
HANGUP = "hangup"
DONE = "done"
"""The engine has finished with the call and written its ledger row; a socket closed
without it means the engine failed and the worker must rescue the caller."""

FROM_WORKER = frozenset({START, ANSWERED, MEDIA, DTMF, PLAYED, TRANSFER_RESULT, BRIDGED, STOP})
FROM_ENGINE = frozenset({ANSWER, PLAY, MARK, CLEAR, TRANSFER, HANGUP, DONE})
DTMF_DIGITS = frozenset("0123456789*#")


class ProtocolError(ValueError):
    """A frame that is not a message of this protocol; the peer is buggy or not ours."""


def encode(event: str, **fields: Any) -> str:
    return json.dumps({"event": event, **fields}, ensure_ascii=False, separators=(",", ":"))


def decode(text: str, allowed: frozenset[str]) -> dict[str, Any]:
    """Parse one text frame; raises ``ProtocolError`` on anything but an allowed event."""
    if len(text) > MAX_TEXT_BYTES:
        raise ProtocolError(f"text frame of {len(text)} bytes")
    try:
        message = json.loads(text)
    except ValueError:
        raise ProtocolError("text frame is not JSON") from None
    if not isinstance(message, dict):
        raise ProtocolError("text frame is not a JSON object")
    event = message.get("event")
    if event not in allowed:
        raise ProtocolError(f"unexpected event {event!r}")
    if event == DTMF and message.get("digit") not in DTMF_DIGITS:
        raise ProtocolError(f"bad DTMF digit {message.get('digit')!r}")
    return message


def text_field(message: Mapping[str, Any], name: str, default: str = "") -> str:
    value = message.get(name, default)
    if value is None:
        return default
    if not isinstance(value, str):
        raise ProtocolError(f"{message.get('event')}.{name} must be a string")
    return value


def int_field(message: Mapping[str, Any], name: str, default: int = 0) -> int:
    value = message.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ProtocolError(f"{message.get('event')}.{name} must be a non-negative integer")
    return value


def headers_field(message: Mapping[str, Any]) -> dict[str, str]:
    headers = message.get("headers") or {}
    if not isinstance(headers, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in headers.items()):
        raise ProtocolError("transfer.headers must map names to strings")
    return headers


class Socket(Protocol):
    async def send_bytes(self, data: bytes) -> None: ...

    async def send_str(self, data: str) -> None: ...


class Outbox:
    """One connection's outgoing messages, sent in order by ``pump``; ``put`` never waits.

    Audio and control share one ordered channel (a ``mark`` must follow its message's
    audio). When frames pile up behind a busy loop, consecutive audio goes out as one
    binary frame: the per-frame cost of a WebSocket send, not the bytes, is what a loaded
    node cannot afford, and a backlog then drains in a few sends instead of hundreds.
    """

    def __init__(self) -> None:
        self._items: deque[str | bytes] = deque()
        self._ready = asyncio.Event()
        self._closed = False

    def put(self, item: str | bytes) -> None:
        self._items.append(item)
        self._ready.set()

    def close(self) -> None:
        """Send what is queued, then let ``pump`` return."""
        self._closed = True
        self._ready.set()

    async def pump(self, ws: Socket) -> None:
        """Until closed and empty; returns early if the peer is gone (ConnectionError)."""
        items = self._items
        while True:
            if not items:
                if self._closed:
                    return
                self._ready.clear()
                await self._ready.wait()
                continue
            item = items.popleft()
            try:
                if isinstance(item, bytes):
                    if items and isinstance(items[0], bytes):
                        merged = [item]
                        size = len(item)
                        while items and isinstance(items[0], bytes) and size < MAX_MERGED_BYTES:
                            size += len(items[0])
                            merged.append(items.popleft())  # type: ignore[arg-type]
                        item = b"".join(merged)
                    await ws.send_bytes(item)
                else:
                    await ws.send_str(item)
            except ConnectionError:
                return  # the peer is gone: its reader notices and acts
