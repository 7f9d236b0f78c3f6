"""What every action shares: the live knowledge base, and one way to reply.

Actions run in-process (see bot/dialogue.py) and read the published snapshot on each turn,
so the words they say are the editors' latest. Each reply carries, beside its text, the
turn's qualification (motif, action kind, entry) in a ``custom`` payload the dialogue layer
turns into a typed ``Reply``.
"""

from __future__ import annotations

from collections.abc import Callable

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from bot.kb.model import Entry, KnowledgeBase
from bot.kb.routing import EntryRouter
from bot.kb.store import Snapshot

SnapshotSource = Callable[[], Snapshot]
FALLBACK_INTENT = "nlu_fallback"
ENTRY_ENTITY = "fiche"  # set by the hand-off safety net (bot/dialogue.py), declared in domain.yml


class KbAction(Action):
    action_name = ""

    def __init__(self, snapshots: SnapshotSource):
        self.snapshots = snapshots

    def name(self) -> str:
        return self.action_name

    @property
    def kb(self) -> KnowledgeBase:
        return self.snapshots().kb

    def message(self, key: str) -> str:
        return self.kb.messages[key]

    def reply(
        self,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        *parts: str,
        action: str,
        motif: str | None,
        entry: Entry | None = None,
        end_call: bool = False,
        follow_up: str | None = None,
    ) -> None:
        """Say ``parts`` in order, then ``follow_up`` ("anything else?"): each is a text the
        audio cache holds on its own, so a composed reply still starts without synthesis.

        The follow-up is a question about what comes next, not part of the answer: the
        pipeline plays it as a message of its own, which SC3.2 billing does not measure
        (docs/ledger.md)."""
        texts = (*parts, follow_up) if follow_up else parts
        for part in texts[:-1]:
            dispatcher.utter_message(text=part)
        dispatcher.utter_message(
            text=texts[-1],
            json_message={
                "action": action,
                "motif": motif,
                "entry": entry.id if entry else None,
                "confidence": intent_confidence(tracker),
                "end_call": end_call,
                "follow_ups": 1 if follow_up else 0,
            },
        )


def turn_motif(tracker: Tracker) -> str:
    return tracker.latest_message.get("intent", {}).get("name") or ""


def intent_confidence(tracker: Tracker) -> float:
    """The classifier's confidence in its best real motif (not in the fallback itself)."""
    message = tracker.latest_message
    ranking = message.get("intent_ranking") or []
    for item in ranking:
        if item.get("name") != FALLBACK_INTENT:
            return round(float(item.get("confidence") or 0.0), 4)
    intent = message.get("intent", {})
    if intent.get("name") == FALLBACK_INTENT:  # sent as is: no word the base knows
        return 0.0
    return round(float(intent.get("confidence") or 0.0), 4)


def selected_entry(tracker: Tracker, kb: KnowledgeBase, motif: str) -> Entry | None:
    """The entry the hand-off safety net named, else the one of ``motif`` whose questions
    are nearest to what the caller said (bot/kb/routing.py)."""
    candidates = kb.entries_of(motif)
    if len(candidates) <= 1:
        return candidates[0] if candidates else None
    for entity in tracker.latest_message.get("entities") or []:  # named by the safety net
        if entity.get("entity") == ENTRY_ENTITY:
            named = kb.entry(str(entity.get("value")))
            if named is not None and named.motif == motif:
                return named
    return EntryRouter.of(kb).entry(motif, str(tracker.latest_message.get("text") or ""))


def understood(motif: str | None, reply_text: str | None = None,
               advisor_offered: bool = False) -> list:
    """Slot events after an understood turn: resets the misunderstanding count."""
    events: list = [SlotSet("misunderstandings", 0.0), SlotSet("advisor_offered", advisor_offered)]
    if motif is not None:
        events.append(SlotSet("last_motif", motif))
    if reply_text is not None:
        events.append(SlotSet("last_reply", reply_text))
    return events
