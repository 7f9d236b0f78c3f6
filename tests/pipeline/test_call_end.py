"""How a call ends, as the caller lives it and as billing and supervisors read it: the answer is
billed without its follow-up question, the satisfaction question comes before a normal goodbye
(never before a hand-off), and a caller who hangs up mid-turn leaves no conversation behind.

Real Whisper, real dialogue, real audio, on the clocked line of ``test_turn_taking``.
"""

from __future__ import annotations

import asyncio
import dataclasses

from clocked_line import ClockedLine, converse, messages

from bot.audio import read_wav
from bot.pipeline import Ending
from bot.settings import PROJECT_ROOT

ASR = PROJECT_ROOT / "tests" / "data" / "asr" / "fr"
QUESTION = read_wav(ASR / "conf-invalidpin.wav")  # « Ce code d'accès est invalide… »


def test_hanging_up_during_the_follow_up_bills_the_answer_heard_whole(voice_services, line,
                                                                      event_loop_runner):
    line.after("greeting", line.say(QUESTION))
    line.after("reply", line.hang_up, delay_ms=400)  # « Avez-vous une autre… » *click*
    result = converse(voice_services, line, event_loop_runner, "follow-up-hang-up")
    [answer] = messages(result, "reply")
    [follow_up] = messages(result, "follow_up")
    assert result.ending is Ending.HUNG_UP
    assert answer.action == "answer" and not answer.interrupted
    assert answer.listened_ms == answer.message_ms > 5000
    assert follow_up.interrupted and 0 < follow_up.listened_ms < follow_up.message_ms
    assert follow_up.text == voice_services.dialogue.message("anything_else")
    assert result.billed_message == answer
    # The billed duration is the answer's alone: its own audio, not the question after it.
    spoken = voice_services.speaker.cached(answer.text)
    assert spoken is not None and answer.message_ms == spoken.duration_ms
    assert 4 * answer.listened_ms > 3 * answer.message_ms  # productive (SC3.2 rule 1)


def test_a_hand_off_is_never_preceded_by_the_satisfaction_question(voice_services, line,
                                                                   event_loop_runner):
    line.after("greeting", line.press("0"))
    result = converse(voice_services, line, event_loop_runner, "handed-off")
    assert result.ending is Ending.HANDOFF and line.transfers == 1
    assert not result.satisfaction_asked and messages(result, "satisfaction") == []


class HangUpDuringTurn:
    """The real dialogue, with the caller hanging up while it works on their words: the one
    moment a call can leave a tracker behind, made certain instead of a race."""

    def __init__(self, dialogue, line: ClockedLine):
        self._dialogue = dialogue
        self._line = line
        self.asked = 0

    def __getattr__(self, name):
        return getattr(self._dialogue, name)

    async def respond(self, conversation_id: str, text: str):
        self.asked += 1
        turn = asyncio.ensure_future(self._dialogue.respond(conversation_id, text))
        self._line.hang_up()  # heard by the conversation once the turn is on its way
        return await turn


def test_a_caller_who_hangs_up_mid_turn_leaves_no_tracker(voice_services, line,
                                                          event_loop_runner):
    dialogue = HangUpDuringTurn(voice_services.dialogue, line)
    services = dataclasses.replace(voice_services, dialogue=dialogue)
    trackers = voice_services.dialogue.trackers()  # sender id -> tracker, in memory
    assert trackers is not None
    before = set(trackers)
    line.after("greeting", line.say(QUESTION))
    result = converse(services, line, event_loop_runner, "gone-mid-turn")
    assert dialogue.asked == 1 and result.ending is Ending.HUNG_UP
    assert "gone-mid-turn" not in trackers
    assert set(trackers) <= before
