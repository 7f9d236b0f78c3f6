"""The editors' YAML files, read and rewritten the way a careful person would edit them.

The files under ``knowledge/`` stay the source of truth, so the console edits them in
place with ruamel.yaml's round trip: comments, key order, quoting and the "one sentence per
line" layout of folded answers (``answer: >-``) survive, and a field the editor did not
touch keeps its exact text. Only the four fields of the form change (questions, answer,
source, reviewed); everything else of the entry (id, motif, sms, déclencheurs) is kept.
"""

from __future__ import annotations

import datetime as dt
import functools
import io
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError
from ruamel.yaml.scalarstring import FoldedScalarString, LiteralScalarString

from bot.kb.check import ENTRY_FIELDS, MESSAGES_FILE, MOTIFS_FILE

FORM_FIELDS = ("questions", "answer", "source", "reviewed")
BLOCK_SCALARS = (FoldedScalarString, LiteralScalarString)


@dataclass(frozen=True)
class EntryFields:
    """The editable part of an entry, as the form shows it."""

    questions: tuple[str, ...]
    """One caller phrasing per item, blank lines dropped."""
    answer: str
    """The answer with the file's line breaks (one sentence per line); the bot says the
    lines joined by spaces. Empty: no answer (hand-off and conversation entries)."""
    source: str
    reviewed: str
    """As typed, normally AAAA-MM-JJ; anything else is left for the validator to refuse."""

    @classmethod
    def from_form(cls, questions: str, answer: str, source: str, reviewed: str) -> EntryFields:
        lines = [" ".join(q.split()) for q in questions.splitlines()]
        return cls(tuple(q for q in lines if q), _clean_lines(answer), source.strip(),
                   reviewed.strip())

    @property
    def spoken_answer(self) -> str:
        """What the caller hears (the bot joins the lines, as YAML folds them)."""
        return " ".join(self.answer.split())

    def with_question(self, question: str) -> EntryFields:
        text = " ".join(question.split())
        if not text or text in self.questions:
            return self
        return EntryFields((*self.questions, text), self.answer, self.source, self.reviewed)


@dataclass(frozen=True)
class EntryDoc:
    """One entry as it stands in its file."""

    id: str
    motif: str
    file: str
    """File name inside the knowledge directory (``mon_compte.yml``)."""
    fields: EntryFields
    yaml_text: str
    """The entry's own lines of the file: what the history compares."""


class KnowledgeFiles:
    """The theme files of one knowledge directory (the real one or a temporary copy)."""

    def __init__(self, directory: Path):
        self.directory = directory

    def theme_files(self) -> list[Path]:
        """The files ``kb check`` reads entries from (same rule)."""
        if not self.directory.is_dir():
            return []
        return sorted(p for p in self.directory.iterdir() if p.suffix in (".yml", ".yaml")
                      and p.name not in (MOTIFS_FILE, MESSAGES_FILE))

    def entries(self) -> list[EntryDoc]:
        """Every entry of every theme file that parses, in file order."""
        found: list[EntryDoc] = []
        for path in self.theme_files():
            try:
                found += entries_of_text(path.name, _read(path))
            except (OSError, UnicodeDecodeError):
                continue  # ``kb check`` names the unreadable file
        return found

    def entry(self, entry_id: str) -> EntryDoc | None:
        return next((e for e in self.entries() if e.id == entry_id), None)

    def motif_labels(self) -> dict[str, str]:
        try:
            data = _yaml().load(_read(self.directory / MOTIFS_FILE))
        except (OSError, YAMLError):
            return {}
        motifs = data.get("motifs") if isinstance(data, dict) else None
        return {str(m["id"]): str(m.get("label") or m["id"]) for m in motifs or []
                if isinstance(m, dict) and "id" in m}

    def edited_text(self, entry_id: str, fields: EntryFields) -> tuple[str, str] | None:
        """(file name, new text of that file) with ``fields`` applied to the entry, or None
        when no theme file holds ``entry_id``."""
        for path in self.theme_files():
            text = _read(path)
            if not any(e.id == entry_id for e in entries_of_text(path.name, text)):
                continue
            data = _load(text)  # a fresh tree: the cached entries are never mutated
            item = _find(data, entry_id)
            if item is None:
                continue
            apply_fields(item, fields)
            return path.name, _dump(data)
        return None

    def write(self, file: str, text: str) -> None:
        """Replace one file atomically (readers see the old text or the new, never half)."""
        target = self.directory / file
        mode = target.stat().st_mode & 0o777 if target.exists() else 0o644
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=f".{file}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(text)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(tmp, mode)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


@functools.lru_cache(maxsize=128)
def entries_of_text(file: str, text: str) -> tuple[EntryDoc, ...]:
    """The entries of one theme file's text (empty when it does not parse). Cached by
    content: a round-trip parse of a theme file costs a good part of a second."""
    return tuple(_entries_of_text(file, text))


def _entries_of_text(file: str, text: str) -> list[EntryDoc]:
    try:
        data = _load(text)
    except YAMLError:
        return []
    items = data.get("entries") if isinstance(data, CommentedMap) else None
    if not isinstance(items, CommentedSeq):
        return []
    lines = text.splitlines()
    starts = [items.lc.item(i)[0] for i in range(len(items))]
    found = []
    for index, item in enumerate(items):
        if not isinstance(item, CommentedMap) or not isinstance(item.get("id"), str):
            continue
        end = starts[index + 1] if index + 1 < len(starts) else len(lines)
        block = lines[starts[index]:end]
        while block and (not block[-1].strip() or block[-1].lstrip().startswith("#")):
            block.pop()  # blank lines and the next entry's leading comment
        found.append(EntryDoc(str(item["id"]), str(item.get("motif") or ""), file,
                              fields_of(item), "\n".join(block) + "\n"))
    return found


def fields_of(item: CommentedMap) -> EntryFields:
    questions = item.get("questions")
    return EntryFields(
        tuple(" ".join(str(q).split()) for q in questions if q is not None)
        if isinstance(questions, list) else (),
        _answer_lines(item.get("answer")),
        "" if item.get("source") is None else str(item["source"]),
        _date_text(item.get("reviewed")),
    )


def apply_fields(item: CommentedMap, fields: EntryFields) -> None:
    """Change ``item`` in place; values the editor left as they were keep their layout."""
    if fields_of(item) == fields:
        return
    _set_questions(item, fields.questions)
    _set(item, "answer", _answer_value(item.get("answer"), fields.answer))
    old_source = item.get("source")
    _set(item, "source", old_source if str(old_source or "") == fields.source
         else fields.source or None)
    _set(item, "reviewed", _reviewed_value(item.get("reviewed"), fields.reviewed))


def _set_questions(item: CommentedMap, questions: tuple[str, ...]) -> None:
    seq = item.get("questions")
    if not isinstance(seq, CommentedSeq):
        seq = CommentedSeq()
        _set(item, "questions", seq)
    kept = {" ".join(str(q).split()): q for q in seq if q is not None}
    wanted = [kept.get(q, q) for q in questions]
    for index, value in enumerate(wanted):  # in place: comments stay on their items
        if index < len(seq):
            if seq[index] is not value:
                seq[index] = value
        else:
            seq.append(value)
    while len(seq) > len(wanted):
        seq.pop()


def _set(item: CommentedMap, key: str, value: Any) -> None:
    if value is None or value == "":
        if key in item:
            trailing = _pop_trailing_blank(item) if list(item)[-1] == key else None
            del item[key]
            if trailing is not None and item:
                _attach_trailing(item, list(item)[-1], trailing)
        return
    if key in item:
        if item[key] is not value:
            item[key] = value
        return
    order = list(ENTRY_FIELDS)
    position = 0  # after the last field that comes before ``key`` in the usual order
    for index, existing in enumerate(item):
        if existing in order and order.index(existing) < order.index(key):
            position = index + 1
    trailing = _pop_trailing_blank(item) if position == len(item) else None
    item.insert(position, key, value)
    if trailing is not None:  # the blank line that ends the entry moves below the new field
        _attach_trailing(item, key, trailing)


def _attach_trailing(item: CommentedMap, key: str, token: Any) -> None:
    value = item[key]
    if isinstance(value, CommentedSeq) and value:
        value.ca.items[len(value) - 1] = [token, None, None, None]
        return
    if isinstance(value, BLOCK_SCALARS) and token.value.startswith("\n"):
        token.value = token.value[1:]
    item.ca.items[key] = [None, None, token, None]


def _pop_trailing_blank(node: Any) -> Any:
    """Detach the comment token (blank lines, a comment) that follows the last value of
    ``node``; ruamel hangs it on that value, so a field appended after it would land below
    the blank line that separates entries."""
    if isinstance(node, CommentedMap) and node:
        last = list(node)[-1]
        if isinstance(node[last], CommentedMap | CommentedSeq) and node[last]:
            return _pop_trailing_blank(node[last])
        slots = node.ca.items.get(last)
        if slots and len(slots) > 2 and slots[2] is not None:
            token, slots[2] = slots[2], None
            if isinstance(node[last], BLOCK_SCALARS):  # its own line break ends the scalar
                token.value = "\n" + token.value
            return token
        return None
    if isinstance(node, CommentedSeq) and node:
        last_index = len(node) - 1
        if isinstance(node[last_index], CommentedMap | CommentedSeq) and node[last_index]:
            return _pop_trailing_blank(node[last_index])
        slots = node.ca.items.get(last_index)
        if slots and slots[0] is not None:
            token, slots[0] = slots[0], None
            return token
    return None


def _answer_lines(value: Any) -> str:
    if value is None:
        return ""
    text = str(value)
    positions = getattr(value, "fold_pos", None)
    if isinstance(value, FoldedScalarString) and positions:
        pieces, start = [], 0
        for position in positions:
            pieces.append(text[start:position])
            start = position + 1
        pieces.append(text[start:])
        text = "\n".join(pieces)
    return _clean_lines(text)


def _answer_value(old: Any, answer: str) -> Any:
    lines = answer.splitlines()
    if not lines:
        return None
    if _answer_lines(old) == answer:
        return old
    if len(lines) == 1 and not isinstance(old, FoldedScalarString | LiteralScalarString):
        return lines[0]
    value = FoldedScalarString(" ".join(lines))
    folds, offset = [], 0
    for line in lines[:-1]:
        offset += len(line)
        folds.append(offset)  # the space that joins this line to the next
        offset += 1
    value.fold_pos = folds
    return value


def _reviewed_value(old: Any, reviewed: str) -> Any:
    if not reviewed:
        return None
    if _date_text(old) == reviewed:
        return old
    try:
        return dt.date.fromisoformat(reviewed)
    except ValueError:
        return reviewed  # kept as typed: the validator explains the expected format


def _date_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def _clean_lines(text: str) -> str:
    lines = (" ".join(line.split()) for line in text.splitlines())
    return "\n".join(line for line in lines if line)


def _find(data: Any, entry_id: str) -> CommentedMap | None:
    items = data.get("entries") if isinstance(data, CommentedMap) else None
    for item in items if isinstance(items, CommentedSeq) else []:
        if isinstance(item, CommentedMap) and item.get("id") == entry_id:
            return item
    return None


def _yaml() -> YAML:
    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap a long question or answer line
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


def _load(text: str) -> Any:
    return _yaml().load(text)


def _dump(data: Any) -> str:
    out = io.StringIO()
    _yaml().dump(data, out)
    return out.getvalue()


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8")
