"""YAML that remembers where each value came from, and refuses duplicate keys.

Editors fix what we can point at: every string, list and mapping read here carries the
1-based line it starts on. PyYAML silently keeps the last of two identical keys, which
would hide half an edit; here a duplicate key is an error at its line.
"""

from __future__ import annotations

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


def load_yaml(path: Path, display: str) -> tuple[Any, list[KbError]]:
    """Parse ``path``; return (value with line info, errors). Value is None on syntax error."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        return None, [KbError(display, 1, f"le fichier n'est pas en UTF-8 ({exc.reason}) : "
                                          "enregistrez-le en UTF-8.")]
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        return None, [KbError(display, line, _syntax_message(exc))]
    if node is None:
        return None, [KbError(display, 1, "le fichier est vide.")]
    errors: list[KbError] = []
    value = _convert(node, display, errors, yaml.SafeLoader(""))
    return value, errors


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


def _convert(node: yaml.Node, display: str, errors: list[KbError], scalars: yaml.SafeLoader) -> Any:
    line = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        result = LDict()
        result.line = line
        result.key_lines = {}
        for key_node, value_node in node.value:
            key = _convert(key_node, display, errors, scalars)
            key_line = key_node.start_mark.line + 1
            if not isinstance(key, str):
                errors.append(KbError(display, key_line, f"nom de champ invalide « {key} »."))
                continue
            if key in result:
                errors.append(
                    KbError(display, key_line,
                            f"le champ « {key} » apparaît deux fois (déjà ligne "
                            f"{result.key_lines[key]}) ; gardez-en un seul.")
                )
                continue
            result[str(key)] = _convert(value_node, display, errors, scalars)
            result.key_lines[str(key)] = key_line
        return result
    if isinstance(node, yaml.SequenceNode):
        items = LList(_convert(child, display, errors, scalars) for child in node.value)
        items.line = line
        return items
    value = scalars.construct_object(node, deep=True)  # ints, dates, booleans, strings
    if isinstance(value, str):
        located = LStr(value)
        located.line = line
        return located
    return value


def line_of(value: Any, default: int = 1) -> int:
    return getattr(value, "line", default)
