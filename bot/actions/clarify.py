"""Ask the caller to rephrase once; the next misunderstanding in a row goes to an advisor."""

from __future__ import annotations

from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from bot.actions.base import KbAction, SnapshotSource

HANDOFF_MOTIF = "conseiller"  # a misunderstood caller is handed over like one who asked


class ActionClarify(KbAction):
    action_name = "action_clarify"

    def __init__(self, snapshots: SnapshotSource, max_misunderstandings: int):
        super().__init__(snapshots)
        self.max_misunderstandings = max_misunderstandings

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict) -> list:
        count = int(tracker.get_slot("misunderstandings") or 0) + 1
        if count >= self.max_misunderstandings:
            self.reply(dispatcher, tracker, self.message("handoff_misunderstood"), action="handoff",
                       motif=HANDOFF_MOTIF, end_call=True)
            return [SlotSet("misunderstandings", 0.0)]
        self.reply(dispatcher, tracker, self.message("clarify"), action="clarify", motif=None)
        return [SlotSet("misunderstandings", float(count)), SlotSet("advisor_offered", False)]
