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
    events: asyncio.Queue[dict] = field(default_factory=asyncio.Queue)
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

    @property
    def uri(self) -> str:
        return f"sip:{self.name}@127.0.0.1:{self.sip_port}"

    def _write_config(self) -> None:
        self.dumps.mkdir(parents=True, exist_ok=True)
        codec_module = {"PCMU": "g711.so", "PCMA": "g711.so", "G722": "g722.so"}[self.codec]
        (self.dir / "config").write_text(
            f"sip_listen\t\t127.0.0.1:{self.sip_port}\n"
            "net_interface\t\t127.0.0.1\n"
            f"audio_source\t\taufile,{self.source}\n"
            "audio_player\n"
            "audio_alert\n"
            f"module_path\t\t{MODULES}\n"
            f"module\t\t\t{codec_module}\n"
            "module\t\t\taufile.so\n"
            "module\t\t\tsndfile.so\n"
            f"snd_path\t\t{self.dumps}\n"
            "module_app\t\taccount.so\n"
            "module_app\t\tmenu.so\n"
            "module_app\t\tctrl_tcp.so\n"
            f"ctrl_tcp_listen\t\t127.0.0.1:{self.ctrl_port}\n"
            f"{self.extra_config}\n"
        )
        (self.dir / "accounts").write_text(
            f"<{self.uri}>;regint=0;answermode={self.answermode};audio_codecs={self.codec}\n"
        )

    async def start(self) -> None:
        self._write_config()
        self.process = await asyncio.create_subprocess_exec(
            "baresip", "-4", "-f", str(self.dir),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        self._tasks.append(asyncio.create_task(self._read_log()))
        await asyncio.wait_for(self._ready.wait(), _READY_S)
        reader, self._writer = await asyncio.open_connection("127.0.0.1", self.ctrl_port)
        self._tasks.append(asyncio.create_task(self._read_control(reader)))

    async def command(self, command: str, params: str = "", timeout_s: float = 5.0) -> dict:
        token = str(next(self._tokens))
        reply: asyncio.Future[dict] = asyncio.get_running_loop().create_future()
        self._replies[token] = reply
        body = json.dumps({"command": command, "params": params, "token": token}).encode()
        self._writer.write(str(len(body)).encode() + b":" + body + b",")
        await self._writer.drain()
        return await asyncio.wait_for(reply, timeout_s)

    async def wait_event(self, kind: str, timeout_s: float = 10.0) -> dict:
        """The next event of this type (``CALL_ESTABLISHED``, ``CALL_CLOSED``…), skipping others."""

        async def next_match() -> dict:
            while True:
                event = await self.events.get()
                if event.get("type") == kind:
                    return event

        return await asyncio.wait_for(next_match(), timeout_s)

    async def stop(self) -> None:
        """Quit (so sndfile closes its dumps), killing it if it does not."""
        for task in self._tasks:
            task.cancel()
        if self._writer is not None:
            self._writer.close()
        process = self.process
        if process is not None and process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 5.0)
            except asyncio.TimeoutError:
                process.kill()
                await process.wait()

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
                    self.events.put_nowait(message)
