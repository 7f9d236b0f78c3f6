"""Turn-taking as a caller lives it: real Whisper, real dialogue, real audio, a clocked line.

The caller's words are human recordings (tests/data/asr); what the bot says is its
pre-rendered audio. Each test checks what a caller would notice (was the bot cut, did it
answer, was the call handed over) and the ``message_ms``/``listened_ms`` pair that billing
reads.
"""

from __future__ import annotations

import dataclasses

from clocked_line import ClockedLine, converse, messages

from bot.audio import read_wav
from bot.pipeline import Ending
from bot.settings import PROJECT_ROOT

ASR = PROJECT_ROOT / "tests" / "data" / "asr" / "fr"
QUESTION = read_wav(ASR / "conf-invalidpin.wav")  # « Ce code d'accès est invalide… »
SHORT_WORD = read_wav(ASR / "digits" / "1.wav")  # « un »: as short as « oui » or « hm »


def test_a_question_after_the_greeting_is_answered_and_heard_whole(voice_services, line,
                                                                   event_loop_runner):
    line.after("greeting", line.say(QUESTION))
    line.after("reply", line.hang_up)
    result = converse(voice_services, line, event_loop_runner, "answered")
    [answer] = messages(result, "reply")
    assert answer.action == "answer" and answer.motif, result.turns
    assert answer.listened_ms == answer.message_ms > 5000
    assert not answer.interrupted
    assert result.billed_message == answer
    assert result.motif == answer.motif
    turn = result.turns[0]
    assert turn.transcript and turn.asr_ms > 0 and turn.response_ms >= turn.asr_ms


def test_speaking_over_the_answer_stops_it_and_is_taken_as_the_next_turn(voice_services, line,
                                                                        event_loop_runner):
    line.after("greeting", line.say(QUESTION))
    line.during("reply", 3000, line.say(QUESTION))  # the caller asks again, over the answer
    line.after("reply", line.hang_up, nth=2)
    result = converse(voice_services, line, event_loop_runner, "barge-in")
    first, second = messages(result, "reply")
    assert first.interrupted and first.listened_ms < first.message_ms
    barge_in_ms = voice_services.settings.vad.barge_in_ms
    assert 3000 + barge_in_ms <= first.listened_ms < 3000 + QUESTION.duration_ms
    assert len(result.turns) == 2 and second.action == "answer"
    assert not second.interrupted and result.billed_message == second


def test_a_short_word_over_the_answer_does_not_cut_it(voice_services, line, event_loop_runner):
    line.after("greeting", line.say(QUESTION))
    line.during("reply", 3000, line.say(SHORT_WORD))
    line.after("reply", line.hang_up)
    result = converse(voice_services, line, event_loop_runner, "backchannel")
    [answer] = messages(result, "reply")
    assert not answer.interrupted and answer.listened_ms == answer.message_ms
    assert len(result.turns) == 1


def test_the_automated_assistant_notice_cannot_be_interrupted(voice_services, line,
                                                              event_loop_runner):
    line.during("greeting", 1000, line.say(QUESTION))
    line.after("greeting", line.hang_up)
    result = converse(voice_services, line, event_loop_runner, "greeting")
    [greeting] = messages(result, "greeting")
    assert not greeting.interrupted and greeting.listened_ms == greeting.message_ms
    assert result.turns == []  # words said over the notice are not a question


def test_hanging_up_mid_answer_records_what_was_heard(voice_services, line, event_loop_runner):
    line.after("greeting", line.say(QUESTION))
    line.during("reply", 4000, line.hang_up)
    result = converse(voice_services, line, event_loop_runner, "hang-up")
    billed = result.billed_message
    assert result.ending is Ending.HUNG_UP
    assert billed is not None and billed.interrupted
    assert 4000 <= billed.listened_ms <= 4100 < billed.message_ms


def test_silence_gets_a_prompt_then_an_advisor(voice_services, line, event_loop_runner):
    result = converse(voice_services, line, event_loop_runner, "silence")
    assert [m.key for m in result.messages] == ["greeting", "no_input", "no_input_handoff"]
    assert result.ending is Ending.HANDOFF and line.transfers == 1


def test_key_zero_works_during_the_greeting(voice_services, line, event_loop_runner):
    line.during("greeting", 1000, line.press("0"))
    result = converse(voice_services, line, event_loop_runner, "dtmf")
    assert messages(result, "greeting")[0].interrupted
    assert result.turns[0].reply.motif == "conseiller"
    assert result.ending is Ending.HANDOFF and line.transfers == 1


def test_a_failed_transfer_apologises_gives_the_hours_and_goes_on(voice_services, line,
                                                                  event_loop_runner):
    line.transfer_succeeds = False
    line.after("greeting", line.press("0"))
    line.after("transfer_failed", line.hang_up)
    result = converse(voice_services, line, event_loop_runner, "transfer-failed")
    assert [m.key for m in result.messages][-2:] == ["reply", "transfer_failed"]
    assert line.transfers == 1 and result.ending is Ending.HUNG_UP


class FaultyTranscriber:
    """A fake that injects the fault a crashed ASR model would cause: it always raises."""

    options = None
    device = "cpu"

    def transcribe(self, audio, prompt=None):
        raise RuntimeError("model crashed (injected)")


def test_a_crash_in_the_pipeline_apologises_and_hands_off(voice_services, line,
                                                         event_loop_runner):
    broken = dataclasses.replace(voice_services, transcriber=FaultyTranscriber())
    line.after("greeting", line.say(QUESTION))
    result = converse(broken, line, event_loop_runner, "crash")
    assert [m.key for m in result.messages] == ["greeting", "error_apology"]
    assert messages(result, "error_apology")[0].listened_ms > 0  # said, never dead air
    assert "model crashed" in result.error
    assert result.ending is Ending.HANDOFF and line.transfers == 1


def test_a_short_whole_question_does_not_wait_the_long_silence(voice_services,
                                                                event_loop_runner):
    """« …pour parler à un préposé » is 2.3 s of speech: short, so the turn would wait
    1.2 s of silence; its transcript at the first pause is a whole request (a hand-off
    trigger), so the ordinary 0.6 s applies. Real time: the judgement races the silence."""
    advisor_request = read_wav(PROJECT_ROOT / "tests" / "data" / "telephony"
                               / "advisor_request_8k.wav")

    async def make() -> ClockedLine:
        return ClockedLine(speed=1.0)

    line = event_loop_runner(make())
    line.after("greeting", line.say(advisor_request))
    line.after("reply", line.hang_up)
    result = converse(voice_services, line, event_loop_runner, "whole-question")
    [turn] = result.turns
    assert turn.reply.handoff, turn
    options = voice_services.settings.vad
    assert options.end_silence_ms <= turn.wait_ms < options.short_end_silence_ms, turn


def test_a_caller_who_talks_past_the_longest_utterance_is_understood_whole(voice_services,
                                                                         line,
                                                                         event_loop_runner):
    """With utterances capped at 4 s, a 7.3 s sentence is cut in a pause; the bot waits for
    the caller to stop and transcribes both pieces as one turn: the end is not lost."""
    long_speech = read_wav(ASR / "queue-periodic-announce.wav")  # « …vous répondra sous peu »
    vad = dataclasses.replace(voice_services.settings.vad, max_utterance_ms=4000)
    settings = dataclasses.replace(voice_services.settings, vad=vad)
    services = dataclasses.replace(voice_services, settings=settings)
    line.after("greeting", line.say(long_speech))
    line.after("reply", line.hang_up)
    result = converse(services, line, event_loop_runner, "long-utterance")
    [turn] = result.turns
    words = turn.transcript.lower()
    assert "représentant" in words and "répondra" in words, turn.transcript
    assert "occupé" in words or "occupe" in words, turn.transcript
