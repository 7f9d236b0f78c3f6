"""Check an edit before it touches the editors' files, with ``kb check``'s own validator.

The edited file is written into a temporary copy of the knowledge directory and the whole
copy is checked, exactly as ``voicebot kb check`` would check the real one after the edit
(duplicates across entries and motifs included). Each French error is then placed beside
the form field it concerns, found from the line it names: the line of that field in the
edited entry, or a reference "(knowledge/x.yml:12)" to one of them in another entry's error.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from bot.errors import KbError, VoicebotError
from bot.kb.check import CheckResult, check_kb
from bot.kb.model import KnowledgeBase
from bot.kb.yaml_lines import LDict, LList, load_yaml
from console.editor.entries import FORM_FIELDS, EntryFields, KnowledgeFiles

PLACE = re.compile(r"\(([^()\s]+\.ya?ml):(\d+)\)")
NAMED_FIELD = re.compile(r"champ « (\w+) »")


class EntryNotFoundError(VoicebotError):
    def __init__(self, entry_id: str):
        super().__init__(f"Aucune fiche « {entry_id} » dans la base : elle a peut-être été "
                         "renommée ou supprimée. Revenez à la liste des fiches.")


@dataclass(frozen=True)
class PlacedError:
    """One error of ``kb check`` and the form field it belongs to ("" when none)."""

    field: str
    message: str
    where: str
    """``knowledge/x.yml:12``, as ``kb check`` prints it."""


@dataclass
class EditCheck:
    """The verdict on one edited entry, ready for the form."""

    entry_id: str
    file: str
    text: str
    """The whole edited file, as it would be written."""
    original: str
    """The file as it is now."""
    errors: list[PlacedError] = field(default_factory=list)
    kb: KnowledgeBase | None = None

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def changed(self) -> bool:
        return self.text != self.original

    def for_field(self, name: str) -> list[PlacedError]:
        return [e for e in self.errors if e.field == name]

    @property
    def general(self) -> list[PlacedError]:
        return [e for e in self.errors if e.field not in FORM_FIELDS]


def check_edit(knowledge_dir: Path, entry_id: str, fields: EntryFields,
               today: dt.date | None = None) -> EditCheck:
    """``kb check`` of the knowledge base as it would be with ``fields`` in ``entry_id``."""
    files = KnowledgeFiles(knowledge_dir)
    edited = files.edited_text(entry_id, fields)
    if edited is None:
        raise EntryNotFoundError(entry_id)
    file, text = edited
    with tempfile.TemporaryDirectory(prefix="allo-caf-edit-") as tmp:
        copy = Path(tmp) / knowledge_dir.name  # same name: messages read "knowledge/x.yml:12"
        shutil.copytree(knowledge_dir, copy, ignore=shutil.ignore_patterns(".*"))
        (copy / file).write_text(text, encoding="utf-8")
        result = check_kb(copy, today)
        places = _field_lines(copy / file, f"{copy.name}/{file}", entry_id)
    original = (knowledge_dir / file).read_text(encoding="utf-8")
    return EditCheck(entry_id, file, text, original,
                     _place(result, f"{knowledge_dir.name}/{file}", places), result.kb)


@dataclass(frozen=True)
class _Places:
    entry_line: int
    lines: dict[int, str]
    """Line of the edited file -> form field."""


def _field_lines(path: Path, display: str, entry_id: str) -> _Places:
    data, _ = load_yaml(path, display)
    items = data.get("entries") if isinstance(data, dict) else None
    for item in items if isinstance(items, list) else []:
        if isinstance(item, LDict) and item.get("id") == entry_id:
            lines = {item.key_lines[name]: name for name in FORM_FIELDS if name in item.key_lines}
            questions = item.get("questions")
            if isinstance(questions, LList):
                lines.update({q.line: "questions" for q in questions if hasattr(q, "line")})
            return _Places(item.line, lines)
    return _Places(0, {})


def _place(result: CheckResult, display: str, places: _Places) -> list[PlacedError]:
    return [PlacedError(_field_of(error, display, places), error.message,
                        f"{error.file}:{error.line}") for error in result.errors]


def _field_of(error: KbError, display: str, places: _Places) -> str:
    if error.file == display:
        if error.line in places.lines:
            return places.lines[error.line]
        if error.line == places.entry_line:  # "champ « answer » manquant" and the like
            named = NAMED_FIELD.search(error.message)
            if named and named.group(1) in FORM_FIELDS:
                return named.group(1)
    for match in PLACE.finditer(error.message):  # another entry's error naming our line
        if match.group(1) == display and int(match.group(2)) in places.lines:
            return places.lines[int(match.group(2))]
    return ""
