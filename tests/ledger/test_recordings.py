"""Call recordings at rest: sealed on disk, opened through the ledger, purged by the node's
daily job after two months (the tender: kept two months, listened to online)."""

from __future__ import annotations

import asyncio
import io
import wave
from datetime import date, datetime
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from ledger_builders import interaction

from bot.errors import SettingsError
from ledger.recordings import RecordingVault
from ledger.retention import purge
from telephony_adapter.daily import DailyJob, DailyJobs, parse_time_of_day

PARIS = ZoneInfo("Europe/Paris")


def tone(seconds: float, hz: float, rate: int = 8000) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    return (np.sin(2 * np.pi * hz * t) * 8000).astype("<i2").tobytes()


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=PARIS).timestamp() * 1000)


def record(ledger, vault, call_id: str, start: str, caller: bytes, bot: bytes):
    path = vault.save(call_id, ms(start), caller, bot, 8000)
    ledger.record_interaction(interaction(call_id, start=start, recording_path=path))
    return path


@pytest.fixture
def vault(any_ledger, state_dir):
    return RecordingVault.for_ledger(any_ledger, state_dir)


def test_a_recording_is_ciphertext_on_disk_and_two_channels_once_opened(any_ledger, vault):
    caller, bot = tone(1.0, 440), tone(0.5, 1000)
    path = record(any_ledger, vault, "appel-1", "2024-05-02 10:00", caller, bot)
    raw = path.read_bytes()
    assert b"RIFF" not in raw and caller[:64] not in raw
    assert path.stat().st_mode & 0o077 == 0 and vault.directory in path.parents
    with wave.open(io.BytesIO(vault.open_wav("appel-1"))) as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (2, 2, 8000)
        stereo = np.frombuffer(wav.readframes(wav.getnframes()), "<i2").reshape(-1, 2)
    assert stereo[:, 0].tobytes() == caller
    assert stereo[:4000, 1].tobytes() == bot and not stereo[4000:, 1].any()
    assert vault.open_wav("appel-inconnu") is None


def test_a_recording_moved_to_another_call_or_altered_does_not_open(any_ledger, vault):
    first = record(any_ledger, vault, "appel-a", "2024-05-02 10:00", tone(0.2, 300), b"")
    second = record(any_ledger, vault, "appel-b", "2024-05-02 11:00", tone(0.2, 500), b"")
    second.write_bytes(first.read_bytes())  # a ciphertext swapped between calls
    with pytest.raises(SettingsError, match="altérée"):
        vault.open_wav("appel-b")


def test_the_daily_job_purges_recordings_older_than_two_months_once_a_day(any_ledger, vault):
    old = record(any_ledger, vault, "ancien", "2024-03-10 09:00", tone(0.2, 300), b"")
    new = record(any_ledger, vault, "recent", "2024-05-10 09:00", tone(0.2, 300), b"")
    runs: list[date] = []

    def purge_job(today: date) -> str:
        runs.append(today)
        return str(purge(any_ledger, today, vault.directory))

    clock = [datetime(2024, 5, 15, 8, 0, tzinfo=PARIS)]
    jobs = DailyJobs([DailyJob("purge", purge_job)], parse_time_of_day("03:30"), PARIS,
                     now=lambda: clock[0])
    asyncio.run(jobs.run_due())
    assert not old.exists() and new.exists()
    assert vault.open_wav("ancien") is None and vault.open_wav("recent") is not None
    asyncio.run(jobs.run_due())  # the same day: not again
    assert runs == [date(2024, 5, 15)]
    assert jobs.seconds_to_next() == pytest.approx((19 * 60 + 30) * 60)
    clock[0] = datetime(2024, 5, 16, 3, 30, tzinfo=PARIS)
    asyncio.run(jobs.run_due())
    assert runs == [date(2024, 5, 15), date(2024, 5, 16)]


def test_a_wrong_time_of_day_is_a_french_settings_error():
    with pytest.raises(SettingsError, match="HH:MM"):
        parse_time_of_day("3h30")
