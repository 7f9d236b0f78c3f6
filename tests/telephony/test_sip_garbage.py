"""Garbage on the wire (random bytes, truncated SIP, malformed RTP) must not take the
service down: the call in progress goes on, and the next call works."""

from __future__ import annotations

import asyncio
import random
import socket
import struct

from audio_match import match
from test_sip_calls import SAME_AUDIO, RecordingHandler

TRUNCATED_INVITE = (
    b"INVITE sip:3230@127.0.0.1 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK-garbage\r\n"
    b"From: <sip:x@127.0.0.1>;tag=1\r\nTo: <sip:3230@127.0.0.1>\r\nCall-ID: garbage-1\r\n"
    b"CSeq: 1 INVITE\r\nContent-Type: application/sdp\r\nContent-Length: 900\r\n\r\nv=0\r\no="
)
BROKEN_HEADERS = (
    b"INVITE sip:3230@127.0.0.1 SIP/2.0\r\nVia: \r\nFrom: <<<>>>\r\nCSeq: x INVITE\r\n"
    b"Content-Length: -5\r\n\r\n"
)


def garbage_datagrams(rng: random.Random) -> list[bytes]:
    randoms = [rng.randbytes(rng.randint(1, 1400)) for _ in range(40)]
    return randoms + [TRUNCATED_INVITE, BROKEN_HEADERS, b"\r\n\r\n", b"\0" * 2000]


def malformed_rtp(rng: random.Random) -> list[bytes]:
    packets = [rng.randbytes(rng.randint(1, 11)) for _ in range(20)]  # shorter than a header
    for _ in range(20):  # version 2, 15 CSRCs announced, none present
        packets.append(struct.pack("!BBHII", 0x8F, 0, rng.randint(0, 65535), 0, 1) + b"\xff")
    for _ in range(20):  # extension bit set with a huge length
        packets.append(struct.pack("!BBHIIHH", 0x90, 0, 1, 0, 1, 0xBEDE, 0xFFFF))
    for _ in range(20):  # well-formed header, PCMU payload type, random SSRC and payload
        header = struct.pack("!BBHII", 0x80, 0, rng.randint(0, 65535), 0, rng.getrandbits(32))
        packets.append(header + rng.randbytes(160))
    return packets


def spray(port_from: int, port_to: int, packets: list[bytes]) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for port in range(port_from, port_to + 1):
            for packet in packets:
                sock.sendto(packet, ("127.0.0.1", port))


def tcp_garbage(port: int, rng: random.Random) -> None:
    for payload in (rng.randbytes(5000), TRUNCATED_INVITE, BROKEN_HEADERS, b"\xff" * 70000):
        with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
            try:
                sock.sendall(payload)
            except OSError:
                pass  # the endpoint may drop the connection first: that is fine


def test_garbage_packets_do_not_break_calls(world, greeting):
    rng = random.Random(3230)
    first, second = RecordingHandler(greeting), RecordingHandler(greeting)
    handlers = iter([first, second])

    async def on_call(leg):
        await next(handlers)(leg)

    async def call_once(endpoint, handler, name, during=None):
        _, wav = world.caller_audio(8000, total_s=6.0)
        phone = await world.phone(name, source=wav)
        await phone.command("dial", f"sip:3230@127.0.0.1:{endpoint.sip_port}")
        await phone.wait_event("CALL_ESTABLISHED")
        if during is not None:
            await asyncio.to_thread(during)
        await phone.wait_event("CALL_CLOSED", timeout_s=15)
        await asyncio.wait_for(handler.done.wait(), 5)
        await phone.stop()
        return phone

    async def scenario():
        endpoint = await world.endpoint(on_call)
        options = endpoint.options
        port = endpoint.sip_port
        await asyncio.to_thread(spray, port, port, garbage_datagrams(rng))
        await asyncio.to_thread(tcp_garbage, port, rng)

        def rtp_attack():
            spray(options.rtp_port_min, options.rtp_port_min + 20, malformed_rtp(rng))
            spray(port, port, garbage_datagrams(rng))

        during = await call_once(endpoint, first, "caller1", during=rtp_attack)
        after = await call_once(endpoint, second, "caller2")
        return during, after, endpoint

    during, after, endpoint = world.run(scenario())
    assert endpoint.calls_total == 2 and endpoint.active_calls == 0
    assert match(greeting, during.received_audio())[0] > SAME_AUDIO
    assert match(greeting, after.received_audio())[0] > SAME_AUDIO
    assert second.playback.result().listened_ms == greeting.duration_ms
