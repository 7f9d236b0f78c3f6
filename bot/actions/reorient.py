"""Say where a question is handled: the caller's own file (Mon Compte, an advisor) or another body."""

from __future__ import annotations

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from bot.actions.base import KbAction, selected_entry, turn_motif, understood

# The bot has no access to personal files, by design: for these it offers an advisor.
OFFERS_ADVISOR = frozenset({"dossier_personnel"})


class ActionReorient(KbAction):
    action_name = "action_reorient"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict) -> list:
        motif = turn_motif(tracker)
        entry = selected_entry(tracker, self.kb, motif)
        answer = entry.answer if entry and entry.answer else self.message("clarify")
        offer = motif in OFFERS_ADVISOR
        follow_up = self.message("advisor_offer" if offer else "anything_else")
        self.reply(dispatcher, tracker, answer, follow_up, action="reorient", motif=motif, entry=entry)
        return understood(motif, reply_text=answer, advisor_offered=offer)
