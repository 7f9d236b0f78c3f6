"""Say where a question is handled: the caller's own file (the Caf's service) or another body.

Questions about the caller's own file belong to the Caf (CCTP §3.1–3.2: IVR choice 1,
« Mon compte », whose advisors can open the file, or a deferred call-back by a case
manager). Neither the bot nor the contractor's advisors can see it (§4.1), so the bot
never hands such a caller to a contractor advisor: it points to Mon Compte, then either
offers the transfer to the Caf's service, when one is configured
(``telephony.dossier_personnel_uri``), or says how to reach it (``dossier_personnel_route``).
"""

from __future__ import annotations

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from bot.actions.base import KbAction, SnapshotSource, selected_entry, turn_motif, understood

DOSSIER_MOTIF = "dossier_personnel"


class ActionReorient(KbAction):
    action_name = "action_reorient"

    def __init__(self, snapshots: SnapshotSource, dossier_transfer: bool = False):
        super().__init__(snapshots)
        self.dossier_transfer = dossier_transfer

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict) -> list:
        motif = turn_motif(tracker)
        entry = selected_entry(tracker, self.kb, motif)
        answer = entry.answer if entry and entry.answer else self.message("clarify")
        parts: tuple[str, ...] = (answer,)
        offer = motif == DOSSIER_MOTIF and self.dossier_transfer
        if motif == DOSSIER_MOTIF and not offer:
            parts = (answer, self.message("dossier_personnel_route"))
        follow_up = self.message("advisor_offer" if offer else "anything_else")
        self.reply(dispatcher, tracker, *parts, follow_up=follow_up, action="reorient",
                   motif=motif, entry=entry)
        return understood(motif, reply_text=" ".join(parts), advisor_offered=offer)
