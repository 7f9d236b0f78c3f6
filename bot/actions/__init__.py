"""Custom actions, run in-process: one module per concern, registered here in one place."""

from __future__ import annotations

from rasa_sdk.executor import ActionExecutor

from bot.actions.answer import ActionAnswer
from bot.actions.base import SnapshotSource
from bot.actions.clarify import ActionClarify
from bot.actions.conversation import ActionConversation
from bot.actions.floors import FlooredExecutor
from bot.actions.handoff import ActionHandoff
from bot.actions.reorient import ActionReorient
from bot.settings import DialogueOptions


def build_executor(snapshots: SnapshotSource, max_misunderstandings: int,
                   dossier_transfer: bool = False,
                   floors: DialogueOptions | None = None) -> ActionExecutor:
    """``dossier_transfer``: a transfer to the Caf's own service is configured
    (``telephony.dossier_personnel_uri``), so questions about the caller's file offer it.
    ``floors``: the confidence each action needs (bot/actions/floors.py)."""
    executor = FlooredExecutor(floors or DialogueOptions(), snapshots)
    for action in (
        ActionAnswer(snapshots),
        ActionHandoff(snapshots),
        ActionReorient(snapshots, dossier_transfer),
        ActionClarify(snapshots, max_misunderstandings),
        ActionConversation(snapshots),
    ):
        executor.register_action(action)
    return executor
