"""The ledger as the voice pipeline and the SIP adapter see it: record a call, never fail it.

``Ledger.open(settings)`` once at start-up; ``record_interaction`` when a call ends
(``arecord_interaction`` from async code: the write, fsync included, runs in a worker
thread). Nothing here raises into a call: a database that is down sends the event to the
fsync'd spool, replayed once the database answers again (idempotent by ``call_id``); an
event that cannot be stored at all is set aside in the spool directory and logged.
Logs name the call id and the first characters of the caller's pseudonym, never the number.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from bot.errors import SettingsError, VoicebotError
from ledger import db, store
from ledger.crypto import (
    Sealed,
    TranscriptCipher,
    key_from_hex,
    load_or_create_key_file,
)
from ledger.options import LedgerOptions
from ledger.pseudonym import InvalidNumberError, Pseudonymizer
from ledger.records import (
    AdvisorContact,
    Interaction,
    Outcome,
    Row,
    row_problems,
)
from ledger.rule import Calendar, Channel, to_epoch_ms
from ledger.spool import CONFLICTS, DAMAGED, REJECTED, Spool

if TYPE_CHECKING:
    from bot.settings import Settings

log = logging.getLogger(__name__)

PSEUDONYM_KEY_ID = "pseudonym_key_id"


class RecordResult(str, Enum):
    STORED = "stored"
    DUPLICATE = "duplicate"
    """Already in the ledger with the same fields (a retried write): nothing changed."""
    CONFLICT = "conflict"
    """Another row holds this call id with different fields: set aside, logged."""
    SPOOLED = "spooled"
    """The database was unreachable: kept in the spool, replayed later."""
    REJECTED = "rejected"
    """Invalid (e.g. naive datetimes): set aside in the spool directory, logged."""
    LOST = "lost"
    """Database and spool disk both failed: logged at CRITICAL."""


@dataclass(frozen=True)
class ReplayResult:
    events: int
    inserted: int
    duplicates: int
    conflicts: int
    busy: bool = False
    """Another process was replaying; nothing was done here."""


class LedgerUnavailableError(VoicebotError):
    """The database cannot be reached (for commands; calls spool instead)."""


class Ledger:
    """One per process; thread-safe (each write uses its own connection)."""

    def __init__(
        self,
        engine: Engine,
        options: LedgerOptions,
        pseudonymizer: Pseudonymizer,
        cipher: TranscriptCipher,
        spool: Spool,
        url: str,
    ):
        self.engine = engine
        self.options = options
        self.pseudonymizer = pseudonymizer
        self.cipher = cipher
        self.spool = spool
        self.calendar = Calendar(options.timezone)
        self.url = url
        self._schema_ready = False
        self._schema_lock = threading.Lock()
        self._spool_pending = spool.has_pending()
        self._database_down_until = 0.0  # time.monotonic(); writes go straight to the spool
        # Own threads: a database that hangs must not take the executor ASR and TTS use.
        self._executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="ledger")

    # --- construction ------------------------------------------------------------------
    @classmethod
    def open(cls, settings: Settings, db_url: str | None = None, *,
             require_database: bool = False, replay_spool: bool = True) -> Ledger:
        """Build the ledger from Settings; migrate the schema and replay the spool if possible.

        A database that is down is not an error here unless ``require_database`` (the
        commands' case): the voice service must start and spool. ``replay_spool`` is off
        when ``db_url`` names another database than the one the spool belongs to.
        """
        options: LedgerOptions = settings.ledger
        state_dir: Path = settings.paths.state_dir
        url = db.resolve_url(options, state_dir, db_url)
        secrets_dir = state_dir / "secrets"
        if options.pseudonym_key:
            if len(options.pseudonym_key) < 32:
                raise SettingsError("ledger.pseudonym_key : au moins 32 caractères.")
            pseudo_key = options.pseudonym_key.encode("utf-8")
        else:
            pseudo_key = load_or_create_key_file(
                options.pseudonym_key_file or secrets_dir / "pseudonym.key")
        if options.transcript_key:
            aes_key = key_from_hex(options.transcript_key, "transcript_key")
        else:
            aes_key = load_or_create_key_file(
                options.transcript_key_file or secrets_dir / "transcript.key")
        spool = Spool(options.spool_dir or state_dir / "spool" / "ledger")
        ledger = cls(db.create_engine(url, options), options, Pseudonymizer(pseudo_key),
                     TranscriptCipher(aes_key), spool, url)
        try:
            ledger.ensure_schema()
        except SQLAlchemyError as exc:
            if require_database:
                raise ledger.unavailable(exc) from None
            log.warning("ledger database unreachable at start-up (%s); calls will be spooled",
                        type(exc).__name__)
            return ledger
        if replay_spool and ledger._spool_pending:
            ledger.replay_spool()
        return ledger

    def ensure_schema(self) -> None:
        """Migrate once per process and record which pseudonym key writes here."""
        if self._schema_ready:
            return
        with self._schema_lock:
            if self._schema_ready:
                return
            db.upgrade(self.engine)
            with self.engine.begin() as conn:
                known = store.read_meta(conn, PSEUDONYM_KEY_ID)
                if known is None:
                    store.write_meta(conn, PSEUDONYM_KEY_ID, self.pseudonymizer.key_id)
                elif known != self.pseudonymizer.key_id:
                    log.error("pseudonym key %s differs from the key %s this ledger was "
                              "written with: a caller's calls will not be linked across the "
                              "change", self.pseudonymizer.key_id, known)
            self._schema_ready = True

    def pseudonym_key_matches(self) -> bool:
        with self.engine.connect() as conn:
            known = store.read_meta(conn, PSEUDONYM_KEY_ID)
        return known in (None, self.pseudonymizer.key_id)

    def unavailable(self, exc: BaseException) -> LedgerUnavailableError:
        return LedgerUnavailableError(
            f"Base du registre injoignable ({db.redact(self.url)}) : {type(exc).__name__}. "
            "Vérifiez qu'elle est démarrée et l'adresse (--db ou VOICEBOT_DB_URL)."
        )

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        self.engine.dispose()

    # --- recording ---------------------------------------------------------------------
    def record_interaction(self, interaction: Interaction) -> RecordResult:
        """Write one bot call. Never raises; see :class:`RecordResult` for what happened."""
        try:
            row, extras = self._bot_row(interaction)
        except Exception as exc:  # noqa: BLE001 - a call must never fail on its ledger line
            return self._reject(getattr(interaction, "call_id", "?"), None,
                                f"{type(exc).__name__}: {exc}")
        return self._record(row, extras)

    def record_advisor_contact(self, contact: AdvisorContact) -> RecordResult:
        """Write a contact with an advisor reported by the platform (used by rule 3 only)."""
        try:
            row = Row(
                call_id=contact.call_id, channel=Channel.ADVISOR,
                caller_key=self._caller_key(contact.caller_number),
                started_at_ms=to_epoch_ms(contact.started_at),
                ended_at_ms=to_epoch_ms(contact.ended_at), motif=contact.motif,
                message_ms=0, listened_ms=0, handoff=False,
            )
        except Exception as exc:  # noqa: BLE001
            return self._reject(getattr(contact, "call_id", "?"), None,
                                f"{type(exc).__name__}: {exc}")
        return self._record(row, store.NO_EXTRAS)

    async def arecord_interaction(self, interaction: Interaction) -> RecordResult:
        """``record_interaction`` off the event loop, on the ledger's own threads.

        A write takes a few milliseconds (one fsync'd transaction), up to
        ``connect_timeout_s`` when PostgreSQL is unreachable.
        """
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self.record_interaction, interaction)

    async def arecord_advisor_contact(self, contact: AdvisorContact) -> RecordResult:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self.record_advisor_contact, contact)

    def _record(self, row: Row, extras: store.Extras) -> RecordResult:
        problems = row_problems(row)
        if problems:
            return self._reject(row.call_id, row, "; ".join(problems))
        if time.monotonic() < self._database_down_until:
            return self._spool_event(row, extras, None)
        try:
            self.ensure_schema()
            with self.engine.begin() as conn:
                outcome = store.insert_rows(conn, [(row, extras)], "api", store.now_ms())
        except Exception as exc:  # noqa: BLE001 - whatever failed, the event must survive
            if not isinstance(exc, SQLAlchemyError):
                log.exception("call %s: unexpected ledger failure, spooling", row.call_id)
            self._database_down_until = time.monotonic() + self.options.db_retry_ms / 1000
            return self._spool_event(row, extras, exc)
        if outcome.conflicts:
            log.error("call %s: another ledger row holds this call id with different fields; "
                      "event set aside in %s", row.call_id, CONFLICTS)
            self._set_aside(CONFLICTS, row, extras, "call_id already stored with other fields")
            return RecordResult.CONFLICT
        if self._spool_pending:
            self.replay_spool()  # the database answers again: catch up now
        if outcome.duplicates:
            log.info("call %s already in the ledger", row.call_id)
            return RecordResult.DUPLICATE
        log.info("call %s recorded (caller %s, motif %s)", row.call_id,
                 _short(row.caller_key), row.motif)
        return RecordResult.STORED

    def _spool_event(self, row: Row, extras: store.Extras,
                     exc: BaseException | None) -> RecordResult:
        """``exc`` is None when the database failed moments ago and was not tried again."""
        why = type(exc).__name__ if exc else "down moments ago, not retried yet"
        try:
            self.spool.append(_event(row, extras))
        except OSError as disk_error:
            log.critical("call %s LOST: database (%s) and spool (%s) both failed",
                         row.call_id, why, disk_error)
            return RecordResult.LOST
        self._spool_pending = True
        log.warning("call %s spooled: ledger database unreachable (%s)", row.call_id, why)
        return RecordResult.SPOOLED

    def _reject(self, call_id: object, row: Row | None, reason: str) -> RecordResult:
        log.error("call %s rejected by the ledger: %s", call_id, reason)
        try:
            event = _event(row, store.NO_EXTRAS) if row else {"call_id": str(call_id)}
            self.spool.set_aside(REJECTED, event, reason)
        except Exception as exc:  # noqa: BLE001
            log.critical("call %s: cannot even set the rejected event aside (%s)", call_id, exc)
        return RecordResult.REJECTED

    def _set_aside(self, name: str, row: Row, extras: store.Extras, reason: str) -> None:
        try:
            self.spool.set_aside(name, _event(row, extras), reason)
        except OSError as exc:
            log.critical("call %s: cannot set event aside in %s (%s)", row.call_id, name, exc)

    # --- replay ------------------------------------------------------------------------
    def replay_spool(self) -> ReplayResult:
        """Insert spooled events exactly once; safe to run anywhere, any time, concurrently.

        Never raises into a call: a database still down leaves the spool as it is.
        """
        totals = {"events": 0, "inserted": 0, "duplicates": 0, "conflicts": 0}
        try:
            self.ensure_schema()
            with self.spool.replaying() as files:
                if files is None:
                    return ReplayResult(0, 0, 0, 0, busy=True)
                for path in files:
                    counts = self._replay_file(path)
                    for name, count in counts.items():
                        totals[name] += count
            self._spool_pending = self.spool.has_pending()
            self._database_down_until = 0.0
        except SQLAlchemyError as exc:
            log.warning("spool replay postponed: database unreachable (%s)", type(exc).__name__)
        except Exception:  # noqa: BLE001 - replay runs after a call's write, never fail it
            log.exception("spool replay failed; the spool is kept for the next attempt")
        if totals["events"]:
            log.info("spool replayed: %(events)d events, %(inserted)d inserted, "
                     "%(duplicates)d already there, %(conflicts)d conflicts", totals)
        return ReplayResult(**totals)

    def _replay_file(self, path: Path) -> dict[str, int]:
        pairs: list[tuple[Row, store.Extras]] = []
        for event in self.spool.read(path):
            try:
                pairs.append(_from_event(event))
            except (KeyError, TypeError, ValueError) as exc:
                self.spool.set_aside(DAMAGED, event, f"unreadable event: {type(exc).__name__}")
        with self.engine.begin() as conn:
            outcome = store.insert_rows(conn, pairs, "spool", store.now_ms())
            counts = {"events": len(pairs), "inserted": len(outcome.inserted),
                      "duplicates": len(outcome.duplicates),
                      "conflicts": len(outcome.conflicts)}
            store.write_journal(conn, store.now_ms(), "replay", {"file": path.name, **counts})
        extras = {row.call_id: extra for row, extra in pairs}
        for row, _old in outcome.conflicts:
            log.error("spooled call %s conflicts with a stored row; set aside in %s",
                      row.call_id, CONFLICTS)
            self._set_aside(CONFLICTS, row, extras[row.call_id],
                            "call_id already stored with other fields")
        self.spool.done(path)
        return counts

    # --- transcripts -------------------------------------------------------------------
    def read_transcript(self, call_id: str, reader: str) -> str | None:
        """Decrypt one transcript; every read is journaled with who asked."""
        with self.engine.begin() as conn:
            sealed = store.sealed_transcript(conn, call_id)
            store.write_journal(conn, store.now_ms(), "transcript_read",
                                {"call_id": call_id, "reader": reader,
                                 "found": sealed is not None})
        return None if sealed is None else self.cipher.open(call_id, sealed)

    # --- helpers -----------------------------------------------------------------------
    def _bot_row(self, interaction: Interaction) -> tuple[Row, store.Extras]:
        row = Row(
            call_id=interaction.call_id, channel=Channel.BOT,
            caller_key=self._caller_key(interaction.caller_number),
            started_at_ms=to_epoch_ms(interaction.started_at),
            ended_at_ms=to_epoch_ms(interaction.ended_at),
            motif=interaction.motif, message_ms=int(interaction.message_ms),
            listened_ms=int(interaction.listened_ms), handoff=bool(interaction.handoff),
            outcome=Outcome(interaction.outcome).value if interaction.outcome else None,
        )
        sealed = None
        if interaction.transcript is not None and self.options.store_transcripts:
            sealed = self.cipher.seal(interaction.call_id, interaction.transcript)
        recording = str(interaction.recording_path) if interaction.recording_path else None
        if sealed is None and recording is None:
            return row, store.NO_EXTRAS
        return row, store.Extras(sealed, recording)

    def _caller_key(self, raw: str | None) -> str | None:
        """Pseudonym of the caller; a caller id that is no phone number (a SIP user name in
        tests) is pseudonymised verbatim so the same line still links its calls."""
        try:
            return self.pseudonymizer.caller_key(raw)
        except InvalidNumberError:
            log.debug("caller id is not a phone number; pseudonymised verbatim")
            assert raw is not None
            return self.pseudonymizer.pseudonym("other:" + raw.strip().lower())


def _event(row: Row, extras: store.Extras) -> dict[str, Any]:
    event: dict[str, Any] = {"kind": "row", **row.as_values("spool", store.now_ms())}
    event["transcript"] = extras.transcript.to_text() if extras.transcript else None
    event["recording_path"] = extras.recording_path
    return event


def _from_event(event: dict[str, Any]) -> tuple[Row, store.Extras]:
    transcript = Sealed.from_text(event["transcript"]) if event.get("transcript") else None
    return Row.from_values(event), store.Extras(transcript, event.get("recording_path"))


def _short(caller_key: str | None) -> str:
    return "withheld" if caller_key is None else caller_key[:12]
