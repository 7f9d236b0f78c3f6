"""Advisor contacts fed continuously by the contact-centre platform (SC3.2 rule 3).

Two doors, one import (``csv_io.import_csv``: atomic, idempotent by ``call_id``):

- a **drop folder** (``ledger.contacts_dir``, default ``<state_dir>/contacts``) watched by
  ``voicebot serve``: each ``*.csv`` file (the ledger's CSV format) is imported whole or not
  at all, then moved to ``done/`` or ``rejected/`` with a French report beside it
  (``<name>.rapport.txt``). Writers must write under another name (``.x.csv``,
  ``x.csv.tmp``) and rename into the folder: a rename is atomic, so a half-written file is
  never read. A crash between the import and the move imports the file again on the
  next scan: its rows are already there, nothing changes, and it is moved then.
- an **HTTP endpoint** on the node's health server: ``POST /contacts`` with
  ``Authorization: Bearer <ledger.contacts_token>``, a CSV body (``text/csv``, same
  format) or JSON (``application/json``): a list of contacts, or ``{"contacts": [...]}``,
  each ``{"call_id", "caller", "started_at", "ended_at"}`` plus optional ``motif`` and,
  for bot rows, ``channel``, ``message_s``, ``listened_s``, ``handoff``. Answers
  JSON: 200 ``{"rows", "inserted", "unchanged"}``; 400 (bad data) or 409 (a call id
  stored with other values, a closed month) ``{"error", "errors": [{"line", "message"}]}``;
  401 without the right token; 403 when no token is configured.
"""

from __future__ import annotations

import asyncio
import csv
import hmac
import io
import json
import logging
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.errors import VoicebotError
from ledger.closing import ClosedMonthError
from ledger.csv_io import COLUMNS, CsvInvalidError, ImportResult, import_csv

if TYPE_CHECKING:
    from aiohttp import web

    from ledger.api import Ledger

log = logging.getLogger(__name__)

DONE = "done"
REJECTED = "rejected"
REPORT_SUFFIX = ".rapport.txt"
MAX_BODY_BYTES = 16 * 1024 * 1024
"""A POST larger than this is refused (413): a day of contacts is far smaller."""


class DropFolder:
    """Imports every CSV file dropped in ``directory``, once, then files it with a report."""

    def __init__(self, ledger: Ledger, directory: Path):
        self.ledger = ledger
        self.directory = directory

    def scan(self) -> list[tuple[str, bool]]:
        """Import the files present now, oldest first: ``(name, imported?)`` for each."""
        for sub in (DONE, REJECTED):
            (self.directory / sub).mkdir(parents=True, exist_ok=True)
        results = []
        files = [p for p in self.directory.iterdir()
                 if p.is_file() and p.suffix.lower() == ".csv" and not p.name.startswith(".")]
        for path in sorted(files, key=lambda p: (p.stat().st_mtime_ns, p.name)):
            results.append((path.name, self._one(path)))
        return results

    def _one(self, path: Path) -> bool:
        stamp = datetime.now(self.ledger.calendar.tz).strftime("%Y-%m-%d %H:%M:%S")
        try:
            result = import_csv(self.ledger, path)
        except VoicebotError as exc:
            report = f"Refusé le {stamp} : rien n'a été importé.\n{exc}\n"
            self._file(path, REJECTED, report)
            log.error("contact feed: %s rejected: %s", path.name, str(exc).splitlines()[0])
            return False
        report = f"Importé le {stamp} : {result.summary()}\nSHA-256 : {result.sha256}\n"
        self._file(path, DONE, report)
        log.info("contact feed: %s imported (%d new)", path.name, result.inserted)
        return True

    def _file(self, path: Path, where: str, report: str) -> None:
        """Move the file and write its report beside it; never overwrite an earlier one."""
        target = self.directory / where / path.name
        if target.exists() or target.with_name(target.name + REPORT_SUFFIX).exists():
            target = target.with_name(f"{path.stem}-{time.time_ns()}{path.suffix}")
        report_path = target.with_name(target.name + REPORT_SUFFIX)
        report_path.write_text(report, encoding="utf-8")
        path.rename(target)


async def watch(folder: DropFolder, poll_ms: int, stop: asyncio.Event,
                scanned: asyncio.Condition | None = None) -> None:
    """Scan every ``poll_ms`` until ``stop`` is set; imports run in a worker thread.
    ``scanned`` is notified after each scan (tests and shutdown wait on it)."""
    while not stop.is_set():
        try:
            await asyncio.to_thread(folder.scan)
        except OSError as exc:
            log.error("contact feed: cannot scan %s (%s)", folder.directory, exc)
        if scanned is not None:
            async with scanned:
                scanned.notify_all()
        try:
            await asyncio.wait_for(stop.wait(), poll_ms / 1000)  # the polling period
        except asyncio.TimeoutError:
            pass


# --- HTTP -----------------------------------------------------------------------------------
def json_to_csv(body: Any) -> bytes:
    """JSON contacts to the ledger's CSV; each object is one line (line 2 is the first)."""
    items = body.get("contacts") if isinstance(body, dict) else body
    if not isinstance(items, list):
        raise VoicebotError("JSON attendu : une liste de contacts, ou {\"contacts\": [...]}.")
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for number, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            raise VoicebotError(f"contact n° {number} : objet JSON attendu.")
        values = {"channel": "advisor", **{k: v for k, v in item.items() if v is not None}}
        unknown = sorted(set(values) - set(COLUMNS))
        if unknown:
            raise VoicebotError(f"contact n° {number} : champ(s) inconnu(s) {', '.join(unknown)} "
                                f"(champs possibles : {', '.join(COLUMNS)}).")
        writer.writerow(_json_cell(values.get(name, "")) for name in COLUMNS)
    return out.getvalue().encode("utf-8")


def _json_cell(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class ContactsEndpoint:
    """``POST /contacts`` (see the module docstring)."""

    def __init__(self, ledger: Ledger, token: str):
        self.ledger = ledger
        self._token = token.encode("utf-8")

    async def handle(self, request: web.Request) -> web.Response:
        from aiohttp import web

        if not self._token:
            return _json(web, 403, {"error": "Point d'entrée désactivé : configurez ledger."
                                             "contacts_token (VOICEBOT_LEDGER_CONTACTS_TOKEN)."})
        given = request.headers.get("Authorization", "")
        scheme, _, token = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(),
                                                                   self._token):
            return _json(web, 401, {"error": "Jeton absent ou invalide (Authorization: Bearer …)."},
                         {"WWW-Authenticate": 'Bearer realm="allo-caf"'})
        if (request.content_length or 0) > MAX_BODY_BYTES:
            return _json(web, 413, {"error": f"Corps trop gros (au plus {MAX_BODY_BYTES} octets)."})
        chunks, size = [], 0
        while size <= MAX_BODY_BYTES:
            chunk = await request.content.read(1 << 16)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        data = b"".join(chunks)
        if size > MAX_BODY_BYTES:
            return _json(web, 413, {"error": f"Corps trop gros (au plus {MAX_BODY_BYTES} octets)."})
        status, body = await asyncio.to_thread(self._import, request.content_type, data)
        return _json(web, status, body)

    def _import(self, content_type: str, data: bytes) -> tuple[int, dict[str, Any]]:
        from ledger.api import LedgerUnavailableError

        name = Path("POST-contacts.csv")
        try:
            if content_type == "application/json":
                try:
                    parsed = json.loads(data)
                except (ValueError, UnicodeDecodeError) as exc:
                    raise VoicebotError(f"JSON illisible ({type(exc).__name__}).") from None
                data = json_to_csv(parsed)
            result: ImportResult = import_csv(self.ledger, name, data)
        except CsvInvalidError as exc:
            conflict = any("déjà enregistré dans la base" in e.message for e in exc.errors)
            return (409 if conflict else 400), {
                "error": str(exc).splitlines()[0],
                "errors": [{"line": e.line, "message": e.message} for e in exc.errors]}
        except ClosedMonthError as exc:
            return 409, {"error": str(exc), "errors": []}
        except LedgerUnavailableError as exc:
            return 503, {"error": str(exc), "errors": []}
        except VoicebotError as exc:
            return 400, {"error": str(exc), "errors": []}
        return 200, {"rows": result.rows, "inserted": result.inserted,
                     "unchanged": result.unchanged}


def _json(web: Any, status: int, body: dict, headers: dict | None = None) -> web.Response:
    return web.Response(text=json.dumps(body, ensure_ascii=False), status=status,
                        content_type="application/json", headers=headers)


class ContactFeed:
    """Both doors of a running node: the folder watcher task and ``POST /contacts``."""

    def __init__(self, ledger: Ledger, directory: Path, poll_ms: int, token: str):
        self.folder = DropFolder(ledger, directory)
        self.endpoint = ContactsEndpoint(ledger, token)
        self.poll_ms = poll_ms
        self._stop = asyncio.Event()
        self._task: asyncio.Task | None = None
        self.scanned = asyncio.Condition()
        """Notified after each scan of the folder."""

    @classmethod
    def for_node(cls, settings: Any, ledger: Ledger, http: Any) -> ContactFeed:
        """Registers ``POST /contacts`` on ``http`` (a ``HealthServer`` not yet started)."""
        options = settings.ledger
        directory = options.contacts_dir or settings.paths.state_dir / "contacts"
        feed = cls(ledger, directory, options.contacts_poll_ms, options.contacts_token)
        http.add_route("POST", "/contacts", feed.endpoint.handle)
        return feed

    def start(self) -> None:
        self.folder.directory.mkdir(parents=True, exist_ok=True)
        self._task = asyncio.create_task(
            watch(self.folder, self.poll_ms, self._stop, self.scanned), name="contact feed")

    async def stop(self) -> None:
        """Lets an import in progress finish (it is one transaction), then returns."""
        self._stop.set()
        if self._task is not None:
            await self._task
