"""One node under stress, as the operator runs it: ``voicebot serve`` with real phones.

The node of this module has 3 SIP media workers (6 callers) and converses with 4 callers at
once; the 5th and 6th hear the saturation message and are transferred. Its speech engine
and a worker are killed with SIGKILL mid-call, as a crash would; callers must hear words,
never silence, and every call must reach the ledger. The last test drains the node.
"""

from __future__ import annotations

import asyncio
import io
import os
import re
import signal
import wave
from pathlib import Path

import numpy as np
import pytest
from audio_match import match, middle, padded
from node_service import NodeService, running_node

from bot.audio import AudioFrame, read_wav, resample
from bot.settings import PROJECT_ROOT, Settings
from ledger.api import Ledger
from ledger.recordings import RecordingVault
from tts.fallback import FallbackAudio
from tts.speaker import Speaker

DATA = PROJECT_ROOT / "tests" / "data" / "telephony"
SAME_AUDIO = 0.85  # codec round trip ≥ 0.94, other speech ≈ 0.1 (test_sip_calls.py)
MAX_CALLS = 4


@pytest.fixture(scope="module")
def node(published_settings: Settings, tmp_path_factory: pytest.TempPathFactory):
    with running_node(published_settings, tmp_path_factory.mktemp("node"), workers=3,
                      max_calls=MAX_CALLS, extra_calls=2) as service:
        yield service


@pytest.fixture(scope="module")
def prompts(published_settings: Settings):
    """The audio a caller may hear, as the node pre-rendered it."""
    speaker = Speaker.load(published_settings)
    messages = _messages(published_settings)
    fallback = FallbackAudio(published_settings.paths.state_dir)
    return {"greeting": speaker.cached(messages["greeting"]),
            "saturation": speaker.cached(messages["saturation"]),
            "apology": fallback.audio("error_apology")}


def _messages(settings: Settings) -> dict[str, str]:
    from bot.kb.store import KbStore

    return KbStore(settings.paths.state_dir).current().kb.messages


def silence(world, name: str, seconds: float) -> Path:
    """A caller who says nothing; baresip hangs up when the file ends."""
    return world.wav(name, AudioFrame(b"\0" * int(seconds * 8000) * 2, 8000))


async def advisor_phone(world, node: NodeService):
    wav = world.wav("advisor.wav", padded(read_wav(DATA / "bot_greeting_8k.wav"), 0.2, 60))
    return await world.phone("conseiller", source=wav, answermode="auto",
                             sip_port=node.advisor_port)


def heard(phone, prompt: AudioFrame) -> float:
    """How surely the phone's first call contains ``prompt`` (1: the very waveform)."""
    return match(prompt, phone.received_audio(0))[0]


def test_six_callers_at_once_none_busy_two_saturated_and_transferred(world, node, prompts):
    greeting, saturation = prompts["greeting"], prompts["saturation"]
    length_s = greeting.duration_ms / 1000 + 8

    async def scenario():
        advisor = await advisor_phone(world, node)
        phones = [await world.phone(f"caller{i}", source=silence(world, f"c{i}.wav", length_s))
                  for i in range(6)]
        await asyncio.gather(*(p.command("dial", node.uri) for p in phones))
        events = await asyncio.gather(*(p.wait_event("CALL_ESTABLISHED", "CALL_CLOSED",
                                                     timeout_s=15) for p in phones))
        closed = await asyncio.gather(*(p.wait_event("CALL_CLOSED", timeout_s=length_s + 30)
                                        for p in phones))
        rows = [await node.ledger_row(e["id"]) for e in events if e["type"] == "CALL_ESTABLISHED"]
        for phone in phones:
            await phone.stop()
        await advisor.stop()
        return events, closed, rows, phones

    events, closed, rows, phones = world.run(scenario())
    assert [e["type"] for e in events] == ["CALL_ESTABLISHED"] * 6, \
        [e.get("param") for e in events]
    greeted = [p for p in phones if heard(p, greeting) > SAME_AUDIO]
    saturated = [p for p in phones if heard(p, middle(saturation)) > SAME_AUDIO]
    assert len(greeted) == MAX_CALLS and len(saturated) == 6 - MAX_CALLS
    assert len(rows) == 6
    assert sum(row["handoff"] == "true" for row in rows) == 6 - MAX_CALLS


def test_health_and_metrics_cover_the_whole_node(node):
    status, body = node.health()
    assert status == 200 and body["status"] == "ok", body
    assert body["workers_alive"] == 4 and body["capacity"] == 6  # 3 workers and the rescue
    assert body["engine"]["up"] and body["engine"]["workers_linked"] == 4
    assert [(w["name"], w["sip_port"]) for w in body["workers"]] == [
        ("worker-0", node.sip_port + 1), ("worker-1", node.sip_port + 2),
        ("worker-2", node.sip_port + 3), ("rescue", node.sip_port + 4)]
    assert body["kamailio"]["up"] and body["kamailio"]["sip_port"] == node.sip_port
    text = node.metrics()
    assert "allo_caf_workers_alive 4\n" in text
    assert "allo_caf_engine_up 1\n" in text
    assert re.search(r'^allo_caf_worker_calls\{worker="worker-2"\} 0$', text, re.M)
    assert re.search(r'^allo_caf_calls_total\{outcome="handoff"\} [1-9]', text, re.M)
    for name in ("allo_caf_asr_queue_depth", "allo_caf_asr_queue_wait_seconds_bucket",
                 "allo_caf_asr_seconds_bucket"):
        assert name in text, f"{name} missing from /metrics"


def test_a_call_is_recorded_on_two_channels_sealed_and_found_through_the_ledger(
        world, node, prompts, published_settings):
    """The caller's question on the left, the greeting the caller heard on the right; the
    file on disk is ciphertext, opened only through the ledger with the deployment key."""
    greeting = prompts["greeting"]
    question = resample(read_wav(DATA / "caller_question_16k.wav"), 8000)
    lead_s = greeting.duration_ms / 1000 + 1.5
    source = padded(question, lead_s, lead_s + question.duration_ms / 1000 + 4)

    async def scenario():
        phone = await world.phone("recorded", source=world.wav("recorded.wav", source))
        await phone.command("dial", node.uri)
        call = await phone.wait_event("CALL_ESTABLISHED")
        await phone.wait_event("CALL_CLOSED", timeout_s=source.duration_ms / 1000 + 60)
        await phone.stop()
        return await node.ledger_row(call["id"]), call["id"]

    row, call_id = world.run(scenario())
    ledger = Ledger.open(published_settings, replay_spool=False)
    try:
        vault = RecordingVault.for_ledger(ledger, published_settings.paths.state_dir)
        path = vault.find(call_id)
        assert path is not None and path.is_file(), row
        assert b"RIFF" not in path.read_bytes() and (path.stat().st_mode & 0o077) == 0
        with wave.open(io.BytesIO(vault.open_wav(call_id))) as wav:
            assert (wav.getnchannels(), wav.getframerate()) == (2, 8000)
            stereo = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").reshape(-1, 2)
    finally:
        ledger.close()
    caller, bot = (AudioFrame(np.ascontiguousarray(stereo[:, i]).tobytes(), 8000)
                   for i in (0, 1))
    assert match(middle(question, 0.3), caller)[0] > SAME_AUDIO
    assert match(greeting, bot)[0] > SAME_AUDIO
    assert match(greeting, caller)[0] < 0.5  # no echo of the bot on the caller's side
    assert abs(len(stereo) / 8000 - source.duration_ms / 1000) < 3.0


def test_engine_killed_mid_call_callers_hear_the_apology_and_reach_an_advisor(world, node,
                                                                             prompts):
    apology = prompts["apology"]

    async def scenario():
        advisor = await advisor_phone(world, node)
        first = await world.phone("first", source=silence(world, "first.wav", 60))
        await first.command("dial", node.uri)
        one = await first.wait_event("CALL_ESTABLISHED")
        _, body = await asyncio.to_thread(node.health)
        await asyncio.sleep(2.0)  # the greeting is playing: the crash comes mid-sentence
        os.kill(body["engine"]["pid"], signal.SIGKILL)
        first_reached = await advisor.wait_event("CALL_ESTABLISHED", timeout_s=20)
        await first.command("hangup")  # the advisor's phone takes one call at a time
        await advisor.wait_event("CALL_CLOSED", timeout_s=10)
        # The engine is reloading its models now: a new caller is still answered by the
        # node's last resort, apologised to and transferred, never refused.
        second = await world.phone("second", source=silence(world, "second.wav", 60))
        await second.command("dial", node.uri)
        two = await second.wait_event("CALL_ESTABLISHED", "CALL_CLOSED", timeout_s=15)
        second_reached = await advisor.wait_event("CALL_ESTABLISHED", timeout_s=20)
        rows = [await node.ledger_row(one["id"]),
                await node.ledger_row(two["id"]) if two["type"] == "CALL_ESTABLISHED" else {}]
        back = await node.wait_health(
            lambda b: b["engine"]["up"] and b["engine"]["restarts"] >= 1
            and b["engine"]["workers_linked"] == 4, 240, "the engine restarted")
        for phone in (first, second, advisor):
            await phone.stop()
        return first, second, two, first_reached, second_reached, rows, back

    first, second, two, first_reached, second_reached, rows, back = world.run(scenario(), 400)
    assert "first@127.0.0.1" in first_reached["peeruri"]
    assert two["type"] == "CALL_ESTABLISHED", two.get("param")
    assert "second@127.0.0.1" in second_reached["peeruri"]
    assert heard(first, middle(apology)) > SAME_AUDIO
    assert heard(second, middle(apology)) > SAME_AUDIO
    for row in rows:
        assert row["handoff"] == "true" and row["motif"] == "conseiller", row
    assert back["status"] == "ok"


def test_a_killed_worker_loses_only_its_call_and_comes_back(world, node, prompts):
    greeting = prompts["greeting"]

    async def scenario():
        caller = await world.phone("victim", source=silence(world, "victim.wav", 40))
        await caller.command("dial", node.uri)
        established = await caller.wait_event("CALL_ESTABLISHED")
        body = await node.wait_health(lambda b: any(w["calls"] for w in b["workers"]), 10,
                                      "the call on a worker")
        victim = next(w for w in body["workers"] if w["calls"])
        os.kill(victim["pid"], signal.SIGKILL)
        row = await node.ledger_row(established["id"])  # the engine still writes it
        back = await node.wait_health(
            lambda b: all(w["alive"] for w in b["workers"])
            and any(w["restarts"] for w in b["workers"]), 60, "the worker restarted")
        after = await world.phone("after", source=silence(world, "after.wav", 6))
        await after.command("dial", node.uri)
        answered = await after.wait_event("CALL_ESTABLISHED", "CALL_CLOSED", timeout_s=15)
        await after.wait_event("CALL_CLOSED", timeout_s=30)
        await caller.stop()
        await after.stop()
        return victim, row, back, answered, after

    victim, row, back, answered, after = world.run(scenario(), 200)
    restarted = next(w for w in back["workers"] if w["name"] == victim["name"])
    assert restarted["restarts"] == 1 and restarted["pid"] != victim["pid"]
    assert row["handoff"] == "false"
    assert answered["type"] == "CALL_ESTABLISHED"
    assert heard(after, _head(greeting, 3.0)) > SAME_AUDIO


def _head(audio: AudioFrame, seconds: float) -> AudioFrame:
    return AudioFrame(audio.pcm[: int(seconds * audio.sample_rate) * 2], audio.sample_rate)


def test_draining_finishes_the_call_in_progress_and_refuses_new_ones(world, node, prompts):
    """Last of the module: the node is stopped by it."""
    greeting = prompts["greeting"]
    length_s = greeting.duration_ms / 1000 + 4

    async def scenario():
        staying = await world.phone("staying", source=silence(world, "staying.wav", length_s))
        await staying.command("dial", node.uri)
        established = await staying.wait_event("CALL_ESTABLISHED")
        await asyncio.sleep(1.0)  # well inside the greeting
        node.process.send_signal(signal.SIGTERM)
        draining = await node.wait_health(lambda b: b["draining"], 10, "the drain")
        late = await world.phone("late", source=silence(world, "late.wav", 5))
        await late.command("dial", node.uri)
        refused = await late.wait_event("CALL_ESTABLISHED", "CALL_CLOSED", timeout_s=15)
        closed = await staying.wait_event("CALL_CLOSED", timeout_s=length_s + 20)
        code = await asyncio.to_thread(node.process.wait, 60)
        await staying.stop()
        await late.stop()
        return established, draining, refused, closed, code, staying

    established, draining, refused, closed, code, staying = world.run(scenario())
    assert draining["status"] == "draining"
    assert refused["type"] == "CALL_CLOSED" and "503" in refused["param"], refused
    assert closed["param"] == "end of file"  # the caller, not the node, ended the call
    assert heard(staying, greeting) > SAME_AUDIO
    assert code == 0
    assert established["id"] in node.ledger_rows()
