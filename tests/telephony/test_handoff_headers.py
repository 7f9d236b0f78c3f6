"""A hand-off tells the advisor what the call is about: motif, urgency and the caller's question
reach the advisor's side in SIP headers, after a REFER followed by the caller's own phone and
after the bridge fallback; urgent calls reach the priority queue.

The caller is pjsua2 in its own process (it follows REFER like an operator's SBC, or refuses
it); the advisor is ``SipPeer``, a plain SIP user agent that records every header it gets.
"""

from __future__ import annotations

import asyncio
import dataclasses
from urllib.parse import unquote

from sip_peer import SipPeer

from bot.pipeline import ConversationResult, Turn
from telephony_adapter.call import CallFlow
from telephony_adapter.handoff import Handoff, read_user_to_user
from telephony_adapter.http import CallMetrics
from telephony_adapter.sip import CallLeg, TransferResult

QUESTION = "j'ai reçu un courrier pour un trop-perçu et je ne peux pas rembourser"


class HandOver:
    """Answer, then hand the caller over with ``context`` once their audio flows."""

    def __init__(self, flow: CallFlow | None = None, context=None):
        self.flow = flow
        self.context = context
        self.results: asyncio.Queue[list[TransferResult]] = asyncio.Queue()

    async def __call__(self, leg: CallLeg) -> None:
        await leg.answer()
        await asyncio.wait_for(leg.media_ready.wait(), 10)
        transfers: list[TransferResult] = []
        context = await self.context() if callable(self.context) else self.context
        await self.flow._transfer(leg, transfers, context)
        self.results.put_nowait(transfers)
        if not leg.ended.is_set() and not leg.bridged:
            await leg.hangup()


async def urgent_conversation(voice_services, name: str) -> ConversationResult:
    """A conversation in which the real dialogue heard an urgent question."""
    reply = await voice_services.dialogue.respond(name, QUESTION)
    await voice_services.dialogue.forget(name)
    return ConversationResult(turns=[Turn(QUESTION, reply)])


def flow_for(world, services, **changes) -> CallFlow:
    settings = dataclasses.replace(services.settings, telephony=world.options(**changes))
    return CallFlow(dataclasses.replace(services, settings=settings), None, CallMetrics())


def context_headers(invite) -> tuple[str | None, str | None, str]:
    uui = invite.header("User-to-User")
    return (invite.header("X-Allo-Motif"), invite.header("X-Allo-Urgence"),
            read_user_to_user(uui) if uui else "")


def test_the_advisor_reached_by_refer_receives_motif_urgency_and_question(world,
                                                                          voice_services):
    async def scenario():
        advisor = await SipPeer("conseiller", answer_sdp=True).open()
        flow = flow_for(world, voice_services, advisor_uri=advisor.uri)
        handler = HandOver(flow, lambda: urgent_conversation(voice_services, "refer"))
        endpoint = await world.endpoint(handler, advisor_uri=advisor.uri)
        _, wav = world.caller_audio(8000, total_s=20.0)
        caller = await world.pjsua_phone(f"sip:3230@127.0.0.1:{endpoint.sip_port}", wav)
        followed = await caller.wait_event("refer_followed", timeout_s=30)
        await advisor.wait_for("INVITE", timeout_s=10)
        transfers = await asyncio.wait_for(handler.results.get(), 20)
        advisor.close()
        return followed, advisor.invites(), transfers

    followed, invites, transfers = world.run(scenario())
    target = followed["target"]
    assert target.startswith("<sip:127.0.0.1:") and target.endswith(">"), target
    assert "X-Allo-Motif=urgence" in target and "%3Bencoding%3Dhex" in target
    [invite] = invites
    assert "appelant@127.0.0.1" in invite.header("From")  # the caller's own phone calls
    assert context_headers(invite) == ("urgence", "oui", QUESTION)
    assert unquote(invite.header("User-to-User")).endswith(";encoding=hex")
    assert [(t.method, t.outcome.value) for t in transfers] == [("refer", "accepted")]


def test_the_bridged_advisor_receives_the_context_when_refer_is_refused(world, voice_services):
    async def scenario():
        advisor = await SipPeer("conseiller", answer_sdp=True).open()
        flow = flow_for(world, voice_services, advisor_uri=advisor.uri)
        context = ConversationResult()  # saturation, a failure: no question asked
        handler = HandOver(flow, context)
        endpoint = await world.endpoint(handler, advisor_uri=advisor.uri)
        _, wav = world.caller_audio(8000, total_s=20.0)
        caller = await world.pjsua_phone(f"sip:3230@127.0.0.1:{endpoint.sip_port}", wav,
                                         "--refuse-refer")
        await caller.wait_event("refer_refused", timeout_s=30)
        await advisor.wait_for("INVITE", timeout_s=10)
        transfers = await asyncio.wait_for(handler.results.get(), 20)
        advisor.close()
        return advisor.invites(), transfers

    invites, transfers = world.run(scenario())
    [invite] = invites
    assert "allo-caf@127.0.0.1" in invite.header("From")  # the bot calls the advisor itself
    assert context_headers(invite) == ("conseiller", "non", "")
    assert invite.header("User-to-User") is None
    assert [(t.method, t.outcome.value) for t in transfers] == [("bridge", "accepted")]


def test_an_urgent_call_goes_to_the_priority_queue_with_its_question(world, voice_services):
    async def scenario():
        advisors = await SipPeer("conseiller", answer_sdp=True).open()
        priority = await SipPeer("prioritaire", answer_sdp=True).open()
        options = {"advisor_uri": advisors.uri, "urgent_advisor_uri": priority.uri}
        flow = flow_for(world, voice_services, **options)
        handler = HandOver(flow, lambda: urgent_conversation(voice_services, "urgent"))
        endpoint = await world.endpoint(handler, **options)
        _, wav = world.caller_audio(8000, total_s=20.0)
        caller = await world.pjsua_phone(f"sip:3230@127.0.0.1:{endpoint.sip_port}", wav,
                                         "--refuse-refer")
        await caller.wait_event("refer_refused", timeout_s=30)
        await priority.wait_for("INVITE", timeout_s=10)
        transfers = await asyncio.wait_for(handler.results.get(), 20)
        advisors.close()
        priority.close()
        return advisors.invites(), priority.invites(), transfers

    ordinary, urgent, transfers = world.run(scenario())
    assert ordinary == []
    [invite] = urgent
    assert context_headers(invite) == ("urgence", "oui", QUESTION)
    assert transfers[0].outcome.value == "accepted"


def test_the_question_is_cut_to_128_bytes_on_a_character_boundary():
    long = "é" * 100 + " fin"  # 200 bytes of UTF-8 before the end
    handoff = Handoff("conseiller", False, long)
    text = read_user_to_user(handoff.headers()["User-to-User"])
    assert text == "é" * 64 and len(text.encode()) == 128
