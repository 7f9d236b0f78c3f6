"""Blind transfer by REFER between real baresip phones: the caller is sent to the "advisor"."""

from __future__ import annotations

import asyncio

from audio_match import match
from baresip_phone import free_port

from telephony_adapter.sip import CallLeg, CallState, TransferOutcome, TransferResult


class TransferHandler:
    """Answer, then transfer at once; on failure stay on the line and hang up ourselves."""

    def __init__(self, target: str = ""):
        self.target = target
        self.legs: list[CallLeg] = []
        self.results: asyncio.Queue[TransferResult] = asyncio.Queue()
        self.state_after: CallState | None = None

    async def __call__(self, leg: CallLeg) -> None:
        self.legs.append(leg)
        await leg.answer()
        await asyncio.wait_for(leg.media_ready.wait(), 5)
        result = await leg.transfer(self.target or None)
        self.state_after = leg.state
        self.results.put_nowait(result)
        if not result.succeeded:
            await leg.hangup()


def test_refer_reaches_the_advisor_who_answers(world):
    async def scenario():
        advisor = await world.phone("conseiller", source=world.advisor_audio(), answermode="auto")
        handler = TransferHandler()
        endpoint = await world.endpoint(handler, advisor_uri=advisor.uri)
        _, caller_wav = world.caller_audio(8000, total_s=20.0)
        caller = await world.phone("caller", source=caller_wav)
        await caller.command("dial", f"sip:3230@127.0.0.1:{endpoint.sip_port}")
        incoming = await advisor.wait_event("CALL_ESTABLISHED", timeout_s=15)
        result = await asyncio.wait_for(handler.results.get(), 15)
        await asyncio.wait_for(handler.legs[0].ended.wait(), 5)
        return endpoint, handler, incoming, result

    endpoint, handler, incoming, result = world.run(scenario())
    assert result.outcome is TransferOutcome.ACCEPTED
    assert (result.method, result.sip_status, result.refer_status) == ("refer", 200, 202)
    assert "caller@127.0.0.1" in incoming["peeruri"]  # the caller itself now talks to the advisor
    assert handler.state_after is CallState.ENDED  # the bot left the call
    assert endpoint.active_calls == 0


def test_advisor_declining_gives_busy_and_the_call_stays_with_the_bot(world):
    async def scenario():
        advisor = await world.phone("conseiller", source=world.advisor_audio())
        handler = TransferHandler()
        endpoint = await world.endpoint(handler, advisor_uri=advisor.uri)
        _, caller_wav = world.caller_audio(8000, total_s=20.0)
        caller = await world.phone("caller", source=caller_wav)
        await caller.command("dial", f"sip:3230@127.0.0.1:{endpoint.sip_port}")
        await advisor.wait_event("CALL_INCOMING", timeout_s=10)
        await advisor.command("hangup")  # baresip declines a ringing call with 486
        return await asyncio.wait_for(handler.results.get(), 15), handler

    result, handler = world.run(scenario())
    assert result.outcome is TransferOutcome.BUSY
    assert (result.method, result.sip_status, result.refer_status) == ("refer", 486, 202)
    assert handler.state_after is CallState.ANSWERED


def test_unreachable_advisor_is_refused(world):
    async def scenario():
        nobody = f"sip:conseiller@127.0.0.1:{free_port()};transport=tcp"  # nothing listens
        handler = TransferHandler()
        endpoint = await world.endpoint(handler, advisor_uri=nobody)
        _, caller_wav = world.caller_audio(8000, total_s=20.0)
        caller = await world.phone("caller", source=caller_wav)
        await caller.command("dial", f"sip:3230@127.0.0.1:{endpoint.sip_port}")
        return await asyncio.wait_for(handler.results.get(), 15)

    result = world.run(scenario())
    assert result.outcome is TransferOutcome.REFUSED
    assert (result.method, result.refer_status) == ("refer", 202)
    assert result.sip_status >= 500


def test_advisor_who_never_answers_times_out_and_the_bot_keeps_the_call(world):
    async def scenario():
        advisor = await world.phone("conseiller", source=world.advisor_audio())  # rings forever
        handler = TransferHandler()
        endpoint = await world.endpoint(handler, advisor_uri=advisor.uri, transfer_timeout_ms=3000)
        _, caller_wav = world.caller_audio(8000, total_s=20.0)
        caller = await world.phone("caller", source=caller_wav)
        await caller.command("dial", f"sip:3230@127.0.0.1:{endpoint.sip_port}")
        await advisor.wait_event("CALL_INCOMING", timeout_s=10)
        return await asyncio.wait_for(handler.results.get(), 15), handler

    result, handler = world.run(scenario())
    assert (result.outcome, result.sip_status) == (TransferOutcome.TIMEOUT, 0)
    assert handler.state_after is CallState.ANSWERED


def test_refused_refer_falls_back_to_bridging_the_advisor(world):
    async def scenario():
        advisor = await world.phone("conseiller", source=world.advisor_audio(), answermode="auto")
        handler = TransferHandler()
        endpoint = await world.endpoint(handler, advisor_uri=advisor.uri)
        # The question starts 3 s into the call: the bridge is up by then even on a loaded
        # machine, so the advisor can hear all of it.
        question, wav = world.caller_audio(16000, total_s=10.0, lead_s=3.0)
        caller = await world.pjsua_phone(f"sip:3230@127.0.0.1:{endpoint.sip_port}", wav,
                                         "--refuse-refer")
        await caller.wait_event("refer_refused")
        incoming = await advisor.wait_event("CALL_ESTABLISHED", timeout_s=10)
        result = await asyncio.wait_for(handler.results.get(), 10)
        leg = handler.legs[0]
        assert leg.bridged and endpoint.active_calls == 1
        await asyncio.sleep(3.0 + question.duration_ms / 1000 + 1.5)  # the question crosses
        await advisor.command("hangup")  # the advisor ends: the caller's leg follows
        await asyncio.wait_for(leg.ended.wait(), 5)
        await caller.wait_event("disconnected")
        await advisor.stop()
        return result, incoming, question, advisor, endpoint

    result, incoming, question, advisor, endpoint = world.run(scenario())
    assert result.outcome is TransferOutcome.ACCEPTED
    assert (result.method, result.sip_status, result.refer_status) == ("bridge", 200, 603)
    assert "allo-caf@127.0.0.1" in incoming["peeruri"]  # the bot calls the advisor
    assert endpoint.active_calls == 0
    score, _ = match(question, advisor.received_audio())
    assert score > 0.85, f"the advisor did not hear the caller through the bridge ({score:.2f})"


def test_refused_refer_without_fallback_is_refused(world):
    async def scenario():
        handler = TransferHandler()
        endpoint = await world.endpoint(handler, transfer_fallback="none")
        _, wav = world.caller_audio(16000, total_s=6.0)
        caller = await world.pjsua_phone(f"sip:3230@127.0.0.1:{endpoint.sip_port}", wav,
                                         "--refuse-refer")
        await caller.wait_event("refer_refused")
        return await asyncio.wait_for(handler.results.get(), 10), handler

    result, handler = world.run(scenario())
    assert (result.outcome, result.method, result.sip_status) == (
        TransferOutcome.REFUSED, "refer", 603)
    assert handler.state_after is CallState.ANSWERED
