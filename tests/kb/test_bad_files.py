"""Files no editor meant to write: each gets one French line with its file and line, the CLI
exits 2 (1 with ``--json``), never a traceback, and ``kb publish`` publishes nothing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bot.kb.check import check_kb
from bot.kb.yaml_lines import MAX_FILE_BYTES

MINIMAL = Path(__file__).parents[1] / "data" / "kb" / "minimal"
PROJECT = Path(__file__).parents[2]
ANSWER = "    answer: Allez sur caf point fr et cliquez sur mot de passe oublié."
ANSWER_LINE = 5  # in tests/data/kb/minimal/themes.yml


@pytest.fixture
def kb(tmp_path: Path) -> Path:
    target = tmp_path / "knowledge"
    shutil.copytree(MINIMAL, target)
    return target


def themes_with(kb: Path, old: str, new: str) -> Path:
    themes = kb / "themes.yml"
    text = themes.read_text(encoding="utf-8")
    assert old in text
    themes.write_text(text.replace(old, new, 1), encoding="utf-8")
    return themes


def only_error(kb: Path) -> str:
    result = check_kb(kb)
    assert result.kb is None
    assert len(result.errors) == 1, [str(e) for e in result.errors]
    return str(result.errors[0])


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bot.cli.main", *args], capture_output=True,
                          text=True, cwd=PROJECT, timeout=120, env=env)


def test_vertical_tab_pasted_from_a_word_processor(kb: Path):
    themes_with(kb, "Allez sur caf", "Allez\x0bsur caf")
    assert only_error(kb) == (
        f"knowledge/themes.yml:{ANSWER_LINE}: caractère invisible interdit U+000B (tabulation "
        "verticale) en colonne 18, souvent collé depuis un traitement de texte : supprimez-le "
        "ou remplacez-le par une espace.")


@pytest.mark.parametrize(("char", "name"), [
    ("\x00", "caractère nul"), ("\x0c", "saut de page"), ("\x1b", "caractère d'échappement"),
    ("\x07", "caractère de contrôle"), ("\x85", "passage à la ligne (NEL)"),
    ("\u2028", "séparateur de ligne"),
])
def test_other_control_characters_are_named_at_their_line(kb: Path, char: str, name: str):
    themes_with(kb, "cliquez sur mot", f"cliquez sur{char} mot")
    assert only_error(kb).startswith(
        f"knowledge/themes.yml:{ANSWER_LINE}: caractère invisible interdit "
        f"U+{ord(char):04X} ({name}) en colonne 50,")


def test_several_control_characters_are_counted(kb: Path):
    themes = themes_with(kb, "Allez sur caf", "Allez\x0bsur\x0bcaf")
    text = themes.read_text(encoding="utf-8").replace("Faites une", "Faites\x0bune")
    themes.write_text(text, encoding="utf-8")
    assert "colonne 18 (et 2 autre(s) dans le fichier)," in only_error(kb)


def test_impossible_date_names_the_date_and_is_reported_once(kb: Path):
    themes = themes_with(kb, "    reviewed: 2026-11-20", "    reviewed: 2026-02-30")
    assert only_error(kb) == (
        "knowledge/themes.yml:7: date impossible « 2026-02-30 » : ce jour n'existe pas ; "
        "écrivez une date réelle au format AAAA-MM-JJ (exemple : 2026-11-23).")
    assert themes.read_text(encoding="utf-8").splitlines()[6] == "    reviewed: 2026-02-30"


def test_recursive_alias(kb: Path):
    themes_with(kb, ANSWER, "    sms: &boucle [un, *boucle]\n" + ANSWER)
    assert only_error(kb) == (
        f"knowledge/themes.yml:{ANSWER_LINE}: alias récursif « *boucle » : il se contient "
        "lui-même (à l'intérieur de « &boucle »). Recopiez le texte au lieu d'utiliser un alias.")


def test_alias_bomb_is_refused_quickly(kb: Path):
    """"Billion laughs": nine levels of nine aliases would expand to 387 million strings."""
    lines = ["a0: &a0 [rire, rire, rire, rire, rire, rire, rire, rire, rire]"]
    for level in range(1, 10):
        lines.append(f"a{level}: &a{level} [" + ", ".join([f"*a{level - 1}"] * 9) + "]")
    (kb / "themes.yml").write_text("\n".join(lines) + "\nentries: *a9\n", encoding="utf-8")
    started = time.monotonic()
    message = only_error(kb)
    assert time.monotonic() - started < 10
    assert message == (
        "knowledge/themes.yml:2: trop de valeurs (plus de 100000, alias « * » développés) : le "
        "fichier ou ses alias imbriqués sont démesurés ; recopiez le texte au lieu d'utiliser des "
        "alias, ou répartissez les fiches entre plusieurs fichiers.")


@pytest.mark.parametrize("shape", ["flow", "block"])
def test_deep_nesting(kb: Path, shape: str):
    if shape == "flow":
        text = "entries: " + "[" * 5000 + "]" * 5000 + "\n"
    else:
        text = "entries:\n" + "".join(" " * (2 * i) + "- \n" for i in range(100))
    (kb / "themes.yml").write_text(text, encoding="utf-8")
    line = 1 if shape == "flow" else 21
    assert only_error(kb) == (
        f"knowledge/themes.yml:{line}: imbrication trop profonde (plus de 20 niveaux) : une "
        "fiche n'en a que quelques-uns (entries, la fiche, ses questions) ; vérifiez "
        "l'indentation et que chaque [ ou { est refermé.")


def test_tab_used_for_indentation_keeps_its_message(kb: Path):
    themes_with(kb, ANSWER, "\t" + ANSWER.lstrip())
    assert only_error(kb) == (
        f"knowledge/themes.yml:{ANSWER_LINE}: syntaxe YAML invalide : une tabulation a été "
        "utilisée ; indentez avec des espaces.")


def test_latin1_file_names_the_line_and_the_encoding(kb: Path):
    themes = kb / "themes.yml"
    themes.write_bytes(themes.read_text(encoding="utf-8").encode("latin-1"))
    assert only_error(kb) == (
        "knowledge/themes.yml:4: le fichier n'est pas en UTF-8 (octet 0xE9, sans doute « é » "
        "écrit en Latin-1 ou Windows-1252) : enregistrez-le en UTF-8 (« Enregistrer sous », "
        "codage « UTF-8 »).")


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be"])
def test_utf16_file_with_or_without_byte_order_mark(kb: Path, encoding: str):
    themes = kb / "themes.yml"
    themes.write_bytes(themes.read_text(encoding="utf-8").encode(encoding))
    assert only_error(kb) == (
        "knowledge/themes.yml:1: le fichier est en UTF-16, pas en UTF-8 : enregistrez-le en "
        "UTF-8 (« Enregistrer sous », codage « UTF-8 »).")


def test_utf8_with_byte_order_mark_is_read(kb: Path):
    themes = kb / "themes.yml"
    themes.write_bytes(themes.read_text(encoding="utf-8").encode("utf-8-sig"))
    assert check_kb(kb).ok


def test_fifty_megabyte_file_is_refused_unread(kb: Path):
    themes = kb / "themes.yml"
    with themes.open("a", encoding="utf-8") as out:
        out.write("# " + "x" * 50_000_000 + "\n")
    started = time.monotonic()
    assert only_error(kb) == (
        "knowledge/themes.yml:1: fichier trop gros (50 Mo ; 1 Mo au plus) : un fichier de fiches "
        "fait quelques dizaines de Ko. Vérifiez qu'il s'agit du bon fichier, ou répartissez les "
        "fiches entre plusieurs fichiers de thème.")
    assert time.monotonic() - started < 1


def test_a_file_just_under_the_size_limit_is_read(kb: Path):
    themes = kb / "themes.yml"
    size = themes.stat().st_size
    with themes.open("a", encoding="utf-8") as out:
        out.write("#" * (MAX_FILE_BYTES - size - 1) + "\n")
    assert themes.stat().st_size == MAX_FILE_BYTES
    assert check_kb(kb).ok


def test_errors_in_a_bad_file_and_the_rest_of_the_base_are_all_reported(kb: Path):
    (kb / "extra.yml").write_bytes("entries:\n  - id: caf\u00e9\n".encode("latin-1"))
    themes_with(kb, "motif: mdp_oublie", "motif: mdp_oubli")
    lines = [str(e) for e in check_kb(kb).errors]
    assert lines[0].startswith("knowledge/extra.yml:2: le fichier n'est pas en UTF-8")
    assert lines[1].startswith("knowledge/themes.yml:3: motif inconnu « mdp_oubli »")


BAD_FILES = {
    "tabulation verticale": lambda kb: themes_with(kb, "Allez sur", "Allez\x0bsur"),
    "date": lambda kb: themes_with(kb, "reviewed: 2026-11-20", "reviewed: 2026-02-30"),
    "alias": lambda kb: themes_with(kb, ANSWER, "    sms: &a [*a]\n" + ANSWER),
    "utf-16": lambda kb: (kb / "motifs.yml").write_bytes(
        (kb / "motifs.yml").read_text(encoding="utf-8").encode("utf-16")),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_cli_exits_2_in_french_and_1_with_json(kb: Path, case: str):
    BAD_FILES[case](kb)
    done = run_cli("kb", "check", str(kb))
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    first, last = done.stderr.splitlines()[0], done.stderr.splitlines()[-1]
    assert first.startswith("knowledge/")
    assert last == "1 erreur(s) : rien ne sera publié tant qu'elles ne sont pas corrigées."
    done = run_cli("kb", "check", str(kb), "--json")
    assert done.returncode == 1
    report = json.loads(done.stdout)
    assert list(report) == ["ok", "entries", "motifs", "errors"]
    assert report["ok"] is False
    assert f"{report['errors'][0]['file']}:{report['errors'][0]['line']}: " \
           f"{report['errors'][0]['message']}" == first


def test_publish_of_a_bad_base_keeps_the_live_one(kb: Path, tmp_path: Path):
    """The check refuses before any training: the published snapshot is not touched."""
    state = tmp_path / "state"
    live = state / "published" / "current.json"
    live.parent.mkdir(parents=True)
    live.write_text('{"la base": "en service"}', encoding="utf-8")
    before = live.stat().st_mtime_ns
    BAD_FILES["date"](kb)
    env = {**os.environ, "VOICEBOT_PATHS_KNOWLEDGE_DIR": str(kb),
           "VOICEBOT_PATHS_STATE_DIR": str(state)}
    done = run_cli("kb", "publish", env=env)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.splitlines() == [
        "Erreur : La base de connaissances contient 1 erreur(s) ; rien n'a été publié, le bot "
        "garde la dernière version valide.",
        "  knowledge/themes.yml:7: date impossible « 2026-02-30 » : ce jour n'existe pas ; "
        "écrivez une date réelle au format AAAA-MM-JJ (exemple : 2026-11-23)."]
    assert live.read_text(encoding="utf-8") == '{"la base": "en service"}'
    assert live.stat().st_mtime_ns == before
    assert sorted(p.name for p in live.parent.iterdir()) == ["current.json"]
