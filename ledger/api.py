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

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from bot.errors import VoicebotError
from ledger import db, store
from ledger.caller_id import Why, decide_caller
from ledger.closing import CLOSED_MONTH, changes_to_closed
from ledger.crypto import Sealed, TranscriptCipher
from ledger.keys import KeyMismatchError, load_keys, mismatch_message, sealing_mismatch_message
from ledger.options import LedgerOptions
from ledger.pseudonym import Pseudonymizer
from ledger.records import (
    AdvisorContact,
    CallStats,
    Interaction,
    Outcome,
    Row,
    row_problems,
)
from ledger.rule import Calendar, Channel, to_epoch_ms
from ledger.satisfaction import SCORES
from ledger.spool import CONFLICTS, DAMAGED, REJECTED, WRONG_KEY, Spool

if TYPE_CHECKING:
    from bot.settings import Settings

log = logging.getLogger(__name__)

PSEUDONYM_KEY_ID = "pseudonym_key_id"
SEALING_KEY_IDS = "sealing_key_ids"


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
    CLOSED_MONTH = "closed_month"
    """It would change the figures of a closed (billed) month: set aside, logged."""


@dataclass(frozen=True)
class ReplayResult:
    events: int
    inserted: int
    duplicates: int
    conflicts: int
    busy: bool = False
    """Another process was replaying; nothing was done here."""
    closed_month: int = 0
    """Events set aside because they would change a closed month (see ``reports``)."""
    reports: tuple[str, ...] = ()
    """French reports of the closed months those events would have changed."""


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
        self.settings: Settings | None = None
        """Set by ``open``; names the key files in messages."""
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
        keys = load_keys(settings)
        spool = Spool(options.spool_dir or state_dir / "spool" / "ledger")
        ledger = cls(db.create_engine(url, options), options, keys.pseudonymizer, keys.cipher,
                     spool, url)
        ledger.settings = settings
        try:
            ledger.ensure_schema()
        except KeyMismatchError:
            ledger.close()
            raise
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
        """Migrate once per process, and check this process holds the deployment's keys.

        Raises :class:`KeyMismatchError` (nothing written) when the ledger was written with
        another pseudonym key, or knows none of this process's sealing keys.
        """
        if self._schema_ready:
            return
        with self._schema_lock:
            if self._schema_ready:
                return
            db.upgrade(self.engine)
            with self.engine.begin() as conn:
                self._check_keys(conn)
            self._schema_ready = True

    def _check_keys(self, conn: Connection) -> None:
        fingerprint = self.pseudonymizer.key_id
        known = store.read_meta(conn, PSEUDONYM_KEY_ID)
        if known is None:
            store.write_meta(conn, PSEUDONYM_KEY_ID, fingerprint)
        elif known != fingerprint:
            log.error("pseudonym key %s is not the ledger's (%s): refusing to write",
                      fingerprint, known)
            raise KeyMismatchError(mismatch_message(fingerprint, known, self.settings))
        ring = self.cipher.key_ids
        stored = store.read_meta(conn, SEALING_KEY_IDS)
        if stored is None:
            store.write_meta(conn, SEALING_KEY_IDS, ",".join(ring))
            return
        known_ids = stored.split(",")
        if not set(ring) & set(known_ids):
            log.error("sealing keys %s unknown to the ledger (%s): refusing to write",
                      ring, known_ids)
            raise KeyMismatchError(sealing_mismatch_message(ring, known_ids, self.settings))
        added = [key_id for key_id in ring if key_id not in known_ids]
        if added:  # a rotation on this host: the ledger learns the new key ids
            store.update_meta(conn, SEALING_KEY_IDS, ",".join(known_ids + added))

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
                changes = changes_to_closed(self, conn, [row])
                if not changes:
                    outcome = store.insert_rows(conn, [(row, extras)], "api", store.now_ms())
        except KeyMismatchError:
            # Not this ledger's keys: kept in the spool (marked with this key's fingerprint,
            # so that a replay under the deployment's keys sets it aside instead of linking).
            log.error("call %s not written: this process's ledger keys are not the "
                      "deployment's (see voicebot keys fingerprint); spooled", row.call_id)
            return self._spool_event(row, extras, None)
        except Exception as exc:  # noqa: BLE001 - whatever failed, the event must survive
            if not isinstance(exc, SQLAlchemyError):
                log.exception("call %s: unexpected ledger failure, spooling", row.call_id)
            self._database_down_until = time.monotonic() + self.options.db_retry_ms / 1000
            return self._spool_event(row, extras, exc)
        if changes:
            report = "\n".join(change.french() for change in changes)
            log.error("call %s would change a closed month; set aside in %s:\n%s",
                      row.call_id, CLOSED_MONTH, report)
            self._set_aside(CLOSED_MONTH, row, extras, report)
            return RecordResult.CLOSED_MONTH
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
            self.spool.append(_event(row, extras, self.pseudonymizer.key_id))
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
        totals = {"events": 0, "inserted": 0, "duplicates": 0, "conflicts": 0,
                  "closed_month": 0}
        reports: list[str] = []
        try:
            self.ensure_schema()
            with self.spool.replaying() as files:
                if files is None:
                    return ReplayResult(0, 0, 0, 0, busy=True)
                for path in files:
                    counts = self._replay_file(path, reports)
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
        return ReplayResult(**totals, reports=tuple(reports))

    def _replay_file(self, path: Path, reports: list[str]) -> dict[str, int]:
        pairs: list[tuple[Row, store.Extras]] = []
        for event in self.spool.read(path):
            key_id = event.get("pseudonym_key_id")
            if key_id is not None and key_id != self.pseudonymizer.key_id:
                log.error("spooled call %s was pseudonymised with another key (%s); set aside "
                          "in %s", event.get("call_id"), key_id, WRONG_KEY)
                self.spool.set_aside(WRONG_KEY, event, "pseudonymised with another key")
                continue
            try:
                pairs.append(_from_event(event))
            except (KeyError, TypeError, ValueError) as exc:
                self.spool.set_aside(DAMAGED, event, f"unreadable event: {type(exc).__name__}")
        with self.engine.begin() as conn:
            changes = changes_to_closed(self, conn, [row for row, _ in pairs])
            refused = {call_id for change in changes for call_id in change.call_ids}
            kept = [pair for pair in pairs if pair[0].call_id not in refused]
            outcome = store.insert_rows(conn, kept, "spool", store.now_ms())
            counts = {"events": len(pairs), "inserted": len(outcome.inserted),
                      "duplicates": len(outcome.duplicates),
                      "conflicts": len(outcome.conflicts), "closed_month": len(refused)}
            store.write_journal(conn, store.now_ms(), "replay", {"file": path.name, **counts})
        extras = {row.call_id: extra for row, extra in pairs}
        for change in changes:
            report = change.french()
            reports.append(report)
            log.error("spooled calls would change a closed month; set aside in %s:\n%s",
                      CLOSED_MONTH, report)
            for row, extra in pairs:
                if row.call_id in change.call_ids:
                    self._set_aside(CLOSED_MONTH, row, extra, report)
        for row, _old in outcome.conflicts:
            log.error("spooled call %s conflicts with a stored row; set aside in %s",
                      row.call_id, CONFLICTS)
            self._set_aside(CONFLICTS, row, extras[row.call_id],
                            "call_id already stored with other fields")
        self.spool.done(path)
        return counts

    # --- satisfaction (ledger/satisfaction.py) -------------------------------------------
    def satisfaction(self, call_id: str) -> tuple[bool, int | None]:
        """(asked, score) of one call, for the console."""
        from ledger.satisfaction import read_satisfaction

        return read_satisfaction(self, call_id)

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
        score = interaction.satisfaction
        if score is not None and score not in SCORES:
            log.error("call %s: satisfaction score %r is not 1 to 5, not stored",
                      interaction.call_id, score)
            score = None
        extras = store.Extras(sealed, recording, interaction.stats,
                              bool(interaction.satisfaction_asked), score)
        return row, (store.NO_EXTRAS if extras == store.NO_EXTRAS else extras)

    def _caller_key(self, raw: str | None) -> str | None:
        """Pseudonym of the caller's number; None when withheld or not a telephone number
        (a SIP user, a trunk name): ``ledger/caller_id.py``, the rule the SIP adapter and
        the CSV import follow too."""
        caller = decide_caller(raw)
        if caller.e164 is None:
            if caller.why is not Why.WITHHELD:
                log.debug("caller id withheld: %s", caller.why.value)
            return None
        return self.pseudonymizer.pseudonym(caller.e164)


def _event(row: Row, extras: store.Extras, key_id: str | None = None) -> dict[str, Any]:
    event: dict[str, Any] = {"kind": "row", **row.as_values("spool", store.now_ms())}
    if key_id is not None:
        event["pseudonym_key_id"] = key_id
    event["transcript"] = extras.transcript.to_text() if extras.transcript else None
    event["recording_path"] = extras.recording_path
    if extras.stats is not None:
        event["stats"] = extras.stats._asdict()
    if extras.satisfaction_asked:
        event["satisfaction"] = {"score": extras.satisfaction}
    return event


def _from_event(event: dict[str, Any]) -> tuple[Row, store.Extras]:
    """Events spooled before statistics and satisfaction travelled with the row have neither."""
    transcript = Sealed.from_text(event["transcript"]) if event.get("transcript") else None
    stats = event.get("stats")
    if stats is not None:
        stats = CallStats(**{**stats, "reply_ms": tuple(int(ms) for ms in stats["reply_ms"])})
    satisfaction = event.get("satisfaction")
    score = satisfaction.get("score") if satisfaction is not None else None
    if score is not None and score not in SCORES:
        raise ValueError(f"satisfaction score {score!r}")
    return Row.from_values(event), store.Extras(transcript, event.get("recording_path"), stats,
                                                satisfaction is not None, score)


def _short(caller_key: str | None) -> str:
    return "withheld" if caller_key is None else caller_key[:12]
