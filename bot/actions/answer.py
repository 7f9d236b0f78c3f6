"""Answer a FAQ motif from the knowledge base, then offer more help."""

from __future__ import annotations

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from bot.actions.base import KbAction, selected_entry, turn_motif, understood


class ActionAnswer(KbAction):
    action_name = "action_answer"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict) -> list:
        motif = turn_motif(tracker)
        entry = selected_entry(tracker, self.kb, motif)
        answer = entry.answer if entry and entry.answer else self.message("clarify")
        self.reply(dispatcher, tracker, answer, follow_up=self.message("anything_else"),
                   action="answer", motif=motif, entry=entry)
        return understood(motif, reply_text=answer)
