"""Options of the console (the HTTPS web interface of editors, supervisors, billing, auditors)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ConsoleOptions:
    host: str = "127.0.0.1"
    """Address the console listens on (``voicebot console --host``)."""
    port: int = 8443
    """HTTPS port (``voicebot console --port``)."""
    cert_file: Path | None = None
    """TLS certificate (PEM). Empty: ``<state_dir>/console/tls/cert.pem``, a self-signed
    certificate created at set-up or on the first start when missing."""
    key_file: Path | None = None
    """Private key of the certificate (PEM). Empty: ``<state_dir>/console/tls/key.pem``."""
    with_serve: bool = True
    """``voicebot serve`` (and so ``make run``) also starts the console as one of its
    supervised processes."""
    session_idle_minutes: int = 30
    """A session unused for this many minutes is closed; the user logs in again."""
    session_max_hours: int = 12
    """A session ends after this many hours even when in use (a working day)."""
    lockout_failures: int = 5
    """Failed logins in a row after which the account is refused, right password or not."""
    lockout_seconds: int = 60
    """How long an account stays refused after ``lockout_failures`` failures."""
    audit_retention_months: int = 6
    """Access-log entries older than this many calendar months are purged (a checkpoint
    keeps the remaining chain verifiable)."""
    nodes: tuple[str, ...] = ()
    """Base URLs of the nodes the supervisors' live view reads (``/health`` of each
    ``voicebot serve``), e.g. ``http://10.0.0.11:8080,http://10.0.0.12:8080``. Empty: the
    local node (``telephony.http_host``:``telephony.http_port``)."""
    audit_anchor_file: Path | None = None
    """Where the daily anchors of the access log are appended (one line per day: date,
    entry number, SHA-256). Empty: ``<state_dir>/audit/anchors.txt``. Keep a copy
    elsewhere (or on write-once storage) so a rewrite of the database is detected."""
