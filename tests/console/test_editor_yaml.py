"""The console rewrites the editors' YAML as a careful person would: only what changed moves,
comments and layout stay, and the validator reads the result as the editor meant it."""

from __future__ import annotations

import dataclasses
import difflib
import shutil
from pathlib import Path

import pytest

from bot.kb.check import check_kb
from bot.settings import PROJECT_ROOT
from console.editor.entries import EntryFields, KnowledgeFiles

THEME = """\
# Thème de test : un commentaire d'en-tête qui doit rester.
entries:
  - id: premiere
    motif: mdp_oublie
    questions:
      - j'ai oublié mon mot de passe  # la plus fréquente
      - "mot de passe : perdu"
    answer: >-
      Première phrase.
      Deuxième phrase.
    source: https://www.caf.fr/a
    reviewed: 2026-11-20

  # la fiche suivante
  - id: seconde
    motif: conseiller
    questions:
      - je veux un conseiller
"""


@pytest.fixture
def files(tmp_path: Path) -> KnowledgeFiles:
    (tmp_path / "theme.yml").write_text(THEME, encoding="utf-8")
    return KnowledgeFiles(tmp_path)


def changed_lines(before: str, after: str) -> list[str]:
    return [line for line in difflib.unified_diff(before.splitlines(), after.splitlines(),
                                                  lineterm="", n=0)
            if line[:1] in "+-" and not line.startswith(("+++", "---"))]


def test_the_form_shows_one_sentence_per_line_and_the_spoken_text_joins_them(files):
    entry = files.entry("premiere")
    assert entry.fields.answer == "Première phrase.\nDeuxième phrase."
    assert entry.fields.spoken_answer == "Première phrase. Deuxième phrase."
    assert entry.fields.questions == ("j'ai oublié mon mot de passe", "mot de passe : perdu")


def test_an_unchanged_form_rewrites_nothing(files):
    entry = files.entry("premiere")
    assert files.edited_text("premiere", entry.fields) == ("theme.yml", THEME)


def test_a_new_sentence_and_a_new_question_add_one_line_each(files):
    fields = files.entry("premiere").fields
    edited = dataclasses.replace(fields, answer=fields.answer + "\nTroisième phrase.",
                                 questions=(*fields.questions, "code oublié"))
    _, text = files.edited_text("premiere", edited)
    assert changed_lines(THEME, text) == ["+      - code oublié", "+      Troisième phrase."]


def test_a_field_added_at_the_end_stays_inside_its_entry(files):
    fields = files.entry("seconde").fields
    _, text = files.edited_text("seconde", dataclasses.replace(
        fields, answer="Je vous passe un conseiller."))
    assert text.endswith("      - je veux un conseiller\n"
                         "    answer: Je vous passe un conseiller.\n")
    fields = files.entry("premiere").fields
    _, text = files.edited_text("premiere", dataclasses.replace(fields, reviewed="",
                                                                 source=""))
    assert "    answer: >-\n      Première phrase.\n      Deuxième phrase.\n\n  # la fiche " in text
    _, text = files.edited_text("premiere", dataclasses.replace(fields, answer="", source="",
                                                                 reviewed=""))
    assert "      - \"mot de passe : perdu\"\n\n  # la fiche suivante\n" in text


def test_a_date_typed_otherwise_is_left_for_the_validator(files):
    fields = files.entry("premiere").fields
    _, text = files.edited_text("premiere", dataclasses.replace(fields, reviewed="20/11/2026"))
    assert changed_lines(THEME, text) == ["-    reviewed: 2026-11-20", "+    reviewed: 20/11/2026"]


def test_the_shipped_knowledge_base_reads_back_as_it_was_written(tmp_path: Path):
    """Every entry of knowledge/, rewritten through the form with a new question, still
    checks clean and says the same answers."""
    copy = tmp_path / "knowledge"
    shutil.copytree(PROJECT_ROOT / "knowledge", copy, ignore=shutil.ignore_patterns(".*"))
    files = KnowledgeFiles(copy)
    before = check_kb(copy)
    assert before.ok, before.errors[:3]
    entries = files.entries()
    for entry in entries:
        form = EntryFields.from_form("\n".join(entry.fields.questions), entry.fields.answer,
                                     entry.fields.source, entry.fields.reviewed)
        assert form == entry.fields, entry.id
        file, text = files.edited_text(entry.id, form)
        assert text == (copy / file).read_text(encoding="utf-8"), entry.id
    target = next(e for e in entries if e.fields.answer and len(e.fields.questions) >= 8)
    file, text = files.edited_text(target.id, target.fields.with_question(
        "une formulation toute nouvelle pour cette fiche"))
    files.write(file, text)
    after = check_kb(copy)
    assert after.ok, after.errors[:3]
    assert after.kb.entry(target.id).questions[-1] == \
        "une formulation toute nouvelle pour cette fiche"
    assert {e.id: e.answer for e in after.kb.entries} == \
        {e.id: e.answer for e in before.kb.entries}
