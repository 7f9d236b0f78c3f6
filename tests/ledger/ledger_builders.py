"""Small builders shared by the ledger tests (times in Paris, numbers as callers type them)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from bot import settings as settings_module
from bot.settings import Settings
from ledger.records import Interaction, Outcome
from ledger.rule import Contact, to_epoch_ms

DATA = Path(__file__).resolve().parents[1] / "data" / "ledger"
PARIS = ZoneInfo("Europe/Paris")
NUMBER = "+33 6 12 34 56 78"
NUMBER_FORMS = ("0612345678", "+33612345678", "33612345678", "612345678", "06 12 34 56 78",
                "06.12.34.56.78", "+33 6 12 34 56 78", "0033612345678", "06-12-34-56-78")
"""Every way the test number may be written; none may appear in files or logs."""
SECRET_SENTENCE = "Mon numéro est le 06 12 34 56 78 et mon allocation logement est en retard"
SC32_MARCH = """\
date,interactions,productive,productive_seconds,productive_hours
2024-03-01,6,2,330.500,0.0918
2024-03-02,3,2,360.000,0.1000
2024-03-15,3,2,101.234,0.0281
2024-03-31,2,2,360.001,0.1000
total,14,8,1151.735,0.3199
"""
"""The extraction of march_2024.csv, worked out by hand (tests/data/ledger/README.md)."""


def paris(text: str) -> datetime:
    """``"2024-03-01 10:00"`` or with seconds/milliseconds, as a Paris wall-clock time."""
    fmt = "%Y-%m-%d %H:%M:%S.%f" if "." in text else (
        "%Y-%m-%d %H:%M:%S" if text.count(":") == 2 else "%Y-%m-%d %H:%M")
    return datetime.strptime(text, fmt).replace(tzinfo=PARIS)


def ms(text: str) -> int:
    return to_epoch_ms(paris(text))


def iso_ms(text: str) -> int:
    """Epoch ms of an ISO 8601 string with its own offset (unambiguous on DST nights)."""
    return to_epoch_ms(datetime.fromisoformat(text.replace("Z", "+00:00")))


def contact(start: str, end: str | None = None, *, caller: str | None = "A",
            channel: str = "bot", message_ms: int = 1000, listened_ms: int = 1000,
            handoff: bool = False) -> Contact:
    start_ms = iso_ms(start) if "T" in start else ms(start)
    end_ms = (iso_ms(end) if "T" in end else ms(end)) if end else start_ms + 60_000
    return Contact(channel, caller, start_ms, end_ms, message_ms, listened_ms, handoff)


def interaction(call_id: str = "call-1", *, caller: str | None = NUMBER,
                start: str = "2024-03-01 10:00", seconds: int = 60, motif: str = "aide_logement",
                message_ms: int = 10_000, listened_ms: int = 10_000, handoff: bool = False,
                transcript: str | None = None, **extra) -> Interaction:
    started = paris(start)
    return Interaction(call_id=call_id, caller_number=caller, started_at=started,
                       ended_at=started + timedelta(seconds=seconds), motif=motif,
                       message_ms=message_ms, listened_ms=listened_ms, handoff=handoff,
                       outcome=Outcome.HANDOFF if handoff else Outcome.ANSWERED,
                       transcript=transcript, **extra)


def ledger_settings_for(state_dir: Path, **ledger_options) -> Settings:
    """Defaults (no voicebot.yml, no environment) with a private state dir."""
    base = settings_module.load(env={})
    return settings_module.replace(base, paths={"state_dir": state_dir}, ledger=ledger_options)

def assert_no_number(blobs: list[tuple[str, bytes]]) -> None:
    forms = set(NUMBER_FORMS) | {"6 12 34 56 78", "612 345 678", "6.12.34.56.78"}
    for name, data in blobs:
        for form in forms:
            assert form.encode() not in data, f"{form!r} found in {name}"
            assert form.encode("utf-16-le") not in data, f"{form!r} (UTF-16) found in {name}"
