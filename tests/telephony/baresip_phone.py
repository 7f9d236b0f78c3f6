"""A real SIP phone for the tests: baresip (Debian package), headless, driven over ctrl_tcp.

Each instance gets its own config directory, SIP port and control port on 127.0.0.1. It
plays a WAV file (``aufile``, which hangs up when the file ends; baresip 1.0's ``ausine``
only runs at 48 kHz), and ``sndfile`` dumps what it received to ``dump-*-dec.wav``,
written when the process exits. Commands and events are JSON netstrings on the control
socket: ``dial``, ``sndcode`` (RFC 4733 DTMF), ``hangup`` (a ringing call is declined with
486), ``accept``; events such as ``CALL_ESTABLISHED``, ``CALL_INCOMING``, ``CALL_CLOSED``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

from bot.audio import AudioFrame, read_wav

MODULES = Path("/usr/lib/baresip/modules")
_READY_S = 10.0


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    """A port free for both UDP and TCP on 127.0.0.1 right now."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, kind) as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        other = socket.SOCK_STREAM if kind == socket.SOCK_DGRAM else socket.SOCK_DGRAM
        with socket.socket(socket.AF_INET, other) as check:
            try:
                check.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port")


def free_port_block(count: int, start: int = 21000, stop: int = 32000) -> int:
    """The first of ``count`` consecutive ports free for UDP and TCP on 127.0.0.1 (a node
    listens on its SIP port and its workers on the ports right after it)."""
    for base in range(start, stop - count):
        sockets: list[socket.socket] = []
        try:
            for port in range(base, base + count):
                for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                    s = socket.socket(socket.AF_INET, kind)
                    sockets.append(s)
                    s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise RuntimeError(f"no {count} consecutive free ports")


@dataclass
class Baresip:
    """One baresip user agent playing ``source``, a mono S16 WAV at the codec's rate."""

    workdir: Path
    name: str
    source: Path
    codec: str = "PCMU"
    answermode: str = "manual"
    extra_config: str = ""
    sip_port: int = field(default_factory=free_port)
    ctrl_port: int = field(default_factory=lambda: free_port(socket.SOCK_STREAM))
    rtp_ports: str | None = None
    """A range such as ``10000-20000``, to keep many phones off other processes' ports."""
    record: bool = True
    """Dump what it hears (``received_audio``); a load generator does without."""
    events: list[dict] = field(default_factory=list)
    """Every event so far, each stamped with ``at`` (``time.monotonic()``)."""
    log_lines: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.dir = self.workdir / self.name
        self.dumps = self.dir / "dumps"
        self.process: asyncio.subprocess.Process | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._tasks: list[asyncio.Task] = []
        self._replies: dict[str, asyncio.Future[dict]] = {}
        self._tokens = itertools.count(1)
        self._ready = asyncio.Event()
        self._changed = asyncio.Condition()
        self._consumed = 0

    @property
    def uri(self) -> str:
        return f"sip:{self.name}@127.0.0.1:{self.sip_port}"

    def _write_config(self) -> None:
        self.dumps.mkdir(parents=True, exist_ok=True)
        codec_module = {"PCMU": "g711.so", "PCMA": "g711.so", "G722": "g722.so"}[self.codec]
        lines = [
            f"sip_listen\t\t127.0.0.1:{self.sip_port}",
            "net_interface\t\t127.0.0.1",
            f"audio_source\t\taufile,{self.source}",
            "audio_player",
            "audio_alert",
            f"module_path\t\t{MODULES}",
            f"module\t\t\t{codec_module}",
            "module\t\t\taufile.so",
            "module_app\t\taccount.so",
            "module_app\t\tmenu.so",
            "module_app\t\tctrl_tcp.so",
            f"ctrl_tcp_listen\t\t127.0.0.1:{self.ctrl_port}",
        ]
        if self.record:
            lines += ["module\t\t\tsndfile.so", f"snd_path\t\t{self.dumps}"]
        if self.rtp_ports:
            lines.append(f"rtp_ports\t\t{self.rtp_ports}")
        (self.dir / "config").write_text("\n".join(lines) + f"\n{self.extra_config}\n")
        (self.dir / "accounts").write_text(
            f"<{self.uri}>;regint=0;answermode={self.answermode};audio_codecs={self.codec}\n"
        )

    async def start(self, timeout_s: float = _READY_S) -> None:
        self._write_config()
        self.process = await asyncio.create_subprocess_exec(
            "baresip", "-4", "-f", str(self.dir),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
        self._tasks.append(asyncio.create_task(self._read_log()))
        try:
            await asyncio.wait_for(self._ready.wait(), timeout_s)
        except asyncio.TimeoutError:
            await self.stop()
            raise RuntimeError(f"baresip {self.name} not ready after {timeout_s:.0f} s: "
                               + " | ".join(self.log_lines[-8:])) from None
        reader, self._writer = await asyncio.open_connection("127.0.0.1", self.ctrl_port)
        self._tasks.append(asyncio.create_task(self._read_control(reader)))

    async def command(self, command: str, params: str = "", timeout_s: float = 5.0) -> dict:
        assert self._writer is not None
        token = str(next(self._tokens))
        reply: asyncio.Future[dict] = asyncio.get_running_loop().create_future()
        self._replies[token] = reply
        body = json.dumps({"command": command, "params": params, "token": token}).encode()
        self._writer.write(str(len(body)).encode() + b":" + body + b",")
        await self._writer.drain()
        return await asyncio.wait_for(reply, timeout_s)

    async def wait_event(self, *kinds: str, timeout_s: float = 10.0) -> dict:
        """The next event of one of these types (``CALL_ESTABLISHED``, ``CALL_CLOSED``…),
        skipping others; raises ``asyncio.TimeoutError``."""

        async def wait() -> dict:
            async with self._changed:
                while (event := self._next_unseen(kinds)) is None:
                    await self._changed.wait()
                return event

        return await asyncio.wait_for(wait(), timeout_s)

    def _next_unseen(self, kinds: tuple[str, ...]) -> dict | None:
        for index in range(self._consumed, len(self.events)):
            if self.events[index].get("type") in kinds:
                self._consumed = index + 1
                return self.events[index]
        self._consumed = len(self.events)
        return None

    async def stop(self) -> None:
        """Quit (so sndfile closes its dumps), killing it if it does not."""
        for task in self._tasks:
            task.cancel()
        if self._writer is not None:
            self._writer.close()
        process = self.process
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 5.0)
            except asyncio.TimeoutError:
                self.kill()
                await process.wait()

    def kill(self) -> None:
        """Last resort, synchronous (from a ``finally``)."""
        process = self.process
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()

    def received_audio(self, call: int = -1) -> AudioFrame:
        """What this phone heard (its decoder's output) in its ``call``-th call (default: the
        last; a transferred caller's first call is 0), after ``stop``."""
        dumps = sorted(self.dumps.glob("dump-*-dec.wav"))
        if not dumps:
            raise AssertionError(f"{self.name}: no received-audio dump in {self.dumps}")
        return read_wav(dumps[call])

    async def _read_log(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        async for raw in self.process.stdout:
            line = raw.decode(errors="replace").rstrip()
            self.log_lines.append(line)
            if "baresip is ready" in line:
                self._ready.set()

    async def _read_control(self, reader: asyncio.StreamReader) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                length = int((await reader.readuntil(b":"))[:-1])
                message = json.loads((await reader.readexactly(length + 1))[:-1])
                if message.get("response"):
                    reply = self._replies.pop(str(message.get("token")), None)
                    if reply is not None and not reply.done():
                        reply.set_result(message)
                elif message.get("event"):
                    message["at"] = time.monotonic()
                    async with self._changed:
                        self.events.append(message)
                        self._changed.notify_all()
