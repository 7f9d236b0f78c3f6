"""Options of the interaction ledger and SC3.2 billing."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class LedgerOptions:
    db_url: str = ""
    """SQLAlchemy URL; empty means the SQLite file ``ledger.sqlite`` in the state directory.
    Env alias: ``VOICEBOT_DB_URL``."""

    pseudonym_key: str = ""
    """Secret of the HMAC-SHA256 that turns a caller number into a pseudonym (any text of
    at least 32 characters). Empty: the key file below. Every host writing to one database
    must share it, or a caller's calls on one day stop being linked (rule 3)."""
    pseudonym_key_file: Path | None = None
    """Where the pseudonym secret is read, created on first use (64 hex characters, mode
    0600). Empty: ``pseudonym.key`` in ``keys_dir``."""
    keys_dir: Path | None = None
    """Directory of the deployment's key files (``pseudonym.key``, ``transcript.key``).
    Empty: ``<state_dir>/secrets``. Put it outside the state directory (e.g.
    ``/etc/allo-caf/keys``) so that backups of ``var/`` hold no key. Env:
    ``VOICEBOT_LEDGER_KEYS_DIR``."""

    transcript_key: str = ""
    """AES-256-GCM sealing keys of transcripts and recordings, 64 hex characters each,
    separated by commas, oldest first: the last one seals, all of them open. Empty: the
    key file below."""
    transcript_key_file: Path | None = None
    """The sealing key ring, one key per line (the last one seals), created on first use
    like the pseudonym key; ``voicebot keys rotate`` appends to it.
    Empty: ``transcript.key`` in ``keys_dir``."""
    store_transcripts: bool = True
    """Keep the call's transcript (encrypted) until the retention purge; false drops it."""

    store_recordings: bool = True
    """Record every call answered by the bot (caller and bot on two channels), sealed like
    transcripts, until the retention purge; false records nothing. Callers are told in the
    greeting (``knowledge/messages.yml``)."""
    recording_max_s: int = 3600
    """Longest recording kept in memory per call (32 kB a second); the rest is not recorded."""

    spool_dir: Path | None = None
    """Append-only JSON-lines spool used while the database is unreachable.
    Empty: ``<state_dir>/spool/ledger``."""
    recordings_dir: Path | None = None
    """Where call recordings live; the purge deletes recording files only inside it.
    Empty: ``<state_dir>/recordings``."""
    retention_months: int = 2
    """Transcripts and recordings older than this many calendar months are purged by
    ``voicebot ledger purge``; billing rows are kept."""

    contacts_dir: Path | None = None
    """Drop folder of advisor contacts watched by ``voicebot serve`` (the ledger's CSV
    format; each file imported whole once, then moved to ``done/`` or ``rejected/`` with a
    French report). Empty: ``<state_dir>/contacts``."""
    contacts_poll_ms: int = 2000
    """How often the drop folder is scanned."""
    contacts_token: str = ""
    """Bearer token of ``POST /contacts`` on the node's HTTP port (the contact centre's
    feed). Empty: the endpoint refuses every request (403). Env:
    ``VOICEBOT_LEDGER_CONTACTS_TOKEN``."""

    rule3_any_later_call: bool = False
    """SC3.2 rule 3, stricter reading of « sans réitération dans la journée »: any later
    same-day call of the caller voids an interaction, not only one that reached an advisor."""
    timezone: str = "Europe/Paris"
    """Calendar days of the reports and of rule 3. The tender's days are Paris days."""

    connect_timeout_s: int = 3
    """How long a call's ledger write waits for a PostgreSQL connection before spooling."""
    db_retry_ms: int = 5000
    """After a failed write, later calls go straight to the spool for this long instead of
    each waiting for the database again; the first write after it retries (and replays)."""
    sqlite_busy_timeout_ms: int = 2000
    """How long a SQLite write waits on another writer's lock before spooling."""
