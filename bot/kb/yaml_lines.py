"""YAML that remembers where each value came from, and refuses duplicate keys.

Editors fix what we can point at: every string, list and mapping read here carries the
1-based line it starts on. PyYAML silently keeps the last of two identical keys, which
would hide half an edit; here a duplicate key is an error at its line.

Whatever the file holds, the result is a value or a ``KbError`` in French, never an
exception: bytes that are not UTF-8 (a file saved in Latin-1 or UTF-16), control characters
pasted from a word processor, impossible dates, recursive aliases and alias bombs
("billion laughs"), nesting deeper than a knowledge base ever needs. Work and memory are
bounded before parsing: a file over ``MAX_FILE_BYTES`` is refused unread, nesting stops at
``MAX_DEPTH`` (PyYAML's composer recurses, so a deep file would otherwise overflow the
stack), and aliases may not expand to more than ``MAX_NODES`` values.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bot.errors import KbError


class LStr(str):
    line: int


class LList(list):
    line: int


class LDict(dict):
    line: int
    key_lines: dict[str, int]


@dataclass(frozen=True)
class Unreadable:
    """A value YAML could not build (an impossible date): already reported at its line, so
    checks that find it in a field say nothing more about that field."""

    line: int


MAX_FILE_BYTES = 1_000_000
"""A theme file holds a few dozen kilobytes; a megabyte is twenty times the largest, and
PyYAML (pure Python, for the line numbers and the limits below) reads it in seconds."""
MAX_DEPTH = 20
"""Nesting levels: a knowledge base needs five (file, entries, entry, questions, text)."""
MAX_NODES = 100_000
"""Values in one file once aliases are expanded: ten times a large theme file, a fraction
of what a "billion laughs" alias bomb would expand to."""

# Characters YAML refuses (PyYAML's Reader.NON_PRINTABLE), plus the Unicode line and paragraph
# separators and NEL, which YAML counts as line breaks where an editor sees none: line numbers
# would no longer match the editor's.
_FORBIDDEN = re.compile("[^\x09\x0A\x0D\x20-\x7E\xA0-\u2027\u202A-\uD7FF"
                        "\uE000-\uFFFD\U00010000-\U0010FFFF]")
_CONTROL_NAMES = {
    "\x00": "caractère nul", "\x08": "retour arrière", "\x0b": "tabulation verticale",
    "\x0c": "saut de page", "\x1b": "caractère d'échappement", "\x7f": "caractère de suppression",
    "\x85": "passage à la ligne (NEL)", "\u2028": "séparateur de ligne",
    "\u2029": "séparateur de paragraphe",
}
_LINE_BREAK = re.compile("\r\n|\r|\n")


class _Refused(Exception):
    """A file the loader will not go on reading: its line and the French reason."""

    def __init__(self, line: int, message: str):
        super().__init__(message)
        self.line = line
        self.message = message


def load_yaml(path: Path, display: str) -> tuple[Any, list[KbError]]:
    """Parse ``path``; return (value with line info, errors). Value is None when the file
    cannot be read as a whole (encoding, syntax, limits)."""
    try:
        text = _read_text(path)
        node, first_alias_line = _compose(text)
    except _Refused as exc:
        return None, [KbError(display, exc.line, exc.message)]
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        return None, [KbError(display, line, _syntax_message(exc))]
    except yaml.YAMLError as exc:  # unmarked: the characters are checked first, so rare
        return None, [KbError(display, 1, f"syntaxe YAML invalide ({exc}) : vérifiez le fichier.")]
    if node is None:
        return None, [KbError(display, 1, "le fichier est vide.")]
    errors: list[KbError] = []
    try:
        value = _Converter(display, errors, first_alias_line).convert(node, 1)
    except _Refused as exc:
        return None, [KbError(display, exc.line, exc.message)]
    unique = list(dict.fromkeys(errors))  # an aliased mistake is reported once
    return value, unique


def _read_text(path: Path) -> str:
    """The file's text, or a refusal that says which encoding to save it in."""
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise _Refused(1, _too_big(size))
        with path.open("rb") as source:
            data = source.read(MAX_FILE_BYTES + 1)
    except IsADirectoryError:
        raise _Refused(1, "c'est un dossier, pas un fichier YAML : renommez-le sans « .yml ».") \
            from None
    except OSError as exc:
        raise _Refused(1, f"fichier illisible ({exc.strerror or exc}) : vérifiez ses droits "
                          "d'accès.") from None
    if len(data) > MAX_FILE_BYTES:  # not a regular file, or it grew while read
        raise _Refused(1, _too_big(len(data)))
    utf16 = _utf16_or_32(data)
    if utf16:
        raise _Refused(1, f"le fichier est en {utf16}, pas en UTF-8 : enregistrez-le en UTF-8 "
                          "(« Enregistrer sous », codage « UTF-8 »).")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = len(_LINE_BREAK.findall(data[: exc.start].decode("latin-1"))) + 1
        raise _Refused(line, _not_utf8(data, exc)) from None
    bad = _FORBIDDEN.search(text)
    if bad:
        raise _Refused(*_forbidden_character(text, bad))
    return text


def _too_big(size: int) -> str:
    return (f"fichier trop gros ({_size(size)} ; {_size(MAX_FILE_BYTES)} au plus) : un fichier "
            "de fiches fait quelques dizaines de Ko. Vérifiez qu'il s'agit du bon fichier, ou "
            "répartissez les fiches entre plusieurs fichiers de thème.")


def _size(size: int) -> str:
    if size >= 1_000_000:
        return f"{size / 1_000_000:.1f}".replace(".0", "").replace(".", ",") + " Mo"
    return f"{max(1, round(size / 1000))} Ko"


def _utf16_or_32(data: bytes) -> str | None:
    """The UTF-16/32 flavour of ``data``, by its byte-order mark or its zero bytes."""
    if data.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")):
        return "UTF-32"
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "UTF-16"
    head = data[:4096]
    half = len(head) // 2
    zeros = sorted((head[0::2].count(0), head[1::2].count(0)))
    if half >= 2 and zeros[1] >= 0.7 * half and zeros[0] <= 0.1 * half:  # one byte in two is 0
        return "UTF-16"
    return None


def _not_utf8(data: bytes, exc: UnicodeDecodeError) -> str:
    bad = data[exc.start : exc.end]
    try:
        seen = bad.decode("cp1252")
    except UnicodeDecodeError:
        seen = ""
    guess = (f", sans doute « {seen} » écrit en Latin-1 ou Windows-1252"
             if seen.isprintable() and seen.strip() else "")
    return (f"le fichier n'est pas en UTF-8 (octet 0x{bad[0]:02X}{guess}) : enregistrez-le en "
            "UTF-8 (« Enregistrer sous », codage « UTF-8 »).")


def _forbidden_character(text: str, found: re.Match) -> tuple[int, str]:
    before = text[: found.start()]
    breaks = list(_LINE_BREAK.finditer(before))
    line = len(breaks) + 1
    column = found.start() - (breaks[-1].end() if breaks else 0) + 1
    char = found.group(0)
    name = _CONTROL_NAMES.get(char, "caractère de contrôle")
    others = len(_FORBIDDEN.findall(text)) - 1
    more = f" (et {others} autre(s) dans le fichier)" if others else ""
    return line, (f"caractère invisible interdit U+{ord(char):04X} ({name}) en colonne {column}"
                  f"{more}, souvent collé depuis un traitement de texte : supprimez-le ou "
                  "remplacez-le par une espace.")


def _compose(text: str) -> tuple[yaml.Node | None, int | None]:
    """The document's node graph, and the line of its first alias (where a bomb is lit)."""
    loader = _LimitedLoader(text)
    try:
        return loader.get_single_node(), loader.first_alias_line
    finally:
        loader.dispose()


class _LimitedLoader(yaml.SafeLoader):
    """PyYAML's safe loader with a depth limit, a size limit and no recursive alias."""

    def __init__(self, text: str):
        super().__init__(text)
        self._depth = 0
        self._nodes = 0
        self._open_anchors: set[str] = set()
        self.first_alias_line: int | None = None

    def compose_node(self, parent: yaml.Node | None, index: object) -> yaml.Node:
        event = self.peek_event()
        line = event.start_mark.line + 1
        if isinstance(event, yaml.AliasEvent):
            if event.anchor in self._open_anchors:
                raise _Refused(line, _recursive_alias(event.anchor))
            if self.first_alias_line is None:
                self.first_alias_line = line
            return super().compose_node(parent, index)
        self._nodes += 1
        if self._nodes > MAX_NODES:
            raise _Refused(line, _too_many_nodes())
        if self._depth >= MAX_DEPTH:
            raise _Refused(line, _too_deep())
        anchor = getattr(event, "anchor", None)
        if anchor is not None:
            self._open_anchors.add(anchor)
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1
            if anchor is not None:
                self._open_anchors.discard(anchor)


def _recursive_alias(anchor: str) -> str:
    return (f"alias récursif « *{anchor} » : il se contient lui-même (à l'intérieur de "
            f"« &{anchor} »). Recopiez le texte au lieu d'utiliser un alias.")


def _too_deep() -> str:
    return (f"imbrication trop profonde (plus de {MAX_DEPTH} niveaux) : une fiche n'en a que "
            "quelques-uns (entries, la fiche, ses questions) ; vérifiez l'indentation et que "
            "chaque [ ou { est refermé.")


def _too_many_nodes() -> str:
    return (f"trop de valeurs (plus de {MAX_NODES}, alias « * » développés) : le fichier ou ses "
            "alias imbriqués sont démesurés ; recopiez le texte au lieu d'utiliser des alias, ou "
            "répartissez les fiches entre plusieurs fichiers.")


def _syntax_message(exc: yaml.MarkedYAMLError) -> str:
    problem = (exc.problem or "").strip()
    hints = {
        "mapping values are not allowed here": "un « : » en trop dans une valeur ; "
        "mettez la phrase entre guillemets si elle contient « : ».",
        "could not find expected ':'": "il manque « : » après un nom de champ, "
        "ou une ligne est mal indentée.",
        "found character '\\t' that cannot start any token": "une tabulation a été utilisée ; "
        "indentez avec des espaces.",
        "expected <block end>, but found '-'": "un élément de liste est mal aligné ; "
        "alignez les tirets avec ceux des lignes voisines.",
        "found unexpected end of stream": "un guillemet ouvert n'est pas refermé.",
    }
    for needle, hint in hints.items():
        if problem.startswith(needle.split(";")[0]):
            return f"syntaxe YAML invalide : {hint}"
    return f"syntaxe YAML invalide ({problem or exc}) : vérifiez l'indentation et les guillemets."


class _Converter:
    """Composed nodes to located values. An alias's node is expanded where it is used, so
    the expansion is counted and its depth bounded (``MAX_NODES``, ``MAX_DEPTH``)."""

    def __init__(self, display: str, errors: list[KbError], first_alias_line: int | None):
        self.display = display
        self.errors = errors
        self.first_alias_line = first_alias_line
        self.nodes = 0
        self.scalars = yaml.SafeLoader("")

    def convert(self, node: yaml.Node, depth: int) -> Any:
        line = node.start_mark.line + 1
        self.nodes += 1
        if self.nodes > MAX_NODES:  # only aliases get here: the composer counted the rest
            raise _Refused(self.first_alias_line or line, _too_many_nodes())
        if depth > MAX_DEPTH:
            raise _Refused(self.first_alias_line or line, _too_deep())
        if isinstance(node, yaml.MappingNode):
            return self.mapping(node, line, depth)
        if isinstance(node, yaml.SequenceNode):
            items = LList(self.convert(child, depth + 1) for child in node.value)
            items.line = line
            return items
        return self.scalar(node, line)

    def mapping(self, node: yaml.MappingNode, line: int, depth: int) -> LDict:
        result = LDict()
        result.line = line
        result.key_lines = {}
        for key_node, value_node in node.value:
            key = self.convert(key_node, depth + 1)
            key_line = key_node.start_mark.line + 1
            if not isinstance(key, str):
                shown = _shorten(str(key))
                self.errors.append(KbError(self.display, key_line,
                                           f"nom de champ invalide « {shown} »."))
                continue
            if key in result:
                self.errors.append(
                    KbError(self.display, key_line,
                            f"le champ « {_shorten(key)} » apparaît deux fois (déjà ligne "
                            f"{result.key_lines[key]}) ; gardez-en un seul.")
                )
                continue
            result[str(key)] = self.convert(value_node, depth + 1)
            result.key_lines[str(key)] = key_line
        return result

    def scalar(self, node: yaml.Node, line: int) -> Any:
        try:
            value = self.scalars.construct_object(node, deep=True)  # ints, dates, booleans
        except Exception:  # PyYAML's constructors raise assorted errors on odd scalars
            self.errors.append(KbError(self.display, line, _bad_scalar(node)))
            return Unreadable(line)
        if isinstance(value, str):
            located = LStr(value)
            located.line = line
            return located
        return value


def _bad_scalar(node: yaml.Node) -> str:
    shown = _shorten(str(node.value))
    if node.tag == "tag:yaml.org,2002:timestamp":
        return (f"date impossible « {shown} » : ce jour n'existe pas ; écrivez une date réelle au "
                "format AAAA-MM-JJ (exemple : 2026-11-23).")
    return (f"valeur illisible « {shown} » (type {node.tag.rsplit(':', 1)[-1]}) : retirez le "
            "« ! » qui la précède ou mettez-la entre guillemets.")


def _shorten(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def line_of(value: Any, default: int = 1) -> int:
    return getattr(value, "line", default)
