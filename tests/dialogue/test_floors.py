"""A caller is never dropped, transferred or answered on a guess: the confidence floors.

Each action has a floor in ``DialogueOptions`` (bot/actions/floors.py). A turn under it is
handled as not understood: the caller is asked to rephrase, and a second time goes to an
advisor. Each floor is tested the same way on the session's real trained model: a phrase
that, with the shipped floors, gets its action, gets a request to rephrase from a second
dialogue core whose only difference is that floor set to 1.0 (no classifier is that sure).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import pytest

from bot import settings as settings_module

_ids = itertools.count()


@dataclass
class Call:
    """One phone call on a given dialogue core."""

    dialogue: object
    run: object
    id: str = ""

    def __post_init__(self) -> None:
        self.id = f"floor-call-{next(_ids)}"

    def say(self, text: str):
        return self.run(self.dialogue.respond(self.id, text))


@pytest.fixture
def call(dialogue, event_loop_runner):
    made: list[Call] = []

    def make(core=None) -> Call:
        made.append(Call(core or dialogue, event_loop_runner))
        return made[-1]

    yield make
    for one in made:
        event_loop_runner(one.dialogue.forget(one.id))


FLOORS = ("answer_confidence", "reorient_confidence", "handoff_confidence",
          "goodbye_confidence", "no_confidence", "yes_confidence", "small_talk_confidence")


@pytest.fixture(scope="module")
def strict(published_settings, event_loop_runner):
    """Dialogue cores on the same published base and model, one floor raised to 1.0 each."""
    from bot.dialogue import Dialogue

    cores = {}

    def core(floor: str):
        if floor not in cores:
            settings = settings_module.replace(published_settings, dialogue={floor: 1.0})
            cores[floor] = event_loop_runner(Dialogue.load(settings))
        return cores[floor]

    return core


# floor -> (what was said before, if anything; the phrase; the action and motif it gets)
CASES = {
    "answer_confidence": ((), "j'ai oublié mon mot de passe", ("answer", "mdp_oublie")),
    "reorient_confidence": ((), "vous pouvez regarder mon dossier",
                            ("reorient", "dossier_personnel")),
    "handoff_confidence": ((), "conseiller", ("handoff", "conseiller")),
    "goodbye_confidence": ((), "au revoir", ("dialogue", "au_revoir")),
    "no_confidence": (("j'ai oublié mon mot de passe",), "non", ("dialogue", "nier")),
    "yes_confidence": ((), "oui", ("dialogue", "affirmer")),
    "small_talk_confidence": ((), "bonjour", ("dialogue", "salutation")),
}


def test_every_floor_is_tested():
    assert set(CASES) == set(FLOORS)
    defaults = settings_module.DialogueOptions()
    assert all(0 < getattr(defaults, floor) < 1 for floor in FLOORS)


@pytest.mark.parametrize("floor", FLOORS)
def test_a_turn_under_its_actions_floor_is_not_acted_on(dialogue, strict, call, floor):
    before, phrase, (action, motif) = CASES[floor]
    shipped, raised = call(), call(strict(floor))
    for said in before:
        shipped.say(said)
        raised.say(said)

    reply = shipped.say(phrase)
    assert (reply.action, reply.motif) == (action, motif)
    assert reply.confidence >= getattr(settings_module.DialogueOptions(), floor)

    gated = raised.say(phrase)
    assert (gated.action, gated.motif, gated.end_call) == ("clarify", None, False)
    assert gated.text == dialogue.message("clarify")


def test_the_goodbye_floor_keeps_a_low_confidence_goodbye_on_the_line(strict, call):
    line = call(strict("goodbye_confidence"))
    assert line.say("au revoir").action == "clarify"
    second = line.say("au revoir")  # twice not understood: an advisor, never a silent drop
    assert (second.action, second.motif, second.end_call) == ("handoff", "conseiller", True)


@pytest.mark.parametrize("said", [
    "je comprends rien à votre site",
    "ça marche pas",
    "c'est n'importe quoi",
])
def test_a_frustrated_caller_gets_help_or_an_advisor_never_a_goodbye(call, said):
    line = call()
    line.say("j'ai oublié mon mot de passe")  # after an answer, where "non" would end the call
    reply = line.say(said)
    assert reply.action in ("answer", "reorient", "clarify", "handoff"), reply
    assert not (reply.end_call and reply.action == "dialogue"), reply


def test_frustration_words_block_a_confident_goodbye(call):
    """The classifier may be sure it heard a goodbye; a frustrated caller still stays."""
    line = call()
    line.say("j'ai oublié mon mot de passe")
    reply = line.say("laissez tomber au revoir")
    assert not (reply.end_call and reply.action == "dialogue"), reply
    plain = call()
    plain.say("j'ai oublié mon mot de passe")
    bye = plain.say("merci au revoir")
    assert (bye.action, bye.motif, bye.end_call) == ("dialogue", "au_revoir", True)
