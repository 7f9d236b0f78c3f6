"""Conversation management: hello, thanks, yes, no, goodbye, "say that again".

These turns are qualified with their own dialogue motif; the call as a whole keeps the
motif of the caller's last real question (slot ``last_motif``).
"""

from __future__ import annotations

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from bot.actions.base import KbAction, turn_motif, understood
from bot.actions.clarify import HANDOFF_MOTIF
from bot.actions.reorient import DOSSIER_MOTIF


class ActionConversation(KbAction):
    action_name = "action_conversation"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict) -> list:
        motif = turn_motif(tracker)
        handler = getattr(self, f"on_{motif}", None)
        if handler is None:  # a dialogue motif the code does not know: treat as "go on"
            return self.say(dispatcher, tracker, motif, self.message("listening"))
        return handler(dispatcher, tracker, motif)

    def say(self, dispatcher: CollectingDispatcher, tracker: Tracker, motif: str, text: str,
            end_call: bool = False) -> list:
        self.reply(dispatcher, tracker, text, action="dialogue", motif=motif, end_call=end_call)
        return understood(None)

    def on_salutation(self, dispatcher, tracker, motif):
        return self.say(dispatcher, tracker, motif, self.message("greeting_reply"))

    def on_remerciement(self, dispatcher, tracker, motif):
        return self.say(dispatcher, tracker, motif, self.message("thanks"))

    def on_au_revoir(self, dispatcher, tracker, motif):
        return self.say(dispatcher, tracker, motif, self.message("goodbye"), end_call=True)

    def on_repeter(self, dispatcher, tracker, motif):
        last = tracker.get_slot("last_reply")
        if not last:
            return self.say(dispatcher, tracker, motif, self.message("nothing_to_repeat"))
        follow_up = "advisor_offer" if tracker.get_slot("advisor_offered") else "anything_else"
        self.reply(dispatcher, tracker, last, follow_up=self.message(follow_up), action="dialogue",
                   motif=motif)
        return understood(None, advisor_offered=bool(tracker.get_slot("advisor_offered")))

    def on_affirmer(self, dispatcher, tracker, motif):
        if tracker.get_slot("advisor_offered"):
            if tracker.get_slot("last_motif") == DOSSIER_MOTIF:  # the Caf's own service
                self.reply(dispatcher, tracker, self.message("dossier_personnel_handoff"),
                           action="handoff", motif=DOSSIER_MOTIF, end_call=True)
                return understood(DOSSIER_MOTIF)
            self.reply(dispatcher, tracker, self.message("handoff"), action="handoff",
                       motif=HANDOFF_MOTIF, end_call=True)
            return understood(HANDOFF_MOTIF)
        return self.say(dispatcher, tracker, motif, self.message("listening"))

    def on_nier(self, dispatcher, tracker, motif):
        if tracker.get_slot("last_motif") or tracker.get_slot("advisor_offered"):
            return self.say(dispatcher, tracker, motif, self.message("goodbye"), end_call=True)
        return self.say(dispatcher, tracker, motif, self.message("listening"))
