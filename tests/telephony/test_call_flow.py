"""The call flow's paths that need no speech from the caller, on a real SIP endpoint in this
process: saturation with a supervisor's crisis notice, and a transfer that fails."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from audio_match import match, middle

from bot.pipeline import VoiceServices
from ledger import Outcome
from telephony_adapter.call import CallFlow
from telephony_adapter.http import CallMetrics

DATA = Path(__file__).resolve().parents[1] / "data" / "telephony"
SAME_AUDIO = 0.85
OPEN = "2026-11-23T10:00:00+01:00"  # a Monday morning
CRISIS = "Suite à un incident national, les paiements de ce mois auront deux jours de retard."


async def serve(world, services: VoiceServices, **changes):
    """Our SIP endpoint running the real call flow (no ledger) with these telephony options."""
    settings = dataclasses.replace(services.settings, telephony=world.options(**changes))
    flow = CallFlow(dataclasses.replace(services, settings=settings), None, CallMetrics())
    return flow, await world.endpoint(flow.handle, **changes)


def test_over_capacity_callers_hear_the_crisis_notice_and_saturation_then_reach_an_advisor(
        world, voice_services):
    crisis_file = world.workdir / "crise.txt"
    crisis_file.write_text(CRISIS + "\n", encoding="utf-8")
    saturation = voice_services.speaker.cached(
        voice_services.dialogue.snapshot.kb.messages["saturation"])

    async def scenario():
        advisor = await world.phone("conseiller", source=world.advisor_audio(),
                                    answermode="auto")
        flow, endpoint = await serve(world, voice_services, max_calls=0, advisor_uri=advisor.uri,
                                     crisis_message_file=crisis_file, now=OPEN)
        _, caller_wav = world.caller_audio(8000, total_s=60.0)
        caller = await world.phone("caller", source=caller_wav)
        await caller.command("dial", f"sip:3230@127.0.0.1:{endpoint.sip_port}")
        reached = await advisor.wait_event("CALL_ESTABLISHED", timeout_s=45)
        await caller.stop()
        return flow, reached, caller.received_audio(call=0)

    flow, reached, heard = world.run(scenario())
    [report] = flow.reports.values()
    assert report.outcome is Outcome.HANDOFF and report.handoff
    assert [t.outcome.value for t in report.transfers] == ["accepted"]
    assert "caller@127.0.0.1" in reached["peeruri"]
    assert match(middle(saturation), heard)[0] > SAME_AUDIO
    crisis = voice_services.speaker.cached(CRISIS)  # synthesised on the fly, then cached
    assert crisis is not None and match(middle(crisis), heard)[0] > SAME_AUDIO
    assert flow.metrics.calls["handoff"] == 1


def test_a_failed_transfer_is_followed_by_the_apology_with_the_hours(world, voice_services):
    """The caller's phone refuses REFER (603), the bridge fallback rings a busy advisor (486):
    the caller must then hear the apology with the advisors' hours, whole, never silence."""

    async def scenario():
        advisor = await world.phone("conseiller", source=world.advisor_audio())
        flow, endpoint = await serve(world, voice_services, max_calls=0, now=OPEN,
                                     advisor_uri=advisor.uri)
        _, wav = world.caller_audio(16000, total_s=50.0)
        caller = await world.pjsua_phone(f"sip:3230@127.0.0.1:{endpoint.sip_port}", wav,
                                         "--refuse-refer")
        await caller.wait_event("refer_refused", timeout_s=30)
        await advisor.wait_event("CALL_INCOMING", timeout_s=10)
        await advisor.command("hangup")  # baresip declines a ringing call with 486 Busy Here
        await caller.wait_event("disconnected", timeout_s=45)  # the bot ends after the apology
        return flow

    flow = world.run(scenario())
    [report] = flow.reports.values()
    assert not report.handoff
    assert [(t.method, t.outcome.value) for t in report.transfers] == [("bridge", "busy")]
    said = report.played[-1]
    assert said.message_id == "transfer_failed" and not said.interrupted
    assert said.listened_ms == said.message_ms > 5000  # all of it went out on RTP
