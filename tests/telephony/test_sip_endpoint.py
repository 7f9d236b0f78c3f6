"""The endpoint around the calls: failing handlers, saturation, graceful stop, caller identity."""

from __future__ import annotations

import asyncio
import socket

import pytest
from audio_match import match
from test_sip_calls import SAME_AUDIO, RecordingHandler

from telephony_adapter.pjsip_agent import SipStartError
from telephony_adapter.sip import CallLeg, SipEndpoint


class Switchboard:
    """Routes each call to the next handler in a list, and remembers the legs."""

    def __init__(self, *handlers):
        self.handlers = list(handlers)
        self.legs: list[CallLeg] = []
        self.arrived: asyncio.Queue[CallLeg] = asyncio.Queue()

    async def __call__(self, leg: CallLeg) -> None:
        self.legs.append(leg)
        self.arrived.put_nowait(leg)
        await self.handlers.pop(0)(leg)


async def failing_handler(leg: CallLeg) -> None:
    await leg.answer()
    raise RuntimeError("the call flow crashed")


async def short_handler(leg: CallLeg) -> None:
    await leg.answer()
    await leg.hangup()


def test_a_failing_handler_ends_its_call_and_spares_the_others(world, greeting):
    steady = RecordingHandler(greeting)
    board = Switchboard(steady, failing_handler)

    async def scenario():
        endpoint = await world.endpoint(board)
        _, wav = world.caller_audio(8000, total_s=7.0)
        steady_phone = await world.phone("steady", source=wav)
        await steady_phone.command("dial", f"sip:3230@127.0.0.1:{endpoint.sip_port}")
        await board.arrived.get()
        crashing_phone = await world.phone("crashing", source=wav)
        await crashing_phone.command("dial", f"sip:3230@127.0.0.1:{endpoint.sip_port}")
        await crashing_phone.wait_event("CALL_CLOSED", timeout_s=10)  # hung up by the bot
        await steady_phone.wait_event("CALL_CLOSED", timeout_s=15)
        await asyncio.wait_for(steady.done.wait(), 5)
        await steady_phone.stop()
        return steady_phone, endpoint

    steady_phone, endpoint = world.run(scenario())
    crashed = board.legs[1]
    assert crashed.ended.is_set() and not crashed.ended_by_caller
    assert steady.playback.result().listened_ms == greeting.duration_ms
    assert match(greeting, steady_phone.received_audio())[0] > SAME_AUDIO
    assert endpoint.active_calls == 0


def test_calls_above_max_calls_still_reach_the_handler_flagged(world, greeting):
    first = RecordingHandler(greeting)
    board = Switchboard(first, short_handler)

    async def scenario():
        endpoint = await world.endpoint(board, max_calls=1)
        _, wav = world.caller_audio(8000, total_s=6.0)
        one = await world.phone("one", source=wav)
        await one.command("dial", f"sip:3230@127.0.0.1:{endpoint.sip_port}")
        await board.arrived.get()
        in_progress = endpoint.active_calls
        two = await world.phone("two", source=wav)
        await two.command("dial", f"sip:3230@127.0.0.1:{endpoint.sip_port}")
        await two.wait_event("CALL_ESTABLISHED")  # answered, not left ringing
        await two.wait_event("CALL_CLOSED")
        await one.wait_event("CALL_CLOSED", timeout_s=15)
        return in_progress

    assert world.run(scenario()) == 1
    assert [leg.over_capacity for leg in board.legs] == [False, True]
    assert not board.legs[1].ended_by_caller


def test_graceful_stop_refuses_new_calls_and_lets_the_current_one_finish(world, greeting):
    current = RecordingHandler(greeting)
    board = Switchboard(current)

    async def scenario():
        endpoint = await world.endpoint(board)
        _, wav = world.caller_audio(8000, total_s=6.0)
        one = await world.phone("one", source=wav)
        await one.command("dial", f"sip:3230@127.0.0.1:{endpoint.sip_port}")
        await board.arrived.get()
        stopping = asyncio.create_task(endpoint.stop(grace_ms=20000))
        await asyncio.sleep(0)  # let stop() start draining
        late = await world.phone("late", source=wav)
        await late.command("dial", f"sip:3230@127.0.0.1:{endpoint.sip_port}")
        refused = await late.wait_event("CALL_CLOSED", timeout_s=10)
        assert not stopping.done()  # still waiting for the call in progress
        await one.wait_event("CALL_CLOSED", timeout_s=15)
        await asyncio.wait_for(stopping, 10)
        world.endpoints.remove(endpoint)
        return refused

    refused = world.run(scenario())
    assert "503" in refused["param"]
    assert len(board.legs) == 1  # the late call never reached the call flow
    assert current.playback.result().listened_ms == greeting.duration_ms


def test_port_already_taken_is_reported_in_french(world):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as squatter:
        squatter.bind(("127.0.0.1", 0))
        port = squatter.getsockname()[1]
        endpoint = SipEndpoint(world.options(sip_port=port), short_handler)
        with pytest.raises(SipStartError) as caught:
            world.run(endpoint.start())
    assert str(caught.value).startswith(f"Impossible d'ouvrir SIP/UDP sur 127.0.0.1:{port} (")
    assert str(caught.value).endswith(") ; port déjà pris ?")


def test_unknown_transfer_fallback_is_reported_in_french(world):
    endpoint = SipEndpoint(world.options(transfer_fallback="redirect302"), short_handler)
    with pytest.raises(SipStartError) as caught:
        world.run(endpoint.start())
    assert str(caught.value) == (
        "TelephonyOptions.transfer_fallback : « redirect302 » inconnu ; choix possibles : "
        "bridge, none."
    )
