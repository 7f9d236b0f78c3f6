"""What callers of the ledger hand in (Interaction, AdvisorContact) and what a row holds.

An ``Interaction`` carries the raw caller number and the transcript in clear; both are
``repr=False`` so logging the object cannot leak them. A ``Row`` is what is stored:
pseudonymised caller, integer milliseconds, nothing personal in clear.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Any, NamedTuple

from ledger.rule import Channel

MIN_EPOCH_MS = 946_684_800_000  # 2000-01-01T00:00:00Z
MAX_EPOCH_MS = 4_102_444_800_000  # 2100-01-01T00:00:00Z
MOTIF_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
RESERVED_MOTIFS = frozenset({"total"})
"""Reports use ``total`` as the motif of their sum rows."""
MAX_CALL_ID = 255


class Outcome(str, Enum):
    """How a bot call ended, for reports; billing uses ``handoff`` and the durations only."""

    ANSWERED = "answered"
    """The bot gave its answer and the caller hung up or said goodbye."""
    HANDOFF = "handoff"
    """Transferred to an advisor."""
    REORIENTED = "reoriented"
    """Told where the question is handled (other service, other number)."""
    HANGUP = "hangup"
    """The caller hung up before the answer ended."""
    CLOSED = "closed"
    """Out of opening hours: told when advisors can be reached."""
    ERROR = "error"
    """The pipeline failed; the caller heard the apology and was transferred."""


class CallStats(NamedTuple):
    """Counted by the call path when the call ends; nothing personal (no words, no number)."""

    turns: int = 0
    """Caller turns that got a reply."""
    misunderstood_turns: int = 0
    """Turns the bot did not understand (asked to rephrase, or handed off for it)."""
    reply_ms: tuple[int, ...] = ()
    """Each turn's reply time: end of the caller's speech to the bot's first audio."""
    no_input_prompts: int = 0
    """Times the caller said nothing and was prompted again."""
    frustration_words: int = 0
    """Caller turns holding a frustration word (``dialogue.frustration_words``)."""


@dataclass(frozen=True, kw_only=True)
class Interaction:
    """One call handled by the bot, written once when the call ends.

    ``message_ms``/``listened_ms`` are those of the bot's last answer, the one that carries
    the call's ``motif`` (all its parts summed); greeting, legal notice, re-prompts and
    goodbye are not part of it. A call hung up before any answer has ``message_ms=0``.
    docs/ledger.md explains this choice.
    """

    call_id: str
    """Unique per call (the SIP Call-ID will do); the key that makes writes idempotent."""
    caller_number: str | None = field(repr=False)
    """As received; pseudonymised before anything is written. None or "anonymous" if withheld."""
    started_at: datetime
    """When the bot took the call (aware datetime)."""
    ended_at: datetime
    """When the call left the bot: hang-up or transfer (aware datetime)."""
    motif: str
    """Motif id of the last real question (knowledge/motifs.yml)."""
    message_ms: int
    """Duration of the bot's last answer."""
    listened_ms: int
    """How much of that answer reached the line before barge-in or hang-up."""
    handoff: bool
    """The call ended in a transfer to an advisor."""
    outcome: Outcome | None = None
    transcript: str | None = field(default=None, repr=False)
    """The conversation as text; stored encrypted, purged after the retention period."""
    recording_path: Path | None = None
    """An audio recording of the call, deleted by the retention purge."""
    stats: CallStats | None = None
    """Turns, reply times, misunderstandings for the supervisors' dashboards (not billing)."""
    satisfaction_asked: bool = False
    """The caller was asked the satisfaction question ("tapez de 1 à 5")."""
    satisfaction: int | None = None
    """The key the caller pressed, 1 to 5; None when none was (or the question not asked)."""


@dataclass(frozen=True, kw_only=True)
class AdvisorContact:
    """A contact of a caller with a human advisor, reported by the telephony platform.

    Never counted; it only voids the caller's earlier bot interactions of that day (rule 3).
    """

    call_id: str
    caller_number: str | None = field(repr=False)
    started_at: datetime
    ended_at: datetime
    motif: str = ""


class Row(NamedTuple):
    """One stored ledger row: the CSV's nine columns in integer form, plus the outcome.

    A NamedTuple rather than a frozen dataclass: an import builds 500 k of them.
    """

    call_id: str
    channel: Channel
    caller_key: str | None
    started_at_ms: int
    ended_at_ms: int
    motif: str
    message_ms: int
    listened_ms: int
    handoff: bool
    outcome: str | None = None

    def billing_key(self) -> tuple:
        """The fields an import compares to decide "same row" (the CSV's columns)."""
        return self[1:9]

    def as_values(self, source: str, recorded_at_ms: int) -> dict:
        return {
            "call_id": self.call_id, "channel": self.channel.value,
            "caller_key": self.caller_key, "started_at_ms": self.started_at_ms,
            "ended_at_ms": self.ended_at_ms, "motif": self.motif,
            "message_ms": self.message_ms, "listened_ms": self.listened_ms,
            "handoff": self.handoff, "outcome": self.outcome, "source": source,
            "recorded_at_ms": recorded_at_ms,
        }

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> Row:
        return cls(
            call_id=values["call_id"], channel=Channel(values["channel"]),
            caller_key=values["caller_key"], started_at_ms=int(values["started_at_ms"]),
            ended_at_ms=int(values["ended_at_ms"]), motif=values["motif"],
            message_ms=int(values["message_ms"]), listened_ms=int(values["listened_ms"]),
            handoff=bool(values["handoff"]), outcome=values.get("outcome"),
        )


def call_id_problem(call_id: object) -> str | None:
    """French description of what is wrong with a call id, or None."""
    if not isinstance(call_id, str) or not call_id:
        return "call_id vide"
    if len(call_id) > MAX_CALL_ID:
        return f"call_id trop long ({len(call_id)} caractères, au plus {MAX_CALL_ID})"
    if call_id != call_id.strip() or not call_id.isprintable():
        return "call_id contient des espaces en bordure ou des caractères de contrôle"
    return None


def motif_problem(motif: str, channel: Channel) -> str | None:
    if not motif:
        return "motif vide (obligatoire pour une interaction du bot)" if channel is Channel.BOT \
            else None
    if motif in RESERVED_MOTIFS or not MOTIF_PATTERN.match(motif):
        return (f"motif « {motif} » invalide (identifiant de knowledge/motifs.yml attendu : "
                "minuscules, chiffres et _, 64 caractères au plus)")
    return None


def row_problems(row: Row) -> list[str]:
    """Every invariant a stored row must hold, in French; the database checks some again."""
    problems = []
    for problem in (call_id_problem(row.call_id), motif_problem(row.motif, row.channel)):
        if problem:
            problems.append(problem)
    if not MIN_EPOCH_MS <= row.started_at_ms < MAX_EPOCH_MS:
        problems.append("started_at hors de la plage 2000–2099")
    if row.ended_at_ms < row.started_at_ms:
        problems.append("ended_at antérieur à started_at")
    if row.message_ms < 0 or row.listened_ms < 0:
        problems.append("durée négative")
    elif row.listened_ms > row.message_ms:
        problems.append("listened_s dépasse message_s")
    if row.outcome is not None and row.outcome not in {o.value for o in Outcome}:
        problems.append(f"outcome « {row.outcome} » inconnu")
    return problems
