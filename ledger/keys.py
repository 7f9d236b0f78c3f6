"""The deployment's ledger keys: where they live, how they are made, rotated and checked.

Two secrets, one set per deployment, shared by every host writing to one ledger:

- the **pseudonym key** (HMAC of caller numbers). It can never change: numbers are not
  kept, so history cannot be re-keyed, and a second key would split each caller's calls
  (rule 3). The ledger stores its fingerprint (``ledger_meta``) and a process holding
  another key refuses to write (:class:`KeyMismatchError`).
- the **sealing keys** (AES-256-GCM of transcripts and recordings), a ring: the last one
  seals, all of them open (each sealed item names its key id). ``voicebot keys rotate``
  appends a key. The ledger stores the key ids it has seen; a ring sharing none of them
  is another deployment's and is refused too.

Keys come from the settings (``ledger.pseudonym_key``, ``ledger.transcript_key``:
environment variables in production) or from files in ``ledger.keys_dir`` (default
``<state_dir>/secrets``), which may lie outside the state directory so that backups of
``var/`` hold no key. Files are created on first use (mode 0600) when absent.
"""

from __future__ import annotations

import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bot.errors import SettingsError, VoicebotError
from ledger.crypto import KEY_BYTES, TranscriptCipher, key_from_hex, load_or_create_key_file
from ledger.pseudonym import Pseudonymizer

if TYPE_CHECKING:
    from bot.settings import Settings

PSEUDONYM_FILE = "pseudonym.key"
SEALING_FILE = "transcript.key"
_SEPARATORS = re.compile(r"[\s,;]+")


class KeyMismatchError(VoicebotError):
    """This process holds keys of another deployment: it must not write to this ledger."""


@dataclass(frozen=True)
class LedgerKeys:
    pseudonym: bytes
    sealing: tuple[bytes, ...]
    """Oldest first; the last one seals."""
    pseudonym_source: str
    """Where the pseudonym key came from, for messages (a file or a setting)."""
    sealing_source: str
    sealing_file: Path | None
    """The ring's file, None when the keys come from ``ledger.transcript_key``."""

    @property
    def pseudonymizer(self) -> Pseudonymizer:
        return Pseudonymizer(self.pseudonym)

    @property
    def cipher(self) -> TranscriptCipher:
        return TranscriptCipher.ring(list(self.sealing))


def keys_dir(settings: Settings) -> Path:
    return settings.ledger.keys_dir or settings.paths.state_dir / "secrets"


def key_files(settings: Settings) -> tuple[Path, Path]:
    """The pseudonym and sealing key files (used unless a setting holds the key itself)."""
    options = settings.ledger
    directory = keys_dir(settings)
    return (options.pseudonym_key_file or directory / PSEUDONYM_FILE,
            options.transcript_key_file or directory / SEALING_FILE)


def load_keys(settings: Settings) -> LedgerKeys:
    """The keys this process uses; missing key files are created (first start)."""
    options = settings.ledger
    pseudonym_file, sealing_file = key_files(settings)
    if options.pseudonym_key:
        if len(options.pseudonym_key) < 32:
            raise SettingsError("ledger.pseudonym_key : au moins 32 caractères.")
        pseudonym = options.pseudonym_key.encode("utf-8")
        pseudonym_source = "ledger.pseudonym_key (VOICEBOT_LEDGER_PSEUDONYM_KEY)"
    else:
        pseudonym = load_or_create_key_file(pseudonym_file)
        pseudonym_source = str(pseudonym_file)
    if options.transcript_key:
        sealing = tuple(key_from_hex(text, "transcript_key")
                        for text in _SEPARATORS.split(options.transcript_key.strip()) if text)
        return LedgerKeys(pseudonym, sealing, pseudonym_source,
                          "ledger.transcript_key (VOICEBOT_LEDGER_TRANSCRIPT_KEY)", None)
    if not sealing_file.exists():
        load_or_create_key_file(sealing_file)
    return LedgerKeys(pseudonym, read_ring(sealing_file), pseudonym_source, str(sealing_file),
                      sealing_file)


def read_ring(path: Path) -> tuple[bytes, ...]:
    """One key per line (64 hex characters), oldest first; ``#`` starts a comment."""
    try:
        lines = path.read_text(encoding="ascii").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError(f"{path} : fichier de clés illisible ({exc}).") from None
    keys = []
    for number, line in enumerate(lines, start=1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        try:
            key = bytes.fromhex(text)
        except ValueError:
            key = b""
        if len(key) != KEY_BYTES:
            raise SettingsError(
                f"{path}, ligne {number} : clé illisible (attendu : {2 * KEY_BYTES} caractères "
                "hexadécimaux). Restaurez le fichier d'origine ; sans lui, les données scellées "
                "restent illisibles.")
        keys.append(key)
    if not keys:
        raise SettingsError(f"{path} : aucune clé de scellement dans le fichier.")
    return tuple(keys)


def init_keys(settings: Settings) -> list[str]:
    """Create the key files that are missing; French lines saying what was done."""
    pseudonym_file, sealing_file = key_files(settings)
    lines = []
    for path, setting, what in (
            (pseudonym_file, settings.ledger.pseudonym_key, "clé de pseudonymisation"),
            (sealing_file, settings.ledger.transcript_key, "clé de scellement")):
        if setting:
            lines.append(f"{what} : fournie par les réglages, aucun fichier créé.")
        elif path.exists():
            lines.append(f"{what} : déjà présente dans {path}, conservée.")
        else:
            load_or_create_key_file(path)
            lines.append(f"{what} : créée dans {path} (mode 0600).")
    return lines


def rotate_sealing_key(settings: Settings) -> str:
    """Append a new sealing key to the ring file; returns its key id."""
    if settings.ledger.transcript_key:
        raise SettingsError(
            "Les clés de scellement viennent de ledger.transcript_key "
            "(VOICEBOT_LEDGER_TRANSCRIPT_KEY) : ajoutez-y une nouvelle clé à la fin, séparée "
            "par une virgule (par exemple produite par « openssl rand -hex 32 »), en gardant "
            "les anciennes, puis redémarrez les services. Rien n'a été modifié.")
    keys = load_keys(settings)
    assert keys.sealing_file is not None
    new_key = secrets.token_bytes(KEY_BYTES)
    text = "".join(k.hex() + "\n" for k in (*keys.sealing, new_key))
    _replace_file(keys.sealing_file, text)
    return TranscriptCipher(new_key).key_id


PSEUDONYM_ROTATION_REFUSED = (
    "La clé de pseudonymisation ne peut pas être renouvelée : le registre ne garde que "
    "HMAC(clé, numéro), jamais le numéro, donc l'historique ne peut pas être recalculé avec "
    "une nouvelle clé, et les appels d'un même appelant avant et après le changement ne "
    "seraient plus reliés (règle 3 de la SC3.2). Rien n'a été modifié. Seule la clé de "
    "scellement se renouvelle (voicebot keys rotate).")


def _where(settings: Settings | None) -> str:
    return str(key_files(settings)[0].parent) if settings is not None else "ledger.keys_dir"


def mismatch_message(process_fp: str, ledger_fp: str, settings: Settings | None) -> str:
    return (
        f"La clé de pseudonymisation de ce processus (empreinte {process_fp}) n'est pas celle "
        f"du registre (empreinte {ledger_fp}) : les appels d'un même numéro ne seraient plus "
        "reliés. Rien n'a été écrit. Installez les clés du déploiement : copiez "
        f"{PSEUDONYM_FILE} et {SEALING_FILE} depuis un hôte qui écrit déjà dans ce registre "
        f"vers {_where(settings)} (ou le dossier de ledger.keys_dir / "
        "VOICEBOT_LEDGER_KEYS_DIR, ou la variable VOICEBOT_LEDGER_PSEUDONYM_KEY), puis "
        "vérifiez avec « voicebot keys fingerprint ».")


def sealing_mismatch_message(process_ids: list[str], ledger_ids: list[str],
                             settings: Settings | None) -> str:
    return (
        f"Les clés de scellement de ce processus ({', '.join(process_ids)}) ne sont pas celles "
        f"du registre ({', '.join(ledger_ids)}) : ses transcriptions et enregistrements "
        "seraient illisibles pour les autres hôtes. Rien n'a été écrit. Installez les clés du "
        f"déploiement : copiez {SEALING_FILE} (toutes ses lignes) vers {_where(settings)} "
        "ou VOICEBOT_LEDGER_TRANSCRIPT_KEY, puis vérifiez avec « voicebot keys fingerprint ».")


def _replace_file(path: Path, text: str) -> None:
    """Atomically: a crash leaves the old ring or the new one, never half of it."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, text.encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
