"""Secrets of the ledger and the encryption of transcripts (AES-256-GCM).

Keys come from the settings or from files created on first use under the state directory
(mode 0600, directory 0700), never from the repository. Creation is race-free: the key is
written to a temporary file and hard-linked into place, so two processes starting at once
end up reading the same key.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from bot.errors import SettingsError

KEY_BYTES = 32
NONCE_BYTES = 12


def load_or_create_key_file(path: Path) -> bytes:
    """The 32-byte key stored as hex in ``path``, generated there if the file is absent."""
    if not path.exists():
        if not path.parent.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.parent.chmod(0o700)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, (secrets.token_hex(KEY_BYTES) + "\n").encode("ascii"))
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # another process created it first: use theirs
        finally:
            tmp.unlink()
    try:
        text = path.read_text(encoding="ascii").strip()
        key = bytes.fromhex(text)
    except (OSError, UnicodeDecodeError, ValueError):
        key = b""
    if len(key) != KEY_BYTES:
        raise SettingsError(
            f"{path} : clé illisible (attendu : {2 * KEY_BYTES} caractères hexadécimaux). "
            "Restaurez la clé d'origine ; sans elle, les données chiffrées restent illisibles."
        )
    return key


def key_from_hex(text: str, name: str) -> bytes:
    try:
        key = bytes.fromhex(text.strip())
    except ValueError:
        key = b""
    if len(key) != KEY_BYTES:
        raise SettingsError(
            f"ledger.{name} : clé invalide (attendu : {2 * KEY_BYTES} caractères hexadécimaux, "
            "par exemple produits par « openssl rand -hex 32 »)."
        )
    return key


@dataclass(frozen=True)
class Sealed:
    """An encrypted transcript as stored: which key, the nonce, ciphertext with its tag."""

    key_id: str
    nonce: bytes
    ciphertext: bytes

    def to_text(self) -> str:
        """One line for the spool: ``key_id:nonce:ciphertext`` in base64."""
        b64 = base64.b64encode
        return f"{self.key_id}:{b64(self.nonce).decode()}:{b64(self.ciphertext).decode()}"

    @classmethod
    def from_text(cls, text: str) -> Sealed:
        key_id, nonce, ciphertext = text.split(":")
        return cls(key_id, base64.b64decode(nonce), base64.b64decode(ciphertext))


def key_id_of(key: bytes) -> str:
    """Names a sealing key without revealing it; stored beside everything it sealed."""
    return hashlib.sha256(b"allo-caf transcript key id" + key).hexdigest()[:16]


class TranscriptCipher:
    """AES-256-GCM bound to the call id: a ciphertext moved to another call fails to open.

    A key ring: it seals with its newest key and opens with whichever key the sealed data
    names (``key_id``), so transcripts and recordings sealed before a rotation
    (``voicebot keys rotate``) stay readable.
    """

    def __init__(self, key: bytes, *older: bytes):
        keys = [*older, key]
        if any(len(k) != KEY_BYTES for k in keys):
            raise ValueError("AES-256 needs 32-byte keys")
        self._aeads = {key_id_of(k): AESGCM(k) for k in keys}
        self.key_id = key_id_of(key)
        """The key that seals now (the newest)."""

    @classmethod
    def ring(cls, keys: list[bytes]) -> TranscriptCipher:
        """Oldest first, the last one seals."""
        return cls(keys[-1], *keys[:-1])

    @property
    def key_ids(self) -> list[str]:
        """Every key id this ring opens, oldest first."""
        return list(self._aeads)

    def seal(self, call_id: str, text: str) -> Sealed:
        return self.seal_bytes(call_id, text.encode("utf-8"))

    def open(self, call_id: str, sealed: Sealed) -> str:
        return self.open_bytes(call_id, sealed, "Transcription").decode("utf-8")

    def seal_bytes(self, call_id: str, data: bytes) -> Sealed:
        """Any of the call's personal data (a transcript, a recording), bound to the call."""
        nonce = secrets.token_bytes(NONCE_BYTES)
        aead = self._aeads[self.key_id]
        return Sealed(self.key_id, nonce, aead.encrypt(nonce, data, call_id.encode("utf-8")))

    def open_bytes(self, call_id: str, sealed: Sealed, what: str = "Donnée") -> bytes:
        aead = self._aeads.get(sealed.key_id)
        if aead is None:
            raise SettingsError(
                f"{what} de l'appel {call_id} chiffrée avec la clé {sealed.key_id}, absente "
                f"du trousseau configuré ({', '.join(self._aeads)}) : installez les clés de "
                "scellement de ce déploiement (voicebot keys fingerprint)."
            )
        try:
            return aead.decrypt(sealed.nonce, sealed.ciphertext, call_id.encode("utf-8"))
        except InvalidTag:
            raise SettingsError(
                f"{what} de l'appel {call_id} altérée : le contrôle d'intégrité a échoué."
            ) from None
