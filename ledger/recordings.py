"""Call recordings at rest: one sealed two-channel WAV per call, found through the ledger.

The tender keeps recordings two months and has them listened to online, never downloaded
in clear; so the file on disk is only ever ciphertext (AES-256-GCM under the deployment's
key, bound to the call id like transcripts), written once after the call, and decrypted in
memory for the console's player. The ledger's ``ledger_recordings`` rows say where each
call's file is; the retention purge deletes both (``ledger.retention``).

File layout: ``ACREC1`` · key-id length (1 byte) · key id · nonce · ciphertext with tag.
"""

from __future__ import annotations

import hashlib
import io
import os
import secrets
import wave
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa

from bot.audio import SAMPLE_WIDTH
from bot.errors import SettingsError
from ledger.crypto import NONCE_BYTES, Sealed
from ledger.schema import recordings

if TYPE_CHECKING:
    from bot.settings import Settings
    from ledger.api import Ledger

MAGIC = b"ACREC1"


class RecordingVault:
    """Writes and reads the sealed recordings of one deployment."""

    def __init__(self, ledger: Ledger, directory: Path):
        self.ledger = ledger
        self.directory = directory

    @classmethod
    def for_ledger(cls, ledger: Ledger, state_dir: Path) -> RecordingVault:
        return cls(ledger, ledger.options.recordings_dir or state_dir / "recordings")

    @classmethod
    def from_settings(cls, settings: Settings) -> RecordingVault:
        from ledger.api import Ledger

        return cls.for_ledger(Ledger.open(settings, replay_spool=False),
                              settings.paths.state_dir)

    def path_for(self, call_id: str, started_at_ms: int) -> Path:
        """Where a call's recording goes: by day, named by a hash (call ids are raw SIP)."""
        day = datetime.fromtimestamp(started_at_ms / 1000, timezone.utc)
        name = hashlib.sha256(call_id.encode("utf-8")).hexdigest()[:32] + ".rec"
        return self.directory / f"{day:%Y}" / f"{day:%m}" / f"{day:%d}" / name

    def save(self, call_id: str, started_at_ms: int, caller_pcm16: bytes, bot_pcm16: bytes,
             rate: int) -> Path:
        """Seal the call's two channels (caller left, bot right) and write them atomically.
        The ledger row that points here is written with the call's interaction."""
        wav = two_channel_wav(caller_pcm16, bot_pcm16, rate)
        sealed = self.ledger.cipher.seal_bytes(call_id, wav)
        path = self.path_for(call_id, started_at_ms)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        key_id = sealed.key_id.encode("ascii")
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(MAGIC + bytes([len(key_id)]) + key_id + sealed.nonce + sealed.ciphertext)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return path

    def find(self, call_id: str) -> Path | None:
        with self.ledger.engine.connect() as conn:
            value = conn.execute(sa.select(recordings.c.path)
                                 .where(recordings.c.call_id == call_id)).scalar()
        return Path(value) if value else None

    def open_wav(self, call_id: str) -> bytes | None:
        """The call's recording as a WAV file in memory; None when there is none (never
        recorded, or purged). A file outside the recordings directory is not read."""
        path = self.find(call_id)
        if path is None:
            return None
        root = self.directory.resolve()
        resolved = path.resolve()
        if root not in resolved.parents or not resolved.is_file():
            return None
        return self.ledger.cipher.open_bytes(call_id, read_sealed(resolved), "Enregistrement")


def read_sealed(path: Path) -> Sealed:
    data = path.read_bytes()
    if not data.startswith(MAGIC) or len(data) < len(MAGIC) + 1:
        raise SettingsError(f"{path} : ce n'est pas un enregistrement allo-caf.")
    size = data[len(MAGIC)]
    start = len(MAGIC) + 1
    key_id = data[start:start + size].decode("ascii", "replace")
    nonce = data[start + size:start + size + NONCE_BYTES]
    return Sealed(key_id, nonce, data[start + size + NONCE_BYTES:])


def two_channel_wav(left: bytes, right: bytes, rate: int) -> bytes:
    """Interleave two PCM16 mono channels (the shorter one padded with silence)."""
    import numpy as np

    n = max(len(left), len(right)) // SAMPLE_WIDTH
    stereo = np.zeros((n, 2), dtype="<i2")
    for column, pcm in enumerate((left, right)):
        samples = np.frombuffer(pcm[:len(pcm) - len(pcm) % SAMPLE_WIDTH], dtype="<i2")
        stereo[:len(samples), column] = samples
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(2)
        wav.setsampwidth(SAMPLE_WIDTH)
        wav.setframerate(rate)
        wav.writeframes(stereo.tobytes())
    return out.getvalue()
