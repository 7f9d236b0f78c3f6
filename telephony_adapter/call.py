"""What happens to one phone call, from the ring to the ledger row.

```
answer ─▶ wait for the caller's RTP ─▶ out of hours?   ─▶ hours message, hang up
                                   ├─▶ over capacity?  ─▶ saturation message, transfer
                                   └─▶ Conversation (crisis notice, greeting, turns…)
                                          ├─ goodbye  ─▶ hang up
                                          ├─ hand-off ─▶ REFER (failed: apology + hours,
                                          │               and the conversation goes on)
                                          └─ hang-up
every call ─▶ one ledger row (motif, outcome, message_ms / listened_ms from the playout)
```

A failure anywhere in here is logged, the caller hears the apology and is transferred,
and only this call is affected.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from bot.pipeline import (
    Conversation,
    ConversationResult,
    Ending,
    SpokenMessage,
    Turn,
    VoiceServices,
    speak,
)
from bot.playout import PlaybackFinished
from ledger import Interaction, Ledger, Outcome
from ledger.recordings import RecordingVault
from ledger.records import CallStats
from ledger.stats import conversation_stats
from telephony_adapter.handoff import Handoff
from telephony_adapter.hours import HoursError, OpeningHours, current_time, is_open, load_closures
from telephony_adapter.http import CallMetrics
from telephony_adapter.live import LiveCall
from telephony_adapter.recorder import CallRecorder
from telephony_adapter.sip import CallLeg, TransferResult

log = logging.getLogger(__name__)

MEDIA_WAIT_S = 3.0
"""How long to wait for the caller's first RTP packet before speaking anyway: a caller
behind a silent-until-spoken gateway must still hear the greeting."""
NO_QUESTION_MOTIF = "salutation"
"""The motif of a call in which no question was asked (hung up during the greeting, out of
hours): every ledger row needs one, and this one is never billed as an answer."""


@dataclass
class CallReport:
    """What the call flow knows of a finished call (tests and the ledger read it)."""

    outcome: Outcome
    motif: str
    handoff: bool
    message_ms: int = 0
    listened_ms: int = 0
    conversation: ConversationResult | None = None
    transfers: list[TransferResult] = field(default_factory=list)
    played: list[PlaybackFinished] = field(default_factory=list)
    """Messages said outside a conversation (hours, saturation, apology), as they went out."""
    error: str | None = None


class CallFlow:
    """Handles every call of the service with the shared models, ledger and metrics."""

    def __init__(self, services: VoiceServices, ledger: Ledger | None, metrics: CallMetrics):
        self.services = services
        self.settings = services.settings
        self.options = services.settings.telephony
        self.ledger = ledger
        self.metrics = metrics
        self.reports: dict[str, CallReport] = {}
        """The last calls' reports by call id (bounded), for tests and diagnostics."""
        self.live: dict[str, LiveCall] = {}
        """The calls in progress, for the supervisors' live view (engine ``/status``)."""

    async def handle(self, leg: CallLeg) -> None:
        self.live[leg.call_id] = LiveCall(leg.call_id, getattr(leg, "worker", "") or "")
        try:
            await self._handle(leg)
        finally:
            self.live.pop(leg.call_id, None)

    async def _handle(self, leg: CallLeg) -> None:
        started_at = datetime.now(timezone.utc)
        transfers: list[TransferResult] = []
        try:
            report = await self._converse(leg, transfers)
        except Exception as exc:  # a bug in here: this caller still gets words and an advisor
            log.exception("call %s: call flow failed", leg.call_id)
            report = await self._rescue(leg, transfers, exc)
        report.transfers = transfers
        if leg.dropped_frames:  # the loop fell behind the RTP clock: the node is overloaded
            log.warning("call %s: %d incoming audio frame(s) dropped", leg.call_id,
                        leg.dropped_frames)
        ended_at = leg.ended_at or datetime.now(timezone.utc)
        self._remember(leg.call_id, report)
        self.metrics.count_call(report.outcome.value)
        await self._record(leg, report, started_at, ended_at)

    # --- the flow ---------------------------------------------------------------------
    async def _converse(self, leg: CallLeg, transfers: list[TransferResult]) -> CallReport:
        messages = self.services.dialogue.snapshot.kb.messages
        await leg.answer()
        await self._media(leg)
        opening = self._crisis_notice()
        if not self._open():
            played = [await self._say(leg, "out_of_hours", *opening, messages["out_of_hours"])]
            await leg.hangup()
            return CallReport(Outcome.CLOSED, NO_QUESTION_MOTIF, handoff=False, played=played)
        if leg.over_capacity:
            played = [await self._say(leg, "saturation", *opening, messages["saturation"])]
            handed = await self._transfer(leg, transfers)
            if not handed:
                played.append(await self._say(leg, "transfer_failed", messages["transfer_failed"]))
            return CallReport(Outcome.HANDOFF if handed else Outcome.HANGUP, "conseiller",
                              handoff=handed, played=played)

        conversation = Conversation(self.services, leg, leg.call_id,
                                    transfer=lambda: self._transfer(leg, transfers,
                                                                    conversation.progress),
                                    on_turn=lambda turn: self._observe(turn, leg.call_id))
        result = await conversation.run(opening=opening)
        if result.ending is Ending.GOODBYE:
            await leg.hangup()
        return _report(result)

    async def _say(self, leg: CallLeg, key: str, *texts: str) -> PlaybackFinished:
        return await speak(leg.playout, self.services.speaker, key, texts)

    async def _media(self, leg: CallLeg) -> None:
        """The greeting must reach the caller whole: start once their RTP flows."""
        try:
            await asyncio.wait_for(leg.media_ready.wait(), MEDIA_WAIT_S)
        except asyncio.TimeoutError:
            log.warning("call %s: no RTP from the caller after %.0f s; speaking anyway",
                        leg.call_id, MEDIA_WAIT_S)

    async def _transfer(self, leg: CallLeg, transfers: list[TransferResult],
                        conversation: ConversationResult | None = None) -> bool:
        """Hand the caller over with the context of ``conversation`` (motif, urgency, their
        question) in SIP headers, to the queue its motif calls for (``handoff.py``)."""
        if leg.ended.is_set():
            return False
        handoff = Handoff.of(conversation)
        try:
            result = await leg.transfer(handoff.target(self.options), handoff.headers())
        except Exception:
            log.exception("call %s: transfer failed", leg.call_id)
            return False
        transfers.append(result)
        self.metrics.count_transfer(result.outcome.value)
        return result.succeeded

    async def _rescue(self, leg: CallLeg, transfers: list[TransferResult],
                      error: Exception) -> CallReport:
        report = CallReport(Outcome.ERROR, "conseiller", handoff=False,
                            error=f"{type(error).__name__}: {error}")
        if leg.ended.is_set():
            return report
        try:
            leg.playout.interrupt()
            apology = self.services.dialogue.snapshot.kb.messages["error_apology"]
            report.played.append(await self._say(leg, "error_apology", apology))
            report.handoff = await self._transfer(leg, transfers)
        except Exception:
            log.exception("call %s: could not even apologise", leg.call_id)
        return report

    # --- settings read at every call (no restart needed) -----------------------------------
    def _open(self) -> bool:
        try:
            closures = load_closures(self.options.closures_file)
        except HoursError as exc:
            log.error("%s (fermetures ignorées pour cet appel)", exc)
            closures = set()
        return is_open(current_time(self.options), closures,
                       OpeningHours.from_options(self.options))

    def _crisis_notice(self) -> tuple[str, ...]:
        path: Path | None = self.options.crisis_message_file
        if path is None:
            return ()
        try:
            text = " ".join(path.read_text(encoding="utf-8").split())
        except FileNotFoundError:
            return ()
        except OSError as exc:
            log.error("crisis message file %s unreadable: %s", path, exc)
            return ()
        return (text,) if text else ()

    # --- after the call -------------------------------------------------------------------
    def _observe(self, turn: Turn, call_id: str) -> None:
        if turn.reply is not None:
            self.metrics.observe_response_ms(turn.response_ms)
        live = self.live.get(call_id)
        if live is not None and turn.reply is not None:
            live.turns += 1
            if turn.reply.motif and turn.reply.action != "dialogue":
                live.motif = turn.reply.motif

    def _remember(self, call_id: str, report: CallReport) -> None:
        self.reports[call_id] = report
        while len(self.reports) > 1000:
            self.reports.pop(next(iter(self.reports)))

    def new_recorder(self) -> CallRecorder | None:
        """A recorder for the next call, when calls are recorded (they need the ledger:
        recordings are found, sealed and purged through it)."""
        options = self.settings.ledger
        if self.ledger is None or not options.store_recordings:
            return None
        return CallRecorder(options.recording_max_s)

    async def _record(self, leg: CallLeg, report: CallReport, started_at: datetime,
                      ended_at: datetime) -> None:
        if self.ledger is None:
            return
        conversation = report.conversation
        transcript = conversation.transcript if conversation else None
        began = leg.answered_at or started_at
        recording = await self._save_recording(leg, began)
        interaction = Interaction(
            call_id=leg.call_id, caller_number=leg.caller or None,
            started_at=began, ended_at=max(ended_at, started_at),
            motif=report.motif, message_ms=report.message_ms, listened_ms=report.listened_ms,
            handoff=report.handoff, outcome=report.outcome, transcript=transcript or None,
            recording_path=recording,
            stats=self._stats(conversation) if conversation else None,
            satisfaction_asked=bool(conversation and conversation.satisfaction_asked),
            satisfaction=conversation.satisfaction if conversation else None)
        try:
            await self.ledger.arecord_interaction(interaction)
        except Exception:  # the ledger spools when its database is down; this is a bug
            log.exception("call %s: ledger write failed", leg.call_id)

    def _stats(self, conversation: ConversationResult) -> CallStats:
        """Turns, reply times, misunderstandings, silences: for the supervisors."""
        messages = self.services.dialogue.snapshot.kb.messages
        return conversation_stats(conversation, messages.get("handoff_misunderstood", ""),
                                  self.settings.dialogue.frustration_words)

    async def _save_recording(self, leg: CallLeg, began: datetime) -> Path | None:
        recorder: CallRecorder | None = getattr(leg, "recorder", None)
        if recorder is None or recorder.empty or self.ledger is None:
            return None
        vault = RecordingVault.for_ledger(self.ledger, self.settings.paths.state_dir)
        caller, bot = recorder.channels()
        try:
            return await asyncio.get_running_loop().run_in_executor(
                None, vault.save, leg.call_id, int(began.timestamp() * 1000), caller, bot,
                recorder.rate)
        except OSError:  # a full disk loses the recording, never the billing row
            log.exception("call %s: recording not written", leg.call_id)
            return None


def _report(result: ConversationResult) -> CallReport:
    billed: SpokenMessage | None = result.billed_message
    handoff = result.ending is Ending.HANDOFF
    if result.error is not None:
        outcome = Outcome.ERROR
    elif handoff:
        outcome = Outcome.HANDOFF
    elif billed is None or billed.listened_ms < billed.message_ms:
        outcome = Outcome.HANGUP if result.ending is Ending.HUNG_UP else Outcome.ANSWERED
    elif billed.action == "reorient":
        outcome = Outcome.REORIENTED
    else:
        outcome = Outcome.ANSWERED
    motif = result.motif or ("conseiller" if handoff else NO_QUESTION_MOTIF)
    return CallReport(outcome, motif, handoff,
                      message_ms=billed.message_ms if billed else 0,
                      listened_ms=billed.listened_ms if billed else 0,
                      conversation=result, error=result.error)
