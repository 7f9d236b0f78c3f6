"""What a caller notices in a conversation, on the real model trained from knowledge/.

Each test is one call (its own conversation id) through ``Dialogue.respond`` /
``respond_dtmf``, with the session's trained model and published base (tests/conftest.py).
Phrasings are the editors' own training questions, or the safety net's trigger phrases,
so the assertions are about the dialogue, not about the classifier's accuracy (that is
benchmarks/nlu.py's job, on held-out phrasings).
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess

import pytest

from bot.settings import PROJECT_ROOT

_ids = itertools.count()


@pytest.fixture
def call(dialogue, event_loop_runner):
    """One phone call: ``call.say(text)``, ``call.press(digit)`` return the bot's Reply."""

    class Call:
        id = f"test-call-{next(_ids)}"

        def say(self, text: str):
            return event_loop_runner(dialogue.respond(self.id, text))

        def press(self, digit: str):
            return event_loop_runner(dialogue.respond_dtmf(self.id, digit))

    yield Call()
    event_loop_runner(dialogue.forget(Call.id))


def message(dialogue, key: str) -> str:
    return dialogue.message(key)


def answer_of(dialogue, entry_id: str) -> str:
    return dialogue.snapshot.kb.entry(entry_id).answer


def test_greeting_faq_answer_then_goodbye(dialogue, call):
    hello = call.say("bonjour")
    assert (hello.action, hello.motif, hello.end_call) == ("dialogue", "salutation", False)
    assert hello.text == message(dialogue, "greeting_reply")

    answer = call.say("j'ai oublié mon mot de passe")
    assert (answer.action, answer.motif, answer.end_call) == ("answer", "mdp_oublie", False)
    assert answer.parts == (answer_of(dialogue, "mdp_oublie_reinitialiser"),
                            message(dialogue, "anything_else"))
    assert answer.entry_id == "mdp_oublie_reinitialiser"
    assert answer.confidence > 0

    bye = call.say("non merci")
    assert bye.end_call
    assert bye.action == "dialogue" and bye.motif in ("nier", "au_revoir")
    assert bye.text == message(dialogue, "goodbye")


# Not understood: a string of non-words, then a bare hesitation. (Gibberish made of other
# letters may be taken as off-topic, which the dev set also labels nonsense like "la la la":
# the bot then says what it can answer, and that is not a misunderstanding.)
def test_two_misunderstandings_in_a_row_hand_off(dialogue, call):
    first = call.say("zkrv qxwj blorf")
    assert (first.action, first.motif, first.end_call) == ("clarify", None, False)
    assert first.text == message(dialogue, "clarify")
    second = call.say("alors euh")
    assert (second.action, second.motif, second.end_call) == ("handoff", "conseiller", True)
    assert second.text == message(dialogue, "handoff_misunderstood")


def test_an_understood_turn_resets_the_misunderstanding_count(dialogue, call):
    assert call.say("zkrv qxwj blorf").action == "clarify"
    assert call.say("j'ai oublié mon mot de passe").action == "answer"
    assert call.say("alors euh").action == "clarify"  # not a hand-off: the count restarted


@pytest.mark.parametrize(("text", "entry"), [
    ("on va m'expulser de mon appartement la semaine prochaine", "urgence_sociale"),
    ("mes allocations sont suspendues et je comprends pas", "urgence_rupture_droits"),
    ("j'ai reçu une lettre pour un trop-perçu", "urgence_indu_dette"),
])
def test_an_urgency_is_handed_off_by_the_safety_net(dialogue, call, text, entry):
    call.say("bonjour")
    reply = call.say(text)
    assert (reply.action, reply.motif, reply.end_call) == ("handoff", "urgence", True)
    assert reply.entry_id == entry
    assert reply.text == answer_of(dialogue, entry)  # the announcement fits the situation
    assert reply.confidence == 1.0


def test_an_explicit_request_for_a_person_is_handed_off(dialogue, call):
    reply = call.say("est-ce que je pourrais parler à un conseiller")
    assert (reply.action, reply.motif, reply.end_call) == ("handoff", "conseiller", True)


def test_personal_file_question_points_to_the_cafs_own_service(dialogue, call):
    """Nobody here can open the caller's file (CCTP §3.1, §4.1): no contractor advisor, the
    way to the Caf instead (choice 1, call-back), then "anything else?"."""
    reply = call.say("vous pouvez regarder mon dossier")
    assert (reply.action, reply.motif, reply.end_call) == ("reorient", "dossier_personnel", False)
    assert reply.answer_parts[-1] == message(dialogue, "dossier_personnel_route")
    assert reply.follow_up_parts == (message(dialogue, "anything_else"),)
    assert call.say("oui").action != "handoff"


def test_with_the_cafs_service_configured_yes_is_handed_to_it(dialogue, call):
    reorient = dialogue._executor.actions["action_reorient"].__self__
    reorient.dossier_transfer = True  # as telephony.dossier_personnel_uri set does
    try:
        offer = call.say("vous pouvez regarder mon dossier")
        accepted = call.say("oui")
    finally:
        reorient.dossier_transfer = False
    assert offer.follow_up_parts == (message(dialogue, "advisor_offer"),)
    assert message(dialogue, "dossier_personnel_route") not in offer.parts
    assert (accepted.action, accepted.motif, accepted.end_call) == (
        "handoff", "dossier_personnel", True)
    assert accepted.text == message(dialogue, "dossier_personnel_handoff")


def test_repeat_replays_the_last_answer(dialogue, call):
    answer = call.say("j'ai oublié mon mot de passe")
    again = call.say("répétez s'il vous plaît")
    assert (again.action, again.motif, again.end_call) == ("dialogue", "repeter", False)
    assert again.parts == answer.parts


def test_repeat_before_any_answer(dialogue, call):
    reply = call.say("répétez s'il vous plaît")
    assert reply.text == message(dialogue, "nothing_to_repeat")


def test_keypad_star_repeats_and_zero_hands_off(dialogue, call):
    answer = call.say("j'ai oublié mon mot de passe")
    again = call.press("*")
    assert (again.action, again.motif) == ("dialogue", "repeter")
    assert again.parts == answer.parts
    assert call.press("5") is None  # other keys mean nothing
    transfer = call.press("0")
    assert (transfer.action, transfer.motif, transfer.end_call) == ("handoff", "conseiller", True)
    assert transfer.confidence == 1.0


def test_voicebot_ask_prints_one_json_object_per_line(published_settings):
    env = dict(os.environ,
               VOICEBOT_PATHS_STATE_DIR=str(published_settings.paths.state_dir),
               VOICEBOT_PATHS_GENERATED_DIR=str(published_settings.paths.generated_dir))
    questions = ["j'ai oublié mon mot de passe", "", "mes allocations sont suspendues"]
    done = subprocess.run([str(PROJECT_ROOT / ".venv" / "bin" / "voicebot"), "ask"],
                          input="\n".join(questions) + "\n", capture_output=True, text=True,
                          env=env, cwd=PROJECT_ROOT, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert len(lines) == 2  # blank lines are skipped
    results = [json.loads(line) for line in lines]
    for result, text in zip(results,
                            ["j'ai oublié mon mot de passe", "mes allocations sont suspendues"],
                            strict=False):
        assert list(result) == ["input", "motif", "action", "confidence", "reply"]
        assert result["input"] == text
        assert isinstance(result["confidence"], float) and isinstance(result["reply"], str)
    assert (results[0]["motif"], results[0]["action"]) == ("mdp_oublie", "answer")
    assert (results[1]["motif"], results[1]["action"]) == ("urgence", "handoff")
