"""A small SIP user agent over UDP on 127.0.0.1, for the dispatcher (Kamailio) tests.

It plays the two ends Kamailio sits between: a media worker that answers INVITEs with a
chosen code (200, 486, 503, a ringing 180, or nothing at all) and OPTIONS keepalives with
another, and the operator's side that places a call and reports which worker answered.
Everything it says is plain RFC 3261 over a real socket; Kamailio, the component under
test, is the real one. Every reply it sends carries ``X-Peer: <name>``, which Kamailio
relays untouched, so a caller knows who answered. No SDP and no media: the dispatcher
never looks at them.

Choosing codes per INVITE, opening and closing the port at will and recording every
request with its headers is what sipp scenarios make awkward (an OPTIONS probe in the
middle of a UAS scenario is an "unexpected message"), hence this file.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from dataclasses import dataclass, field

_COMPACT = {"v": "via", "f": "from", "t": "to", "i": "call-id", "m": "contact",
            "l": "content-length", "c": "content-type", "k": "supported"}
_REASONS = {100: "Trying", 180: "Ringing", 200: "OK", 403: "Forbidden", 404: "Not Found",
            408: "Request Timeout", 480: "Temporarily Unavailable", 481: "Call Does Not Exist",
            486: "Busy Here", 487: "Request Terminated", 500: "Server Internal Error",
            503: "Service Unavailable"}
RING = 180
"""``invite_reply`` that rings until the INVITE is cancelled."""


@dataclass
class SipMessage:
    """One request or reply as received: first line, headers in order, body, source, time."""

    first_line: str
    headers: list[tuple[str, str]]
    body: bytes = b""
    source: tuple[str, int] = ("", 0)
    at: float = 0.0
    """``time.monotonic()`` when it arrived."""

    @classmethod
    def parse(cls, data: bytes, source: tuple[str, int]) -> SipMessage:
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("utf-8", "replace").split("\r\n")
        headers = []
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers.append((name.strip(), value.strip()))
        return cls(lines[0], headers, body, source, time.monotonic())

    @property
    def is_request(self) -> bool:
        return not self.first_line.startswith("SIP/2.0")

    @property
    def method(self) -> str:
        return self.first_line.split(" ", 1)[0] if self.is_request else self.cseq_method

    @property
    def uri(self) -> str:
        return self.first_line.split(" ")[1]

    @property
    def status(self) -> int:
        return int(self.first_line.split(" ")[1]) if not self.is_request else 0

    @property
    def cseq_method(self) -> str:
        return (self.header("CSeq") or " ").split()[-1]

    def header(self, name: str) -> str | None:
        values = self.all(name)
        return values[0] if values else None

    def all(self, name: str) -> list[str]:
        wanted = name.lower()
        return [v for n, v in self.headers if _COMPACT.get(n.lower(), n.lower()) == wanted]

    @property
    def branch(self) -> str:
        via = self.header("Via") or ""
        return next((p[7:] for p in via.split(";") if p.startswith("branch=")), "")


@dataclass
class CallResult:
    """What the calling side saw of one INVITE."""

    status: int
    reply: SipMessage
    provisional: list[int]
    elapsed_s: float
    """From sending the INVITE to its final reply."""

    @property
    def answered_by(self) -> str | None:
        """The peer that sent the final reply (None: Kamailio's own reply)."""
        return self.reply.header("X-Peer")


@dataclass
class SipPeer(asyncio.DatagramProtocol):
    """A UDP SIP user agent named ``name`` on 127.0.0.1:``port`` (0: any free port)."""

    name: str
    invite_reply: int | None = 200
    """Final answer to a new INVITE; ``RING`` rings until cancelled; None: stays silent."""
    last_resort_reply: int | None = None
    """Answer instead of ``invite_reply`` when the INVITE carries ``X-Allo-Last-Resort: 1``,
    as a worker whose speech engine is down does."""
    options_reply: int | None = 200
    """Answer to OPTIONS keepalives; None: stays silent."""
    answer_sdp: bool = False
    """Answer an INVITE's SDP offer with a PCMU stream (to a port nobody reads), as an
    advisor's phone would: a real user agent then treats the call as established."""
    port: int = 0
    requests: list[SipMessage] = field(default_factory=list)
    """Every request received, retransmissions included, in order."""

    def __post_init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self._sent: dict[str, bytes] = {}
        self._pending: dict[tuple[str, str], asyncio.Future[SipMessage]] = {}
        self._provisional: dict[tuple[str, str], list[int]] = {}
        self._ringing: dict[str, SipMessage] = {}
        self._waiters: list[tuple[str, int, asyncio.Future[None]]] = []
        self._tags = itertools.count(1)

    @property
    def uri(self) -> str:
        return f"sip:127.0.0.1:{self.port}"

    async def open(self) -> SipPeer:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: self, local_addr=("127.0.0.1", self.port))
        self.transport = transport
        self.port = transport.get_extra_info("sockname")[1]
        return self

    def close(self) -> None:
        """Release the port: to Kamailio the peer is now dead (UDP: no reply, ever)."""
        if self.transport is not None:
            self.transport.close()
            self.transport = None

    # -- what it received -------------------------------------------------------------------

    def invites(self) -> list[SipMessage]:
        """New INVITEs, one per transaction (retransmissions left out)."""
        seen: set[str] = set()
        found = []
        for m in self.requests:
            if m.method == "INVITE" and m.branch not in seen:
                seen.add(m.branch)
                found.append(m)
        return found

    def received(self, method: str) -> list[SipMessage]:
        return [m for m in self.requests if m.method == method]

    async def wait_for(self, method: str, count: int = 1, timeout_s: float = 5.0) -> None:
        """Until ``count`` ``method`` requests have arrived in all."""
        if len(self.received(method)) >= count:
            return
        future = asyncio.get_running_loop().create_future()
        self._waiters.append((method, count, future))
        await asyncio.wait_for(future, timeout_s)

    # -- the calling side -------------------------------------------------------------------

    async def call(self, port: int, *, headers: tuple[str, ...] = (), hang_up: bool = True,
                   timeout_s: float = 15.0, user: str = "3230") -> CallResult:
        """INVITE ``sip:3230@127.0.0.1:port``, ACK the final reply as RFC 3261 says (a 2xx
        end to end, to the answerer's Contact), then BYE it there if ``hang_up``."""
        call_id = f"{uuid.uuid4().hex}@allo-caf-test"
        tag = uuid.uuid4().hex[:10]
        branch = f"z9hG4bK{uuid.uuid4().hex}"
        ruri = f"sip:{user}@127.0.0.1:{port}"
        base = [
            f"From: <sip:caller@127.0.0.1:{self.port}>;tag={tag}",
            f"Call-ID: {call_id}",
        ]
        invite = self._request(
            "INVITE", ruri, branch,
            [*base, f"To: <{ruri}>", "CSeq: 1 INVITE",
             f"Contact: <sip:caller@127.0.0.1:{self.port}>", *headers],
        )
        key = (call_id, "INVITE")
        future = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        self._provisional[key] = []
        started = time.monotonic()
        self._send(invite, ("127.0.0.1", port))
        try:
            reply = await asyncio.wait_for(future, timeout_s)
        finally:
            self._pending.pop(key, None)
        result = CallResult(reply.status, reply, self._provisional.pop(key),
                            reply.at - started)
        to = reply.header("To") or f"<{ruri}>"
        if reply.status >= 300:  # hop by hop, same branch, to whoever sent the INVITE on
            self._send(self._request("ACK", ruri, branch, [*base, f"To: {to}", "CSeq: 1 ACK"]),
                       ("127.0.0.1", port))
            return result
        contact = _uri_of(reply.header("Contact") or "")
        target = _host_port(contact)
        self._send(self._request("ACK", contact, f"z9hG4bK{uuid.uuid4().hex}",
                                 [*base, f"To: {to}", "CSeq: 1 ACK"]), target)
        if hang_up:
            bye = await self.request("BYE", contact, target,
                                     [*base, f"To: {to}", "CSeq: 2 BYE"])
            assert bye.status == 200, bye.first_line
        return result

    async def cancel_after_ringing(self, port: int, timeout_s: float = 10.0) -> CallResult:
        """INVITE, wait for 180, CANCEL it through the same hop; the INVITE's final reply."""
        call_id = f"{uuid.uuid4().hex}@allo-caf-test"
        branch = f"z9hG4bK{uuid.uuid4().hex}"
        ruri = f"sip:3230@127.0.0.1:{port}"
        base = [f"From: <sip:caller@127.0.0.1:{self.port}>;tag={uuid.uuid4().hex[:10]}",
                f"Call-ID: {call_id}", f"To: <{ruri}>"]
        key = (call_id, "INVITE")
        final = asyncio.get_running_loop().create_future()
        self._pending[key] = final
        self._provisional[key] = []
        started = time.monotonic()
        self._send(self._request("INVITE", ruri, branch,
                                 [*base, "CSeq: 1 INVITE",
                                  f"Contact: <sip:caller@127.0.0.1:{self.port}>"]),
                   ("127.0.0.1", port))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while RING not in self._provisional[key]:  # our own UDP socket: poll with a deadline
            assert loop.time() < deadline and not final.done(), "no 180 Ringing"
            await asyncio.sleep(0.02)
        cancelled = await self.request("CANCEL", ruri, ("127.0.0.1", port),
                                       [*base, "CSeq: 1 CANCEL"], branch=branch)
        assert cancelled.status == 200, cancelled.first_line
        reply = await asyncio.wait_for(final, timeout_s)
        self._pending.pop(key, None)
        self._send(self._request("ACK", ruri, branch,
                                 [*base[:2], f"To: {reply.header('To')}", "CSeq: 1 ACK"]),
                   ("127.0.0.1", port))
        return CallResult(reply.status, reply, self._provisional.pop(key), reply.at - started)

    async def options(self, port: int, timeout_s: float = 5.0) -> int:
        """OPTIONS ``sip:127.0.0.1:port`` (a front balancer's keepalive); the reply's code."""
        ruri = f"sip:127.0.0.1:{port}"
        reply = await self.request(
            "OPTIONS", ruri, ("127.0.0.1", port),
            [f"From: <sip:probe@127.0.0.1:{self.port}>;tag={uuid.uuid4().hex[:10]}",
             f"To: <{ruri}>", f"Call-ID: {uuid.uuid4().hex}", "CSeq: 1 OPTIONS"],
            timeout_s=timeout_s,
        )
        return reply.status

    async def request(self, method: str, ruri: str, target: tuple[str, int],
                      headers: list[str], *, branch: str | None = None,
                      timeout_s: float = 5.0) -> SipMessage:
        """Send any request to ``target``; its final reply."""
        call_id = next(h for h in headers if h.startswith("Call-ID:")).split(":", 1)[1].strip()
        key = (call_id, method)
        future = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        self._provisional[key] = []
        self._send(self._request(method, ruri, branch or f"z9hG4bK{uuid.uuid4().hex}", headers),
                   target)
        try:
            return await asyncio.wait_for(future, timeout_s)
        finally:
            self._pending.pop(key, None)
            self._provisional.pop(key, None)

    # -- the answering side -----------------------------------------------------------------

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if not data.strip():
            return  # keepalive CRLF
        message = SipMessage.parse(data, addr)
        if message.is_request:
            self.requests.append(message)
            self._answer(message, addr)
            for waiter in list(self._waiters):
                method, count, future = waiter
                if len(self.received(method)) >= count:
                    self._waiters.remove(waiter)
                    if not future.done():
                        future.set_result(None)
            return
        key = (message.header("Call-ID") or "", message.cseq_method)
        if message.status < 200:
            self._provisional.setdefault(key, []).append(message.status)
        else:
            future = self._pending.get(key)
            if future is not None and not future.done():
                future.set_result(message)

    def _answer(self, request: SipMessage, addr: tuple[str, int]) -> None:
        method = request.method
        if method == "ACK":
            return
        if method == "INVITE" and request.branch in self._sent:  # retransmission
            self._send(self._sent[request.branch], addr)
            return
        if method == "OPTIONS":
            if self.options_reply is not None:
                self._send(self._reply(request, self.options_reply), addr)
            return
        if method == "CANCEL":
            self._send(self._reply(request, 200), addr)
            invite = self._ringing.pop(request.branch, None)
            if invite is not None:
                final = self._reply(invite, 487)
                self._sent[invite.branch] = final
                self._send(final, addr)
            return
        if method != "INVITE":
            self._send(self._reply(request, 200), addr)
            return
        code = self.invite_reply
        if request.header("X-Allo-Last-Resort") == "1" and self.last_resort_reply is not None:
            code = self.last_resort_reply
        if code is None:
            return
        if code == RING:
            self._ringing[request.branch] = request
            self._send(self._reply(request, RING), addr)
            return
        final = self._reply(request, code)
        self._sent[request.branch] = final
        self._send(final, addr)

    def _reply(self, request: SipMessage, code: int) -> bytes:
        to = request.header("To") or ""
        if ";tag=" not in to and code > 100:
            to += f";tag={self.name}-{next(self._tags)}"
        lines = [f"SIP/2.0 {code} {_REASONS.get(code, 'Reply')}"]
        lines += [f"Via: {v}" for v in request.all("Via")]
        lines += [f"From: {request.header('From')}", f"To: {to}",
                  f"Call-ID: {request.header('Call-ID')}", f"CSeq: {request.header('CSeq')}"]
        if request.method == "INVITE" and code < 300:
            lines.append(f"Contact: <sip:{self.name}@127.0.0.1:{self.port}>")
        body = b""
        if request.method == "INVITE" and 200 <= code < 300 and self.answer_sdp \
                and request.body:
            body = _sdp_answer(self.name, self.port + 2).encode()
            lines.append("Content-Type: application/sdp")
        lines += [f"X-Peer: {self.name}", f"Content-Length: {len(body)}"]
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + body

    def _request(self, method: str, ruri: str, branch: str, headers: list[str]) -> bytes:
        hops = [] if any(h.startswith("Max-Forwards:") for h in headers) else ["Max-Forwards: 70"]
        lines = [f"{method} {ruri} SIP/2.0",
                 f"Via: SIP/2.0/UDP 127.0.0.1:{self.port};branch={branch};rport",
                 *hops, *headers, "Content-Length: 0"]
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    def _send(self, data: bytes, addr: tuple[str, int]) -> None:
        if self.transport is not None:
            self.transport.sendto(data, addr)


def _sdp_answer(name: str, rtp_port: int) -> str:
    return "\r\n".join([
        "v=0", f"o={name} 1 1 IN IP4 127.0.0.1", "s=-", "c=IN IP4 127.0.0.1", "t=0 0",
        f"m=audio {rtp_port} RTP/AVP 0", "a=rtpmap:0 PCMU/8000", "a=sendrecv", ""])


def _uri_of(header: str) -> str:
    return header[header.index("<") + 1:header.index(">")] if "<" in header else header


def _host_port(uri: str) -> tuple[str, int]:
    hostport = uri.split("@")[-1].split(";")[0]
    host, _, port = hostport.partition(":")
    return host, int(port or 5060)
