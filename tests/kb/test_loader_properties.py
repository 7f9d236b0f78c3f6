"""Property-based tests of the knowledge-base loader: whatever an editor's file holds, the
answer is a list of French errors at a file and line, never an exception.

Hypothesis writes random bytes, random text and mangled YAML into one file of a valid base
(tests/data/kb/minimal) and runs the whole check on it.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.errors import KbError
from bot.kb.check import check_kb
from bot.kb.yaml_lines import load_yaml

MINIMAL = Path(__file__).parents[1] / "data" / "kb" / "minimal"
FILES = ("themes.yml", "motifs.yml", "messages.yml")
RUNS = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])

YAML_ALPHABET = st.sampled_from(list(
    "ab é:-?[]{},&*!|>'\"#%@`~\t\n\r \x00\x0b\x85\u2028\ufeff0123456789.")
    + ["- ", ": ", "\n  ", "\n- ", "&a ", "*a", "!!int ", "!!timestamp ", "2026-02-30",
       "---\n", "? ", "<<: ", "!!python/object:os.system "])


@contextmanager
def base_with(name: str, content: bytes) -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as tmp:
        kb = Path(tmp) / "knowledge"
        shutil.copytree(MINIMAL, kb)
        (kb / name).write_bytes(content)
        yield kb


def assert_only_french_errors(kb: Path, name: str, content: bytes) -> None:
    result = check_kb(kb)  # must not raise
    lines = max(1, content.count(b"\n") + content.count(b"\r") + 1)
    for error in result.errors:
        assert isinstance(error, KbError)
        assert error.file.startswith("knowledge/")
        assert error.line >= 1
        if error.file == f"knowledge/{name}":
            assert error.line <= lines, (error, lines)
        assert error.message and "Traceback" not in error.message
    if (kb / name).read_bytes() != (MINIMAL / name).read_bytes():
        # a changed file may still be valid, never half-read: valid means a whole base
        assert result.ok == (result.kb is not None)


@RUNS
@given(name=st.sampled_from(FILES), content=st.binary(max_size=2000))
def test_random_bytes_give_french_errors_only(name: str, content: bytes):
    with base_with(name, content) as kb:
        assert_only_french_errors(kb, name, content)


@RUNS
@given(name=st.sampled_from(FILES), content=st.lists(YAML_ALPHABET, max_size=300).map("".join),
       encoding=st.sampled_from(["utf-8", "utf-16", "latin-1", "utf-8-sig"]))
def test_yaml_like_text_gives_french_errors_only(name: str, content: str, encoding: str):
    data = content.encode(encoding, errors="replace")
    with base_with(name, data) as kb:
        assert_only_french_errors(kb, name, data)


@st.composite
def mangled_base_file(draw) -> tuple[str, bytes]:
    """A real file of the minimal base with a few characters inserted, deleted or replaced."""
    name = draw(st.sampled_from(FILES))
    text = (MINIMAL / name).read_text(encoding="utf-8")
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, len(text)))
        cut = draw(st.integers(0, 3))
        text = text[:at] + draw(YAML_ALPHABET) + text[at + cut:]
    return name, text.encode("utf-8", errors="surrogatepass")


@RUNS
@given(case=mangled_base_file())
def test_mangled_real_files_give_french_errors_only(case: tuple[str, bytes]):
    name, data = case
    with base_with(name, data) as kb:
        assert_only_french_errors(kb, name, data)


# Words the checker looks for, so that random documents get past its first checks.
KNOWN_WORDS = st.sampled_from([
    "mdp_oublie", "aide_logement", "conseiller", "abc", "faq", "handoff", "dialogue",
    "reorient", "accueil", "2026-11-20", "https://www.caf.fr", "parler à un humain",
    "j'ai oublié mon mot de passe"])
json_like = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
    | st.dates() | KNOWN_WORDS | KNOWN_WORDS,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8) | st.integers(), children, max_size=4),
    max_leaves=30)


@RUNS
@given(name=st.sampled_from(FILES), top=st.sampled_from(["entries", "motifs", "messages", None]),
       value=json_like)
def test_well_formed_yaml_of_any_shape_gives_french_errors_only(name: str, top: str | None,
                                                                value: object):
    document = {top: value} if top else value
    data = yaml.safe_dump(document, allow_unicode=True).encode("utf-8")
    with base_with(name, data) as kb:
        assert_only_french_errors(kb, name, data)


@RUNS
@given(content=st.binary(max_size=3000))
def test_the_loader_alone_returns_a_value_or_errors(content: bytes):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x.yml"
        path.write_bytes(content)
        value, errors = load_yaml(path, "knowledge/x.yml")
        assert all(isinstance(e, KbError) and e.file == "knowledge/x.yml" for e in errors)
        if value is None:
            assert errors


def fields(names: tuple[str, ...]):
    """Mappings with the base's own field names and values of any type."""
    return st.dictionaries(st.sampled_from(names), json_like, max_size=len(names))


base_shaped = st.one_of(
    st.builds(lambda items: ("motifs.yml", {"motifs": items}),
              st.lists(fields(("id", "kind", "label", "choix")), max_size=4)),
    st.builds(lambda items: ("messages.yml", {"messages": items}),
              st.dictionaries(st.sampled_from(["accueil", "au_revoir", "inconnu"]), json_like)),
    st.builds(lambda items: ("themes.yml", {"entries": items}),
              st.lists(fields(("id", "motif", "questions", "answer", "source", "reviewed",
                               "sms", "declencheurs")), max_size=4)),
)


@RUNS
@given(case=base_shaped)
def test_base_shaped_files_with_values_of_any_type_give_french_errors_only(case):
    name, document = case
    data = yaml.safe_dump(document, allow_unicode=True).encode("utf-8")
    with base_with(name, data) as kb:
        assert_only_french_errors(kb, name, data)
