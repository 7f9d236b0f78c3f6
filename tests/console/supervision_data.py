"""Calls written into a test ledger the way the call path writes them: the interaction row
(with its sealed transcript and recording) through ``Ledger.record_interaction``, then the
call's statistics and, when the caller answered the satisfaction question, its score, handed
in with the interaction as the call path does."""

from __future__ import annotations

import wave
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from io import BytesIO
from zoneinfo import ZoneInfo

import numpy as np

from ledger import Interaction, Outcome
from ledger.recordings import RecordingVault
from ledger.rule import to_epoch_ms
from ledger.stats import CallStats

PARIS = ZoneInfo("Europe/Paris")
RATE = 8000


@dataclass(frozen=True)
class Call:
    call_id: str
    day: date
    at: time
    motif: str
    outcome: Outcome = Outcome.ANSWERED
    duration_s: int = 40
    message_ms: int = 12_000
    listened_ms: int = 12_000
    handoff: bool = False
    caller: str = "+33612345678"
    transcript: str | None = None
    stats: CallStats | None = None
    satisfaction: int | None = None
    recording_s: float = 0.0
    """Seconds of two-channel audio recorded; 0: no recording."""

    @property
    def started_at(self) -> datetime:
        return datetime.combine(self.day, self.at, PARIS)


def tone(seconds: float, hz: float) -> bytes:
    n = int(seconds * RATE)
    samples = (np.sin(2 * np.pi * hz * np.arange(n) / RATE) * 8000).astype("<i2")
    return samples.tobytes()


def write_calls(ledger, state_dir, calls: list[Call]) -> None:
    vault = RecordingVault.for_ledger(ledger, state_dir)
    for call in calls:
        started = call.started_at
        recording = None
        if call.recording_s:
            recording = vault.save(call.call_id, to_epoch_ms(started),
                                   tone(call.recording_s, 440), tone(call.recording_s, 660),
                                   RATE)
        result = ledger.record_interaction(Interaction(
            call_id=call.call_id, caller_number=call.caller, started_at=started,
            ended_at=started + timedelta(seconds=call.duration_s), motif=call.motif,
            message_ms=call.message_ms, listened_ms=call.listened_ms, handoff=call.handoff,
            outcome=call.outcome, transcript=call.transcript, recording_path=recording,
            stats=call.stats, satisfaction_asked=call.satisfaction is not None,
            satisfaction=call.satisfaction))
        assert result.value == "stored", (call.call_id, result)


def wav_frames(data: bytes) -> tuple[int, int, int]:
    """(channels, rate, frames) of a WAV file in memory."""
    with wave.open(BytesIO(data)) as wav:
        return wav.getnchannels(), wav.getframerate(), wav.getnframes()
