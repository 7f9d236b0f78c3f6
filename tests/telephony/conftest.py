"""Fixtures for the SIP tests: a fresh event loop per test, our endpoint, and baresip phones
that are always killed at the end, whatever the test did."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from audio_match import padded
from baresip_phone import Baresip, free_port

from bot.audio import AudioFrame, read_wav, resample, write_wav
from telephony_adapter.options import TelephonyOptions
from telephony_adapter.sip import CallHandler, SipEndpoint

DATA = Path(__file__).resolve().parents[1] / "data" / "telephony"
T = TypeVar("T")
_TEST_LIMIT_S = 90.0


class PjsuaPhone:
    """``pjsua_phone.py`` in its own process: SIP INFO DTMF and REFER refusal."""

    def __init__(self, uri: str, wav: Path, *options: str):
        self.args = [sys.executable, str(Path(__file__).with_name("pjsua_phone.py")),
                     uri, str(wav), *options]
        self.events: asyncio.Queue[dict] = asyncio.Queue()
        self.process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task | None = None

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            *self.args, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        )
        self._reader = asyncio.create_task(self._read())

    async def wait_event(self, kind: str, timeout_s: float = 10.0) -> dict:
        async def next_match() -> dict:
            while True:
                event = await self.events.get()
                if event.get("event") == kind:
                    return event

        return await asyncio.wait_for(next_match(), timeout_s)

    async def stop(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), 5.0)
            except asyncio.TimeoutError:
                self.process.kill()
                await self.process.wait()

    async def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        async for line in self.process.stdout:
            if line.startswith(b"{"):
                self.events.put_nowait(json.loads(line))


class SipWorld:
    """One test's SIP set-up on 127.0.0.1; ``run`` drives a scenario on its event loop."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.loop = asyncio.new_event_loop()
        self.endpoints: list[SipEndpoint] = []
        self.phones: list[Baresip | PjsuaPhone] = []

    def run(self, scenario: Coroutine[Any, Any, T], limit_s: float = _TEST_LIMIT_S) -> T:
        return self.loop.run_until_complete(asyncio.wait_for(scenario, limit_s))

    def options(self, **changes: Any) -> TelephonyOptions:
        base = TelephonyOptions(
            sip_port=0, http_port=0, rtp_port_min=free_port(), sip_log_level=1,
            transfer_timeout_ms=15000,
        )
        return dataclasses.replace(base, rtp_port_max=base.rtp_port_min + 200, **changes)

    async def endpoint(self, on_call: CallHandler, **changes: Any) -> SipEndpoint:
        endpoint = SipEndpoint(self.options(**changes), on_call)
        await endpoint.start()
        self.endpoints.append(endpoint)
        return endpoint

    async def phone(self, name: str, **kwargs: Any) -> Baresip:
        phone = Baresip(self.workdir, name, **kwargs)
        self.phones.append(phone)
        await phone.start()
        return phone

    async def pjsua_phone(self, uri: str, wav: Path, *options: str) -> PjsuaPhone:
        phone = PjsuaPhone(uri, wav, *options)
        self.phones.append(phone)
        await phone.start()
        return phone

    def wav(self, name: str, frame: AudioFrame) -> Path:
        path = self.workdir / name
        write_wav(path, frame)
        return path

    def caller_audio(self, rate: int, total_s: float,
                     lead_s: float = 0.5) -> tuple[AudioFrame, Path]:
        """The caller's question at ``rate`` after ``lead_s`` of silence, padded to
        ``total_s``; baresip hangs up at its end."""
        question = resample(read_wav(DATA / "caller_question_16k.wav"), rate)
        audio = padded(question, lead_s, total_s)
        return question, self.wav(f"caller_{rate}_{total_s}_{lead_s}.wav", audio)

    def advisor_audio(self) -> Path:
        """What an advisor's phone plays: the greeting, then silence, 30 s in all."""
        return self.wav("advisor.wav", padded(read_wav(DATA / "bot_greeting_8k.wav"), 0.2, 30.0))

    async def close(self) -> None:
        for phone in self.phones:
            await phone.stop()
        for endpoint in self.endpoints:
            await endpoint.stop(grace_ms=2000)


@pytest.fixture()
def world(tmp_path: Path) -> Iterator[SipWorld]:
    world = SipWorld(tmp_path)
    try:
        yield world
    finally:
        try:
            world.loop.run_until_complete(asyncio.wait_for(world.close(), 30))
        finally:
            for phone in world.phones:  # belt and braces: no baresip outlives its test
                process = phone.process
                if process is not None and process.returncode is None:
                    process.kill()
            world.loop.close()


@pytest.fixture(scope="session")
def greeting() -> AudioFrame:
    return read_wav(DATA / "bot_greeting_8k.wav")
