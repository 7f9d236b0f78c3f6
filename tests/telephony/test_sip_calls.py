"""Real calls from baresip to our endpoint on 127.0.0.1: audio both ways, DTMF, hang-up."""

from __future__ import annotations

import asyncio

import pytest
from audio_match import match

from bot.audio import AudioFrame
from bot.playout import PlaybackFinished
from telephony_adapter.sip import CallLeg, CallState

MEDIA_WAIT_S = 5.0
SAME_AUDIO = 0.85
"""Correlation peak above which a recording holds the reference: the codec round trip
measured 0.998 (PCMU) and 0.94 (G.722, 8 kHz audio in a 16 kHz codec); unrelated speech
scores about 0.1."""


class RecordingHandler:
    """The test's call flow: answer, play a known message once RTP flows, record the caller
    until they hang up, and note DTMF keys."""

    def __init__(self, message: AudioFrame):
        self.message = message
        self.legs: list[CallLeg] = []
        self.heard = bytearray()
        self.heard_rate = 0
        self.playback: asyncio.Future[PlaybackFinished] | None = None
        self.keys: asyncio.Queue[str] = asyncio.Queue()
        self.done = asyncio.Event()

    async def __call__(self, leg: CallLeg) -> None:
        self.legs.append(leg)
        try:
            await leg.answer()
            await asyncio.wait_for(leg.media_ready.wait(), MEDIA_WAIT_S)
            self.heard_rate = leg.sample_rate
            self.playback = leg.playout.begin("greeting")
            leg.playout.push(self.message)
            leg.playout.end()
            tasks = [asyncio.create_task(self._record(leg)), asyncio.create_task(self._keys(leg))]
            await leg.ended.wait()
            for task in tasks:
                task.cancel()
        finally:
            self.done.set()

    async def _record(self, leg: CallLeg) -> None:
        while True:
            frame = await leg.audio_in.get()
            self.heard += frame.pcm

    async def _keys(self, leg: CallLeg) -> None:
        while True:
            self.keys.put_nowait(await leg.dtmf.get())


@pytest.mark.parametrize(("codec", "rate"), [("PCMU", 8000), ("G722", 16000)])
def test_call_carries_audio_both_ways(world, greeting, codec, rate):
    handler = RecordingHandler(greeting)
    question, caller_wav = world.caller_audio(rate, total_s=6.0)

    async def scenario():
        endpoint = await world.endpoint(handler)
        phone = await world.phone("caller", codec=codec, source=caller_wav)
        await phone.command("dial", f"sip:3230@127.0.0.1:{endpoint.sip_port}")
        await phone.wait_event("CALL_ESTABLISHED")
        await phone.wait_event("CALL_CLOSED", timeout_s=15)  # at the end of its file
        await asyncio.wait_for(handler.done.wait(), 5)
        await phone.stop()
        return endpoint, phone

    endpoint, phone = world.run(scenario())
    leg = handler.legs[0]
    assert (leg.codec, leg.sample_rate, handler.heard_rate) == (codec, rate, rate)
    assert leg.state is CallState.ENDED and leg.ended_by_caller
    assert leg.answered_at is not None and leg.ended_at > leg.answered_at
    assert endpoint.active_calls == 0

    playback = world.loop.run_until_complete(handler.playback)
    assert not playback.interrupted
    assert playback.listened_ms == playback.message_ms == greeting.duration_ms

    bot_score, _ = match(greeting, phone.received_audio())
    assert bot_score > SAME_AUDIO, f"the caller did not hear the greeting (score {bot_score:.2f})"
    caller_score, _ = match(question, AudioFrame(bytes(handler.heard), rate))
    assert caller_score > SAME_AUDIO, f"the bot did not hear the caller (score {caller_score:.2f})"


def test_rfc4733_dtmf_reaches_the_call(world, greeting):
    handler = RecordingHandler(greeting)
    _, caller_wav = world.caller_audio(8000, total_s=10.0)

    async def scenario():
        endpoint = await world.endpoint(handler)
        phone = await world.phone("caller", source=caller_wav)
        await phone.command("dial", f"sip:3230@127.0.0.1:{endpoint.sip_port}")
        await phone.wait_event("CALL_ESTABLISHED")
        keys = []
        for key in ("0", "*", "7", "#"):
            await phone.command("sndcode", key)
            keys.append(await asyncio.wait_for(handler.keys.get(), 5))
        await phone.command("hangup")
        await asyncio.wait_for(handler.done.wait(), 5)
        return keys

    assert world.run(scenario()) == ["0", "*", "7", "#"]


def test_caller_hanging_up_mid_message_counts_what_was_heard(world, greeting):
    long_message = AudioFrame(greeting.pcm * 3, greeting.sample_rate)  # 13 s
    handler = RecordingHandler(long_message)
    _, caller_wav = world.caller_audio(8000, total_s=2.0)  # baresip hangs up at its end

    async def scenario():
        endpoint = await world.endpoint(handler)
        phone = await world.phone("caller", source=caller_wav)
        await phone.command("dial", f"sip:3230@127.0.0.1:{endpoint.sip_port}")
        await phone.wait_event("CALL_CLOSED", timeout_s=10)
        return await asyncio.wait_for(handler.playback, 5)

    playback = world.run(scenario())
    leg = handler.legs[0]
    call_ms = (leg.ended_at - leg.answered_at).total_seconds() * 1000
    assert playback.interrupted and leg.ended_by_caller
    assert playback.message_ms == long_message.duration_ms
    assert 1000 < playback.listened_ms <= call_ms < playback.message_ms


def test_call_over_tcp(world, greeting):
    handler = RecordingHandler(greeting)
    _, caller_wav = world.caller_audio(8000, total_s=5.0)

    async def scenario():
        endpoint = await world.endpoint(handler)
        phone = await world.phone("caller", source=caller_wav)
        await phone.command("dial", f"sip:3230@127.0.0.1:{endpoint.sip_port};transport=tcp")
        await phone.wait_event("CALL_CLOSED", timeout_s=10)
        await asyncio.wait_for(handler.done.wait(), 5)
        await phone.stop()
        return phone

    phone = world.run(scenario())
    assert handler.playback.result().listened_ms == greeting.duration_ms
    assert match(greeting, phone.received_audio())[0] > SAME_AUDIO



def test_sip_info_dtmf_reaches_the_call(world, greeting):
    handler = RecordingHandler(greeting)

    async def scenario():
        endpoint = await world.endpoint(handler)
        _, wav = world.caller_audio(16000, total_s=3.0)
        await world.pjsua_phone(f"sip:3230@127.0.0.1:{endpoint.sip_port}", wav,
                                "--info-digits", "0*")
        keys = [await asyncio.wait_for(handler.keys.get(), 10) for _ in range(2)]
        await handler.legs[0].hangup()
        return keys

    assert world.run(scenario()) == ["0", "*"]
