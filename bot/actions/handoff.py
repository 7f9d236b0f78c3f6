"""Hand the caller to an advisor: on request, on urgency (debt, payments stopped, social
emergency)."""

from __future__ import annotations

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from bot.actions.base import KbAction, selected_entry, turn_motif, understood


class ActionHandoff(KbAction):
    action_name = "action_handoff"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict) -> list:
        motif = turn_motif(tracker)
        entry = selected_entry(tracker, self.kb, motif)
        text = entry.answer if entry and entry.answer else self.message("handoff")
        self.reply(dispatcher, tracker, text, action="handoff", motif=motif, entry=entry,
                   end_call=True)
        return understood(motif)
