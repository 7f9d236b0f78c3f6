"""Confidence floors: the bot never acts on a guess.

Rasa picks an action from the motif the classifier found; the ``FallbackClassifier``
(config.yml) already sends anything under its threshold to rephrasing. Some actions cost
more than others when the guess is wrong: a goodbye ends the call ("je comprends rien à
votre site" was once taken for a goodbye at 0.28), "non" after an answer ends it too, "oui"
after an advisor offer transfers the call. So each action has its own floor
(``DialogueOptions``); a turn under it is handled as not understood (``action_clarify``:
rephrase once, then an advisor), whatever the action would have been.

A caller whose words say frustration (``dialogue.frustration_words``: "ça marche pas",
"n'importe quoi", …) is never told goodbye either, however sure the classifier is.

An urgency the classifier found in a general question is not one: the words of "c'est quoi
une dette de la caf" or "le rsa est suspendu si je suis hospitalisé" are those of the
urgency's training questions, so the classifier says ``urgence`` although the editors'
exceptions (``sauf:``, bot/kb/triggers.py) say it is a general question and kept the
triggers silent. The turn then gets the best other motif the classifier ranked, if it is
sure enough for that action, and is otherwise handled as not understood; never a transfer.

The floors are applied where the in-process action server receives Rasa's call, so every
action keeps its own code and the tracker records what was really done.
"""

from __future__ import annotations

from typing import Any

from rasa_sdk.executor import ActionExecutor

from bot.actions.base import SnapshotSource
from bot.kb.model import MotifKind
from bot.kb.routing import EntryRouter
from bot.kb.triggers import TriggerIndex, TriggerRule, normalise, without_glue
from bot.settings import DialogueOptions

CLARIFY_ACTION = "action_clarify"
URGENCY_MOTIF = "urgence"
ACTION_OF_KIND = {MotifKind.FAQ: "action_answer", MotifKind.REORIENT: "action_reorient"}


def _conversation_floor(options: DialogueOptions, motif: str) -> float:
    return {
        "au_revoir": options.goodbye_confidence,
        "nier": options.no_confidence,
        "affirmer": options.yes_confidence,
    }.get(motif, options.small_talk_confidence)


def floor_for(options: DialogueOptions, action: str, motif: str) -> float | None:
    """The least confidence ``action`` needs for a turn of ``motif``; None: not gated."""
    if action == "action_conversation":
        return _conversation_floor(options, motif)
    return {
        "action_answer": options.answer_confidence,
        "action_reorient": options.reorient_confidence,
        "action_handoff": options.handoff_confidence,
    }.get(action)


def ends_call(action: str, motif: str, slots: dict[str, Any]) -> bool:
    """Whether this conversation action says goodbye (bot/actions/conversation.py)."""
    if action != "action_conversation":
        return False
    if motif == "au_revoir":
        return True
    return motif == "nier" and bool(slots.get("last_motif") or slots.get("advisor_offered"))


class FlooredExecutor(ActionExecutor):
    """The in-process action server, with the floors applied before an action runs."""

    def __init__(self, options: DialogueOptions, snapshots: SnapshotSource | None = None):
        super().__init__()
        self.options = options
        self.snapshots = snapshots
        self._frustration = [TriggerRule.of(word) for word in options.frustration_words
                             if normalise(word)]

    def frustrated(self, text: str) -> bool:
        normalised = normalise(text)
        bare = without_glue(normalised)
        return any(rule.found_in(normalised, bare) for rule in self._frustration)

    def gated(self, action_call: dict[str, Any]) -> str | None:
        """Why this action must not run (for the log), or None when it may."""
        action = action_call.get("next_action") or ""
        tracker = action_call.get("tracker") or {}
        message = tracker.get("latest_message") or {}
        intent = message.get("intent") or {}
        motif = str(intent.get("name") or "")
        floor = floor_for(self.options, action, motif)
        if floor is None:
            return None
        confidence = float(intent.get("confidence") or 0.0)
        if confidence < floor:
            return f"{motif} at {confidence:.2f} < {floor:.2f}"
        if ends_call(action, motif, tracker.get("slots") or {}) \
                and self.frustrated(str(message.get("text") or "")):
            return f"{motif}: frustration words, no goodbye"
        return None

    def general_question(self, action_call: dict[str, Any]) -> dict[str, Any] | None:
        """For a classifier's urgency said as a general question: the call to run instead
        (the best other motif ranked, or not understood). None when it is not one."""
        message = (action_call.get("tracker") or {}).get("latest_message") or {}
        intent = message.get("intent") or {}
        if action_call.get("next_action") != "action_handoff" or self.snapshots is None \
                or intent.get("name") != URGENCY_MOTIF or float(intent.get("confidence") or 0) >= 1:
            return None  # not the classifier's urgency (a trigger or a key says 1.0)
        kb = self.snapshots().kb
        text = str(message.get("text") or "")
        entry = EntryRouter.of(kb).entry(URGENCY_MOTIF, text)
        normalised = normalise(text)
        if entry is None or not kb.derived("trigger_index", TriggerIndex).excepted(
                entry, normalised, without_glue(normalised)):
            return None
        for other in message.get("intent_ranking") or []:
            motif = kb.motifs.get(str(other.get("name")))
            action = ACTION_OF_KIND.get(motif.kind) if motif else None
            if action and float(other.get("confidence") or 0) >= floor_for(self.options, action,
                                                                          motif.id):
                tracker = action_call["tracker"]
                chosen = {"name": motif.id, "confidence": other.get("confidence")}
                ranking = [chosen, *(r for r in message.get("intent_ranking") or ()
                                     if r.get("name") != motif.id)]
                latest = {**message, "intent": chosen, "intent_ranking": ranking}
                return {**action_call, "next_action": action,
                        "tracker": {**tracker, "latest_message": latest}}
        return {**action_call, "next_action": CLARIFY_ACTION}

    async def run(self, action_call: dict[str, Any]) -> dict[str, Any] | None:
        if action_call.get("next_action"):
            if self.gated(action_call):
                action_call = {**action_call, "next_action": CLARIFY_ACTION}
            else:
                action_call = self.general_question(action_call) or action_call
        return await super().run(action_call)
