"""The whole product on a phone line: ``voicebot serve`` called by real baresip phones.

One node for the module (Kamailio, SIP media workers, the speech engine with real Whisper,
real Rasa model, espeak audio pre-rendered at publish, SQLite ledger), on 127.0.0.1 only,
its clock frozen to an open Monday morning. What a caller hears is checked against the
bot's own pre-rendered audio after the codec round trip; what was billed is read back with
``voicebot ledger export``.
"""

from __future__ import annotations

import audioop
import random
import socket
import urllib.request
from pathlib import Path

import pytest
from audio_match import match, middle, padded
from node_service import OPEN_MONDAY, running_node

from bot.audio import AudioFrame, read_wav, resample, write_wav
from bot.settings import PROJECT_ROOT, Settings

ASR_DATA = PROJECT_ROOT / "tests" / "data" / "asr" / "fr"
DATA = PROJECT_ROOT / "tests" / "data" / "telephony"
QUESTION = ASR_DATA / "conf-invalidpin.wav"
"""A human voice: « Ce code d'accès est invalide pour cette conférence »."""
ADVISOR_REQUEST = DATA / "advisor_request_8k.wav"  # « …pour parler à un préposé »
SAME_AUDIO = 0.85  # see test_sip_calls.py: codec round trip ≥ 0.94, other speech ≈ 0.1


@pytest.fixture(scope="module")
def service(published_settings: Settings, tmp_path_factory: pytest.TempPathFactory):
    with running_node(published_settings, tmp_path_factory.mktemp("service")) as node:
        yield node


@pytest.fixture(scope="module")
def offline(voice_services, event_loop_runner):
    """What the pipeline makes of an audio file without any phone: checked before calling."""
    dialogue = voice_services.dialogue

    def understand(path: Path):
        async def run():  # heard as over the phones' G.711 μ-law line, not from the file
            transcript = await voice_services.transcribe(mu_law_round_trip(read_wav(path)))
            reply = await dialogue.respond(f"offline-{path.name}", transcript.text)
            await dialogue.forget(f"offline-{path.name}")
            return transcript.text, reply

        return event_loop_runner(run())

    understand.speaker = voice_services.speaker
    understand.messages = dialogue.snapshot.kb.messages
    return understand


def mu_law_round_trip(audio: AudioFrame) -> AudioFrame:
    """What a PCMU line delivers of ``audio`` (8 kHz): one word can differ from the file."""
    line = resample(audio, 8000)
    return AudioFrame(audioop.ulaw2lin(audioop.lin2ulaw(line.pcm, 2), 2), 8000)


def caller_file(world, name: str, speech: AudioFrame | None, after_greeting_s: float,
                tail_s: float, greeting_ms: int, rate: int = 8000) -> Path:
    """Silence through the greeting, the caller's words, then ``tail_s`` of silence: baresip
    hangs up when its file ends, so the file's length is when the caller hangs up. The
    file's rate is the codec's (8 kHz G.711, 16 kHz G.722)."""
    lead_s = greeting_ms / 1000 + after_greeting_s
    speech = resample(speech, rate) if speech else AudioFrame(b"", rate)
    audio = padded(speech, lead_s, lead_s + speech.duration_ms / 1000 + tail_s)
    path = world.workdir / name
    write_wav(path, audio)
    return path


def test_a_recorded_question_gets_its_spoken_answer_and_is_billed_whole(world, service, offline):
    text, expected = offline(QUESTION)
    assert expected.action == "answer", f"Whisper heard « {text} », the bot did not answer it"
    speaker = offline.speaker
    answer = speaker.cached(expected.parts[0])
    greeting = speaker.cached(offline.messages["greeting"])
    wav = caller_file(world, "question.wav", read_wav(QUESTION), 1.0,
                      tail_s=answer.duration_ms / 1000 + 8.0, greeting_ms=greeting.duration_ms)

    async def scenario():
        caller = await world.phone("0612345678", source=wav, codec="PCMU")  # From: a number
        await caller.command("dial", service.uri)
        established = await caller.wait_event("CALL_ESTABLISHED")
        await caller.wait_event("CALL_CLOSED", timeout_s=greeting.duration_ms / 1000
                                + answer.duration_ms / 1000 + 40)
        row = await service.ledger_row(established["id"])
        await caller.stop()
        return caller.received_audio(), row

    heard, row = world.run(scenario())
    assert match(greeting, heard)[0] > SAME_AUDIO, "the caller did not hear the greeting"
    score, _ = match(answer, heard)
    assert score > SAME_AUDIO, f"the caller did not hear the answer (score {score:.2f})"
    assert row["motif"] == expected.motif
    assert row["handoff"] == "false"
    assert float(row["message_s"]) >= answer.duration_ms / 1000
    assert row["listened_s"] == row["message_s"]
    assert row["caller"].startswith("pseudo:") and "612345678" not in row["caller"]


def test_hanging_up_mid_answer_over_g722_bills_what_was_heard(world, service, offline):
    _, expected = offline(QUESTION)
    speaker = offline.speaker
    greeting = speaker.cached(offline.messages["greeting"])
    wav = caller_file(world, "question16.wav", read_wav(QUESTION), 1.0, tail_s=9.0,
                      greeting_ms=greeting.duration_ms, rate=16000)

    async def scenario():
        caller = await world.phone("caller", source=wav, codec="G722")
        await caller.command("dial", service.uri)
        established = await caller.wait_event("CALL_ESTABLISHED")
        await caller.wait_event("CALL_CLOSED", timeout_s=greeting.duration_ms / 1000 + 40)
        return await service.ledger_row(established["id"])

    row = world.run(scenario())
    assert row["motif"] == expected.motif
    message_s, listened_s = float(row["message_s"]), float(row["listened_s"])
    assert 1.0 < listened_s < message_s, row
    assert 4 * listened_s < 3 * message_s  # not productive: under 75 % heard


async def call_until_transferred(world, service, caller_wav: Path, key: str | None = None,
                                 timeout_s: float = 60.0):
    """Call the service with an auto-answering advisor phone ready; return the advisor's
    CALL_ESTABLISHED event and the call's ledger row."""
    advisor_wav = world.wav("advisor.wav", padded(read_wav(DATA / "bot_greeting_8k.wav"), 0.2, 30))
    advisor = await world.phone("conseiller", source=advisor_wav, answermode="auto",
                                sip_port=service.advisor_port)
    caller = await world.phone("caller", source=caller_wav)
    await caller.command("dial", service.uri)
    established = await caller.wait_event("CALL_ESTABLISHED")
    if key is not None:
        await caller.command("sndcode", key)  # keys work from the first word of the greeting
    reached = await advisor.wait_event("CALL_ESTABLISHED", timeout_s=timeout_s)
    return reached, await service.ledger_row(established["id"])


def test_key_zero_reaches_the_advisor_even_after_garbage_on_the_port(world, service, offline):
    greeting = offline.speaker.cached(offline.messages["greeting"])
    _send_garbage(service.sip_port)
    with urllib.request.urlopen(f"http://127.0.0.1:{service.http_port}/health", timeout=5) as r:
        assert r.status == 200
    silence = caller_file(world, "silence.wav", None, 0, 40.0, greeting.duration_ms)
    reached, row = world.run(call_until_transferred(world, service, silence, key="0"))
    assert "caller@127.0.0.1" in reached["peeruri"]  # the caller now talks to the advisor
    assert row["handoff"] == "true" and row["motif"] == "conseiller"


def test_asking_for_an_advisor_aloud_transfers_by_refer(world, service, offline):
    text, expected = offline(ADVISOR_REQUEST)
    assert expected.handoff, f"Whisper heard « {text} », the bot did not hand off"
    greeting = offline.speaker.cached(offline.messages["greeting"])
    wav = caller_file(world, "advisor_request.wav", read_wav(ADVISOR_REQUEST), 1.0, 40.0,
                      greeting.duration_ms)
    reached, row = world.run(call_until_transferred(
        world, service, wav, timeout_s=greeting.duration_ms / 1000 + 30))
    assert "caller@127.0.0.1" in reached["peeruri"]
    assert row["handoff"] == "true" and row["motif"] == expected.motif


def test_a_closure_day_added_by_the_operator_plays_the_hours_and_hangs_up(world, service,
                                                                          offline):
    hours = offline.speaker.cached(offline.messages["out_of_hours"])
    wav = caller_file(world, "closed.wav", None, 0, hours.duration_ms / 1000 + 20, 0)
    service.closures.write_text(OPEN_MONDAY[:10] + "  # pont\n", encoding="utf-8")

    async def scenario():
        caller = await world.phone("caller", source=wav)
        await caller.command("dial", service.uri)
        established = await caller.wait_event("CALL_ESTABLISHED")
        closed = await caller.wait_event("CALL_CLOSED", timeout_s=hours.duration_ms / 1000 + 15)
        row = await service.ledger_row(established["id"])
        await caller.stop()
        return closed, caller.received_audio(), row

    try:
        closed, heard, row = world.run(scenario())
    finally:
        service.closures.write_text("", encoding="utf-8")
    assert closed["param"] != "end of file", "the bot, not the caller, must end the call"
    assert match(middle(hours), heard)[0] > SAME_AUDIO
    assert row["handoff"] == "false" and float(row["message_s"]) == 0.0


def _send_garbage(port: int) -> None:
    rng = random.Random(3230)
    payloads = [bytes(rng.randrange(256) for _ in range(rng.randrange(1, 1400)))
                for _ in range(30)]
    payloads += [b"INVITE sip:x SIP/2.0\r\n\r\n", b"SIP/2.0 200\r\nVia: ;;;\r\n\r\n",
                 b"\x80\x00" * 100]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        for payload in payloads:
            udp.sendto(payload, ("127.0.0.1", port))
    with socket.create_connection(("127.0.0.1", port), timeout=5) as tcp:
        tcp.sendall(b"\x00\xff" * 500 + b"OPTIONS * SIP/2.0\r\nContent-Length: -5\r\n\r\n")


def test_the_live_view_follows_a_call_and_its_statistics_reach_the_ledger(
        world, service, offline, published_settings):
    """While the caller is on the line, the node's /health lists the call with the motif of
    the question just understood (the supervisors' live view); after it, the call path has
    stored its turns and reply times for the dashboards."""
    from ledger.api import Ledger
    from ledger.stats import read_call

    text, expected = offline(QUESTION)
    assert expected.action == "answer", f"Whisper heard « {text} », the bot did not answer it"
    answer = offline.speaker.cached(expected.parts[0])
    greeting = offline.speaker.cached(offline.messages["greeting"])
    wav = caller_file(world, "live.wav", read_wav(QUESTION), 1.0,
                      tail_s=answer.duration_ms / 1000 + 6.0, greeting_ms=greeting.duration_ms)

    async def scenario():
        caller = await world.phone("live", source=wav, codec="PCMU")
        await caller.command("dial", service.uri)
        established = await caller.wait_event("CALL_ESTABLISHED")
        live = await service.wait_health(
            lambda b: any(c["call_id"] == established["id"] and c["motif"] == expected.motif
                          for c in b.get("live_calls", [])), 60, "the call's motif in /health")
        await caller.wait_event("CALL_CLOSED", timeout_s=greeting.duration_ms / 1000
                                + answer.duration_ms / 1000 + 40)
        await service.ledger_row(established["id"])
        after = await service.wait_health(
            lambda b: all(c["call_id"] != established["id"] for c in b["live_calls"]), 10,
            "the call gone from /health")
        await caller.stop()
        return established["id"], live, after

    call_id, live, after = world.run(scenario())
    [shown] = [c for c in live["live_calls"] if c["call_id"] == call_id]
    assert shown["worker"].startswith("worker-") and shown["turns"] >= 1
    assert 0 < shown["duration_s"] < 120
    assert live["calls_in_progress"] >= 1 and after["status"] == "ok"
    ledger = Ledger.open(published_settings, replay_spool=False)
    try:
        facts = read_call(ledger, call_id)
    finally:
        ledger.close()
    assert facts is not None and facts.stats is not None, "no statistics for the call"
    assert facts.stats.turns >= 1 and facts.stats.misunderstood_turns == 0
    assert len(facts.stats.reply_ms) == facts.stats.turns
    assert all(0 < ms < 10_000 for ms in facts.stats.reply_ms)
