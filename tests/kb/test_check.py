"""`voicebot kb check`: every mistake an editor can make is reported in French, at its line."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bot.kb.check import check_kb

MINIMAL = Path(__file__).parents[1] / "data" / "kb" / "minimal"
PROJECT = Path(__file__).parents[2]


@pytest.fixture
def kb(tmp_path: Path) -> Path:
    target = tmp_path / "knowledge"
    shutil.copytree(MINIMAL, target)
    return target


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def line_of(path: Path, needle: str) -> int:
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if needle in line:
            return number
    raise AssertionError(f"{needle!r} not in {path}")


def only_error(kb: Path):
    result = check_kb(kb)
    assert not result.ok
    assert len(result.errors) == 1, [str(e) for e in result.errors]
    return result.errors[0]


def test_the_shipped_knowledge_base_is_valid():
    result = check_kb(PROJECT / "knowledge")
    assert result.errors == []
    assert result.entries >= 40


def test_minimal_base_is_valid(kb: Path):
    result = check_kb(kb)
    assert result.ok
    assert result.entries == 9
    assert result.motifs["aide_logement"] == 2


def test_yaml_syntax_error_names_file_and_line(kb: Path):
    themes = kb / "themes.yml"
    edit(themes, "    answer: Faites une simulation sur caf point fr.",
         "    answer: Faites une simulation : sur caf point fr: maintenant.")
    error = only_error(kb)
    assert error.file == "knowledge/themes.yml"
    assert error.line == line_of(themes, "Faites une simulation")
    assert error.message.startswith("syntaxe YAML invalide : un « : » en trop")


def test_unknown_motif_suggests_the_closest(kb: Path):
    themes = kb / "themes.yml"
    edit(themes, "motif: mdp_oublie", "motif: mdp_oubli")
    error = only_error(kb)
    assert (error.file, error.line) == ("knowledge/themes.yml", line_of(themes, "mdp_oubli"))
    assert error.message == ("motif inconnu « mdp_oubli » (vouliez-vous dire « mdp_oublie » ?) : "
                             "utilisez un identifiant de motifs.yml.")


def test_duplicate_id_across_files_points_to_the_first(kb: Path):
    extra = kb / "extra.yml"
    extra.write_text((kb / "themes.yml").read_text(encoding="utf-8").split("  - id: apl_droit")[0]
                     .replace("j'ai oublié", "zut j'ai perdu").replace("mot de passe", "mdp"),
                     encoding="utf-8")
    errors = check_kb(kb).errors
    duplicate = [e for e in errors if "déjà utilisé" in e.message]
    assert len(duplicate) == 1
    assert duplicate[0].file == "knowledge/themes.yml"  # sorted by file: extra.yml holds the first
    assert "l'identifiant « mdp » est déjà utilisé (knowledge/extra.yml:2)" in duplicate[0].message


def test_missing_answer_for_a_faq_entry(kb: Path):
    themes = kb / "themes.yml"
    edit(themes, "    answer: Allez sur caf point fr et cliquez sur mot de passe oublié.\n", "")
    error = only_error(kb)
    assert error.line == line_of(themes, "- id: mdp")
    assert error.message == ("fiche « mdp » : champ « answer » manquant "
                             "(la réponse que le bot dira).")


def test_answer_longer_than_45_seconds(kb: Path):
    themes = kb / "themes.yml"
    long_answer = " ".join(["Allez sur caf point fr maintenant."] * 20)  # 120 words
    edit(themes, "answer: Allez sur caf point fr et cliquez sur mot de passe oublié.",
         f"answer: {long_answer}")
    error = only_error(kb)
    assert error.line == line_of(themes, long_answer[:30])
    assert error.message == ("la réponse dure environ 48 secondes à l'oral (120 mots) ; "
                             "45 secondes au plus (112 mots). "
                             "Raccourcissez le texte ou découpez-le en deux fiches.")


def test_too_few_questions(kb: Path):
    themes = kb / "themes.yml"
    edit(themes, "questions: [j'ai oublié mon mot de passe, mot de passe perdu, "
                 "je sais plus mon code, ",
         "questions: [j'ai oublié mon mot de passe, ")
    error = only_error(kb)
    assert error.line == line_of(themes, "j'ai oublié mon mot de passe")
    assert error.message == ("fiche « mdp » : 6 question(s) différente(s), il en faut au moins 8, "
                             "formulées comme les appelants les disent.")


def test_same_question_under_two_motifs(kb: Path):
    themes = kb / "themes.yml"
    edit(themes, "[je veux un conseiller,", "[Mot de passe perdu !,")
    errors = check_kb(kb).errors
    assert any(
        e.message == "la question « Mot de passe perdu ! » est aussi sous le motif « mdp_oublie » "
                     f"(knowledge/themes.yml:{line_of(themes, 'id: mdp') + 2}) : "
                     "une question ne peut appartenir qu'à un seul motif."
        for e in errors
    ), [str(e) for e in errors]


def test_duplicate_yaml_key_is_an_error_not_a_silent_overwrite(kb: Path):
    themes = kb / "themes.yml"
    edit(themes, "    source: https://www.caf.fr\n",
         "    source: https://www.caf.fr\n    motif: rsa\n")
    error = only_error(kb)
    assert error.line == line_of(themes, "motif: rsa")
    assert error.message.startswith("le champ « motif » apparaît deux fois (déjà ligne ")


def test_written_url_in_an_answer(kb: Path):
    edit(kb / "themes.yml", "Faites une simulation sur caf point fr.", "Simulez sur www.caf.fr.")
    error = only_error(kb)
    assert "contient une adresse écrite « www. »" in error.message


def test_motif_without_any_entry(kb: Path):
    motifs = kb / "motifs.yml"
    edit(motifs, '  - {id: repeter, kind: dialogue, label: "Répéter"}\n',
         '  - {id: repeter, kind: dialogue, label: "Répéter"}\n'
         '  - {id: rsa, kind: faq, label: "RSA"}\n')
    error = only_error(kb)
    assert (error.file, error.line) == ("knowledge/motifs.yml", line_of(motifs, "id: rsa"))
    assert error.message.startswith("aucune fiche pour le motif « rsa »")


def test_unknown_field_suggests_the_right_name(kb: Path):
    themes = kb / "themes.yml"
    edit(themes, "    answer: Faites une simulation", "    anwser: Faites une simulation")
    errors = check_kb(kb).errors
    assert any(e.line == line_of(themes, "anwser") and e.message.startswith(
        "champ inconnu « anwser » (vouliez-vous dire « answer » ?) ; champs possibles : id, motif,")
        for e in errors), [str(e) for e in errors]


def test_missing_system_message(kb: Path):
    edit(kb / "messages.yml", "  goodbye: Merci de votre appel, et bonne journée.\n", "")
    error = only_error(kb)
    assert error.file == "knowledge/messages.yml"
    assert error.message == "il manque le message « goodbye » (fin de l'appel)."


def test_all_errors_are_reported_at_once(kb: Path):
    edit(kb / "themes.yml", "motif: mdp_oublie", "motif: inconnu")
    edit(kb / "themes.yml",
         "    source: https://www.caf.fr\n    reviewed: 2026-11-20\n  - id: apl_demande",
         "    reviewed: 2026-11-20\n  - id: apl_demande")
    edit(kb / "messages.yml", "  goodbye: Merci de votre appel, et bonne journée.\n", "")
    assert len(check_kb(kb).errors) == 3


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bot.cli.main", *args],
                          capture_output=True, text=True, cwd=PROJECT, timeout=60)


def test_cli_json_contract_on_a_broken_base(kb: Path):
    edit(kb / "themes.yml", "motif: mdp_oublie", "motif: mdp_oubli")
    done = run_cli("kb", "check", str(kb), "--json")
    assert done.returncode == 1
    report = json.loads(done.stdout)
    assert list(report) == ["ok", "entries", "motifs", "errors"]
    assert report["ok"] is False
    assert report["entries"] == 8  # the broken entry is not counted
    assert report["motifs"]["mdp_oublie"] == 0
    assert report["errors"] == [{"file": "knowledge/themes.yml", "line": 3, "message": (
        "motif inconnu « mdp_oubli » (vouliez-vous dire « mdp_oublie » ?) : "
        "utilisez un identifiant de motifs.yml.")}]


def test_cli_human_output_on_a_valid_base(kb: Path):
    done = run_cli("kb", "check", str(kb))
    assert done.returncode == 0
    assert done.stdout.strip() == "Base valide : 9 fiches, 8 motifs."


# --- declencheurs: the hand-off safety net's trigger phrases ---------------------------------

CONSEILLER_QUESTIONS = "    questions: [je veux un conseiller,"


def add_triggers(themes: Path, before: str, *triggers: str) -> None:
    block = "    declencheurs:\n" + "".join(f"      - {t}\n" for t in triggers)
    edit(themes, before, block + before)


def test_triggers_on_a_handoff_entry_are_kept(kb: Path):
    add_triggers(kb / "themes.yml", CONSEILLER_QUESTIONS, "parler à un humain",
                 "Une VRAIE personne")
    result = check_kb(kb)
    assert result.ok, [str(e) for e in result.errors]
    assert result.kb.entry("cons").triggers == ("parler à un humain", "Une VRAIE personne")
    assert result.kb.entry("mdp").triggers == ()


def test_triggers_only_for_handoff_motifs(kb: Path):
    themes = kb / "themes.yml"
    add_triggers(themes, "    questions: [j'ai oublié mon mot de passe,", "mot de passe bloqué")
    error = only_error(kb)
    assert (error.file, error.line) == ("knowledge/themes.yml", line_of(themes, "declencheurs:"))
    assert error.message == ("fiche « mdp » : « declencheurs » n'est possible que pour un motif de "
                             "transfert (kind: handoff, comme conseiller ou urgence) ; "
                             "retirez ce champ ou changez de motif.")


def test_trigger_found_in_another_motifs_question(kb: Path):
    themes = kb / "themes.yml"
    add_triggers(themes, CONSEILLER_QUESTIONS, "mot de passe")
    error = only_error(kb)
    assert (error.file, error.line) == ("knowledge/themes.yml", line_of(themes, "- mot de passe"))
    assert error.message == (
        "le déclencheur « mot de passe » se trouve dans une question du motif « mdp_oublie » "
        f"(knowledge/themes.yml:{line_of(themes, 'id: mdp') + 2}) : "
        "cette question serait transférée à un conseiller. "
        "Précisez le déclencheur (plus de mots) ou reformulez la question.")


def test_trigger_matches_whole_words_only(kb: Path):
    # "passe" is a word of "mot de passe perdu": refused; "pass" is only part of one: accepted.
    add_triggers(kb / "themes.yml", CONSEILLER_QUESTIONS, "pass navigo")
    assert check_kb(kb).ok


def test_trigger_too_short_and_duplicate(kb: Path):
    themes = kb / "themes.yml"
    add_triggers(themes, CONSEILLER_QUESTIONS, "agent humain", "apl", "Agent, humain !")
    errors = check_kb(kb).errors
    assert [(e.line, e.message) for e in errors] == [
        (line_of(themes, "- apl"), "déclencheur « apl » trop court : au moins 4 lettres, sinon des "
                                   "questions ordinaires seraient transférées à un conseiller."),
        (line_of(themes, "- Agent, humain !"),
         "le déclencheur « Agent, humain ! » est déjà dans la "
         "fiche « cons » (knowledge/themes.yml:"
         f"{line_of(themes, '- agent humain')}) : gardez-le une "
         "seule fois."),
    ]


def test_the_shipped_base_hands_off_urgencies_by_trigger():
    from bot.kb.triggers import TriggerIndex

    index = TriggerIndex(check_kb(PROJECT / "knowledge").kb)
    expected = {
        "mes allocations sont suspendues depuis mars": "urgence",
        "on m'a coupé le RSA": "urgence",
        "j'ai plus rien reçu": "urgence",
        "j'ai un TROP-PERÇU à rembourser": "urgence",
        "un indu de prime d'activité": "urgence",
        "on me réclame de l'argent": "urgence",
        "je vais être expulsée": "urgence",
        "je suis à la rue": "urgence",
        "je n'ai plus rien pour manger": "urgence",
        "je veux parler à un conseiller": "conseiller",
        "une vraie personne svp": "conseiller",
        "je veux un conseiller j'ai une dette": "urgence",  # the urgency qualifies the call
        # Whisper over G.711 for « En attente pour parler à un préposé »: the « à » is lost
        "J'attente pour parler un préposé.": "conseiller",
        "je veux parler au conseiller": "conseiller",
    }
    found = {text: match.entry.motif if (match := index.match(text)) else None for text in expected}
    assert found == expected
    for innocent in ("comment créer mon compte", "une dettelette", "l'individu",
                     "mon compte est suspendu", "prendre rendez-vous avec un conseiller"):
        assert index.match(innocent) is None, innocent
