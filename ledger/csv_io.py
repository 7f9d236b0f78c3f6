"""The ledger's CSV: import (atomic, idempotent, every bad line listed) and export.

The one place where seconds with decimals and ISO 8601 strings exist: they become integer
milliseconds here and nowhere else. Durations are parsed as decimals (``1.1`` is exactly
1100 ms) and refuse more than 3 decimals rather than round. Messages are French and name
the line in the file (the header is line 1); a caller value is never echoed, since a
malformed number is still personal data.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, TextIO
from zoneinfo import ZoneInfo

from sqlalchemy.exc import SQLAlchemyError

from bot.errors import VoicebotError
from ledger import store
from ledger.caller_id import Why, decide_caller
from ledger.closing import ClosedMonthError, changes_to_closed
from ledger.gc_pause import collector_paused
from ledger.pseudonym import (
    PSEUDONYM_PREFIX,
    InvalidNumberError,
    Pseudonymizer,
    format_pseudonym,
    parse_pseudonym,
)
from ledger.records import (
    MAX_CALL_ID,
    MAX_EPOCH_MS,
    MIN_EPOCH_MS,
    Row,
    call_id_problem,
    motif_problem,
)
from ledger.rule import Channel, date_to_day, from_epoch_ms
from ledger.units import format_seconds

if TYPE_CHECKING:
    from ledger.api import Ledger

COLUMNS = ("call_id", "channel", "caller", "started_at", "ended_at", "motif",
           "message_s", "listened_s", "handoff")
HEADER = ",".join(COLUMNS)

_INSTANT = re.compile(
    r"(\d{4}-\d{2}-\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?"
    r"(Z|z|[+-]\d{2}(?::?\d{2})?)?\Z"
)
_SECONDS = re.compile(r"(\d+)(?:\.(\d+))?\Z")


@dataclass(frozen=True)
class CsvRowError:
    """One problem at one line of a CSV file."""

    line: int
    message: str

    def __str__(self) -> str:
        return f"ligne {self.line} : {self.message}"


class CsvInvalidError(VoicebotError):
    """The file has errors; nothing was imported."""

    def __init__(self, file: Path, errors: list[CsvRowError]):
        self.file = file
        self.errors = errors
        lines = "\n".join(f"  {file.name}, {e}" for e in errors)
        super().__init__(
            f"{file} : {len(errors)} erreur(s), rien n'a été importé.\n{lines}"
        )


@dataclass(frozen=True)
class ImportResult:
    rows: int
    inserted: int
    unchanged: int
    sha256: str

    def summary(self) -> str:
        return (f"{self.rows} ligne(s) lue(s) : {self.inserted} ajoutée(s), "
                f"{self.unchanged} déjà présente(s) à l'identique.")


class _FieldError(ValueError):
    pass


# --- values ---------------------------------------------------------------------------------
def parse_seconds(text: str, column: str) -> int:
    """``12.345`` seconds to 12345 ms, exactly; more than 3 decimals is an error, not rounded."""
    match = _SECONDS.match(text)
    if match is None:
        if not text:
            raise _FieldError(f"{column} vide (durée en secondes attendue, ex. 12.345)")
        if re.fullmatch(r"\d+,\d+", text):
            raise _FieldError(f"{column} « {text} » : utilisez le point comme séparateur "
                              f"décimal (ex. {text.replace(',', '.')})")
        if text.startswith("-"):
            raise _FieldError(f"{column} « {text} » : une durée ne peut pas être négative")
        raise _FieldError(f"{column} « {text} » invalide : durée en secondes attendue, "
                          "au plus 3 décimales (ex. 12.345)")
    whole, decimals = match.group(1), match.group(2) or ""
    if len(decimals) > 3:
        raise _FieldError(f"{column} « {text} » a plus de 3 décimales "
                          "(précision : la milliseconde)")
    return int(whole) * 1000 + int(decimals.ljust(3, "0"))


class _InstantParser:
    """ISO 8601 with a UTC offset to epoch milliseconds; a time without offset is refused.

    Dates and offsets repeat across a month's lines: each is validated and converted once.
    """

    def __init__(self) -> None:
        self._day_ms: dict[str, int] = {}
        self._offset_ms: dict[str, int] = {}

    def __call__(self, text: str, column: str) -> int:
        match = _INSTANT.match(text)
        if match is None:
            raise _FieldError(f"{column} « {text} » invalide : date et heure ISO 8601 avec "
                              "décalage attendues (ex. 2024-03-01T10:00:00+01:00)")
        day, hour, minute, second, fraction, offset = match.groups()
        if fraction is not None and len(fraction) > 3:
            raise _FieldError(f"{column} « {text} » a plus de 3 décimales de seconde "
                              "(précision : la milliseconde)")
        if offset is None:
            raise _FieldError(f"{column} « {text} » sans décalage horaire : ajoutez +01:00, "
                              "+02:00 ou Z (heure de Paris en hiver, en été, ou UTC)")
        day_ms = self._day_ms.get(day)
        if day_ms is None:
            try:
                day_ms = self._day_ms[day] = date_to_day(date.fromisoformat(day)) * 86_400_000
            except ValueError:
                raise _FieldError(f"{column} « {text} » : date inexistante") from None
        offset_ms = self._offset_ms.get(offset)
        if offset_ms is None:
            offset_ms = self._offset_ms[offset] = _offset_ms(offset, text, column)
        h, m, s = int(hour), int(minute), int(second)
        if h > 23 or m > 59 or s > 59:
            raise _FieldError(f"{column} « {text} » : heure inexistante")
        ms = int(fraction.ljust(3, "0")) if fraction else 0
        return day_ms + ((h * 60 + m) * 60 + s) * 1000 + ms - offset_ms


def _offset_ms(offset: str, text: str, column: str) -> int:
    if offset in ("Z", "z"):
        return 0
    digits = offset[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:] or 0)
    if hours > 14 or minutes > 59:
        raise _FieldError(f"{column} « {text} » : décalage horaire invalide")
    return (-1 if offset[0] == "-" else 1) * (hours * 60 + minutes) * 60_000


def parse_instant(text: str, column: str) -> int:
    """One ISO 8601 instant to epoch milliseconds (see :class:`_InstantParser`)."""
    return _InstantParser()(text, column)


def format_instant(epoch_ms: int, tz: ZoneInfo) -> str:
    """Local time of ``tz`` with its offset and milliseconds: ``2024-03-31T03:00:00.000+02:00``."""
    local = from_epoch_ms(epoch_ms).astimezone(tz)
    offset = local.utcoffset() or timedelta(0)
    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    minutes = abs(minutes)
    return (f"{local:%Y-%m-%dT%H:%M:%S}.{epoch_ms % 1000:03d}"
            f"{sign}{minutes // 60:02d}:{minutes % 60:02d}")


# --- decoding, whole-file problems ----------------------------------------------------------
MAX_FIELD_CHARS = 1024
"""Longer fields are refused (the longest legitimate one, a call id, has 255 characters)."""
_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
         (codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"),
         (codecs.BOM_UTF16_BE, "utf-16"))


class CsvUnreadableError(CsvInvalidError):
    """The file cannot be read as CSV text at all: one line, with where."""

    def __init__(self, file: Path, line: int, message: str):
        self.file = file
        self.errors = [CsvRowError(line, message)]
        VoicebotError.__init__(self, f"{file}, ligne {line} : {message} ; rien n'a été importé.")


def decode_csv(path: Path, data: bytes) -> str:
    """UTF-8 (with or without BOM), or UTF-16/32 with their BOM; anything else is refused.

    Latin-1 and Windows-1252 are not guessed: a wrong guess would store wrong call ids and
    motifs silently, so the file is refused with the line of the first foreign byte.
    """
    for bom, codec in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(codec)
            except UnicodeDecodeError as exc:
                line = data[:exc.start].decode(codec, "replace").count("\n") + 1
                raise CsvUnreadableError(path, line, f"fichier {codec.upper()} abîmé "
                                         "(caractère illisible)") from None
    if len(data) >= 4 and data.count(b"\x00", 0, 200) * 3 >= min(len(data), 200):
        raise CsvUnreadableError(path, 1, "fichier en UTF-16 sans BOM : enregistrez-le en "
                                 "« CSV UTF-8 »")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        byte = data[exc.start]
        guess = " : probablement Latin-1 ou Windows-1252" if byte >= 0xA0 or byte in (
            0x80, 0x92, 0x96, 0x9C) else ""
        raise CsvUnreadableError(
            path, line, f"le fichier n'est pas en UTF-8 (octet 0x{byte:02X}{guess}) ; "
            "enregistrez-le en « CSV UTF-8 »") from None


def _records(path: Path, reader) -> Iterator[tuple[int, list[str]]]:  # noqa: ANN001
    """(first line of the record, fields); a malformed file becomes a French error."""
    line = 1
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            problem = str(exc)
            if "field larger than field limit" in problem:
                message = (f"champ de plus de {csv.field_size_limit() // 1024} Kio : "
                           "guillemet non refermé, ou fichier qui n'est pas ce CSV")
            else:
                message = "ligne CSV illisible (guillemets mal placés ?)"
            raise CsvUnreadableError(path, reader.line_num or line, message) from None
        yield line, fields
        line = reader.line_num + 1


def _shorten(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


# --- reading -----------------------------------------------------------------------------
_CHANNELS = {"bot": Channel.BOT, "advisor": Channel.ADVISOR}
_HANDOFF = {"true": True, "false": False}
_CALLER_HELP = ("caller invalide : numéro de téléphone non reconnu (formats acceptés : "
                "+33 1 99 00 12 34, 0199001234, 0033199001234, 01.99.00.12.34, "
                "pseudo:<64 hexadécimaux> ; vide ou anonymous si le numéro est masqué)")


class _RowParser:
    """CSV fields to a Row, fast: an import reads 500 k lines.

    Values that repeat (callers, motifs) are checked once and remembered; the general
    checks of ``records`` run only on lines that failed the fast path, to word the error.
    """

    def __init__(self, pseudonymizer: Pseudonymizer):
        self.pseudonymizer = pseudonymizer
        self._keys: dict[str, str | None] = {}
        self._motifs: set[str] = set()
        self._instant = _InstantParser()
        self.raw_numbers = 0

    def parse(self, fields: list[str]) -> tuple[Row | None, list[str]]:
        call_id, channel_text, caller, started, ended, motif, message, listened, handoff = fields
        call_id = restore_cell(call_id)
        problems: list[str] = []
        if not (call_id and len(call_id) <= MAX_CALL_ID and call_id.isprintable()
                and call_id == call_id.strip()):
            problems.append(call_id_problem(call_id) or "call_id invalide")
        channel = _CHANNELS.get(channel_text)
        if channel is None:
            problems.append(f"channel « {channel_text} » invalide "
                            "(valeurs possibles : bot, advisor)")
        try:
            caller_key = self._keys[caller]
        except KeyError:
            try:
                caller_key = self._caller_key(caller)
            except InvalidNumberError:
                problems.append(_CALLER_HELP)
                caller_key = None
        try:
            started_ms = self._instant(started, "started_at")
        except _FieldError as exc:
            problems.append(str(exc))
            started_ms = None
        try:
            ended_ms = self._instant(ended, "ended_at")
        except _FieldError as exc:
            problems.append(str(exc))
            ended_ms = None
        if motif not in self._motifs and channel is not None:
            problem = motif_problem(motif, channel)
            if problem:
                problems.append(problem)
            elif motif:
                self._motifs.add(motif)
        advisor = channel is Channel.ADVISOR
        try:
            message_ms = 0 if advisor and not message else parse_seconds(message, "message_s")
        except _FieldError as exc:
            problems.append(str(exc))
            message_ms = None
        try:
            listened_ms = 0 if advisor and not listened else parse_seconds(listened,
                                                                            "listened_s")
        except _FieldError as exc:
            problems.append(str(exc))
            listened_ms = None
        handoff_value = _HANDOFF.get(handoff, False if advisor and not handoff else None)
        if handoff_value is None:
            problems.append(f"handoff « {handoff} » invalide (valeurs possibles : true, false)")
        if started_ms is not None:
            if not MIN_EPOCH_MS <= started_ms < MAX_EPOCH_MS:
                problems.append("started_at hors de la plage 2000–2099")
            elif ended_ms is not None and ended_ms < started_ms:
                problems.append("ended_at antérieur à started_at")
        if message_ms is not None and listened_ms is not None and listened_ms > message_ms:
            problems.append(f"listened_s ({format_seconds(listened_ms)}) dépasse message_s "
                            f"({format_seconds(message_ms)})")
        if problems:
            return None, problems
        return Row(call_id, channel, caller_key, started_ms, ended_ms, motif, message_ms,
                   listened_ms, handoff_value), problems

    def _caller_key(self, caller: str) -> str | None:
        """A pseudonym as exported, else the rule of live calls (``ledger/caller_id.py``):
        a telephone number is pseudonymised, anything else is withheld. Digits that make
        no number are refused here: a person typed them and can correct them."""
        key = parse_pseudonym(caller)
        if key is None:
            if caller.startswith(PSEUDONYM_PREFIX):
                raise InvalidNumberError("malformed pseudonym")
            identity = decide_caller(caller)
            if identity.why is Why.MALFORMED_NUMBER:
                raise InvalidNumberError("malformed number")
            if identity.e164 is not None:
                key = self.pseudonymizer.pseudonym(identity.e164)
                self.raw_numbers += 1
        self._keys[caller] = key
        return key


def read_csv(path: Path, pseudonymizer: Pseudonymizer, data: bytes | None = None
             ) -> tuple[list[tuple[int, Row]], list[CsvRowError], int]:
    """Every row with its line number, every error, and how many raw numbers were seen.

    ``data``: the file's bytes when they did not come from a file (an HTTP body); ``path``
    then only names them in messages.
    """
    if data is None:
        data = read_bytes(path)
    text = decode_csv(path, data)
    nul = text.find("\x00")
    if nul >= 0:
        raise CsvUnreadableError(path, text.count("\n", 0, nul) + 1,
                                 "octet NUL (0x00) : ce n'est pas un fichier CSV texte "
                                 "(fichier binaire, ou copie abîmée)")
    reader = _records(path, csv.reader(io.StringIO(text, newline="")))
    errors: list[CsvRowError] = []
    rows: list[tuple[int, Row]] = []
    first = next(reader, None)
    if first is None:
        raise CsvInvalidError(path, [CsvRowError(1, f"fichier vide ; en-tête attendu : {HEADER}")])
    header = first[1]
    if tuple(header) != COLUMNS:
        found = _shorten(",".join(header))
        hint = " (séparateur attendu : la virgule)" if ";" in found or "\t" in found else ""
        raise CsvInvalidError(path, [CsvRowError(
            1, f"en-tête attendu « {HEADER} », trouvé « {found} »{hint}")])
    parser = _RowParser(pseudonymizer)
    seen: dict[str, tuple[int, Row]] = {}
    for start, fields in reader:
        if not fields or fields == [""]:
            continue
        if len(fields) != len(COLUMNS):
            errors.append(CsvRowError(start, f"{len(fields)} colonne(s) au lieu de "
                                             f"{len(COLUMNS)} ({HEADER})"))
            continue
        if max(map(len, fields)) > MAX_FIELD_CHARS:
            too_long = [(name, len(value)) for name, value in zip(COLUMNS, fields, strict=True)
                        if len(value) > MAX_FIELD_CHARS]
            errors.extend(CsvRowError(start, f"{name} de {size} caractères : au plus "
                                             f"{MAX_FIELD_CHARS}") for name, size in too_long)
            continue
        row, problems = parser.parse(fields)
        errors.extend(CsvRowError(start, p) for p in problems)
        if row is None:
            continue
        previous = seen.get(row.call_id)
        if previous is None:
            seen[row.call_id] = (start, row)
            rows.append((start, row))
        elif previous[1].billing_key() != row.billing_key():
            errors.append(CsvRowError(start, f"call_id « {row.call_id} » déjà présent "
                                             f"ligne {previous[0]} avec d'autres valeurs"))
    return rows, errors, parser.raw_numbers


def read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise VoicebotError(f"{path} : lecture impossible ({exc.strerror}).") from None


def import_csv(ledger: Ledger, path: Path, data: bytes | None = None) -> ImportResult:
    """All rows or none: bad lines and call ids stored with other values reject the file.

    ``data``: the CSV's bytes when they do not come from ``path`` (see :func:`read_csv`).
    """
    with collector_paused():
        return _import(ledger, path, read_bytes(path) if data is None else data)


def _import(ledger: Ledger, path: Path, data: bytes) -> ImportResult:
    rows, errors, _raw_numbers = read_csv(path, ledger.pseudonymizer, data)
    if errors:
        raise CsvInvalidError(path, errors)
    digest = hashlib.sha256(data).hexdigest()
    lines = {row.call_id: line for line, row in rows}
    try:
        ledger.ensure_schema()  # refuses (KeyMismatchError) a process with other keys
        with ledger.engine.begin() as conn:
            changes = changes_to_closed(ledger, conn, [row for _, row in rows])
            if changes:
                raise ClosedMonthError(str(path), changes)
            outcome = store.insert_rows(conn, [(row, store.NO_EXTRAS) for _, row in rows],
                                        "import", store.now_ms(), dry_run_on_conflict=True)
            if outcome.conflicts:
                raise CsvInvalidError(path, [
                    CsvRowError(lines[new.call_id], _conflict_message(new, old))
                    for new, old in outcome.conflicts])
            result = ImportResult(len(rows), len(outcome.inserted), len(outcome.duplicates),
                                  digest)
            store.write_journal(conn, store.now_ms(), "import", {
                "file": path.name, "sha256": digest, "rows": result.rows,
                "inserted": result.inserted, "unchanged": result.unchanged})
    except SQLAlchemyError as exc:
        raise ledger.unavailable(exc) from None
    return result


def _conflict_message(new: Row, old: Row) -> str:
    names = ("channel", "caller", "started_at", "ended_at", "motif", "message_s",
             "listened_s", "handoff")
    pairs = zip(names, new.billing_key(), old.billing_key(), strict=True)
    differ = [name for name, a, b in pairs if a != b]
    return (f"call_id « {new.call_id} » déjà enregistré dans la base avec d'autres valeurs "
            f"({', '.join(differ)}) ; une ligne enregistrée ne se modifie pas")


# --- writing -----------------------------------------------------------------------------
FORMULA_STARTS = ("=", "+", "-", "@")
"""A spreadsheet runs a cell starting with one of these as a formula (CSV injection)."""


def neutralise_cell(text: str) -> str:
    """``=cmd|…`` is written ``'=cmd|…``: spreadsheets show it as text and run nothing.

    A cell starting with the quote itself gets one more, so that :func:`restore_cell`
    gives back exactly what was stored (an export re-imports to the same rows).
    """
    return "'" + text if text.startswith((*FORMULA_STARTS, "'")) else text


def restore_cell(text: str) -> str:
    """The import's inverse of :func:`neutralise_cell`."""
    return text[1:] if text.startswith("'") and text[1:].startswith((*FORMULA_STARTS, "'")) \
        else text


def write_csv(rows: Iterable[Row], out: TextIO, tz: ZoneInfo) -> int:
    """The export: the import's format, pseudonyms instead of numbers, Paris local times."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    count = 0
    for row in rows:
        writer.writerow((
            neutralise_cell(row.call_id), row.channel.value, format_pseudonym(row.caller_key),
            format_instant(row.started_at_ms, tz), format_instant(row.ended_at_ms, tz),
            row.motif, format_seconds(row.message_ms), format_seconds(row.listened_ms),
            "true" if row.handoff else "false",
        ))
        count += 1
    return count
