"""Routing a caller: the entry that answers within a motif, and who is transferred at once.

``hors_sujet`` is where the entry matters most: each of its entries sends the caller to a
different body, and the wrong one sends them to the wrong office. The safety net's
trigger phrases transfer a caller before any classifier; ordinary questions that merely
contain an urgency's words must not be transferred, real urgencies always are.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bot.kb.check import check_kb
from bot.kb.model import KnowledgeBase
from bot.kb.routing import EntryRouter
from bot.kb.triggers import TriggerIndex
from bot.settings import PROJECT_ROOT


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return check_kb(PROJECT_ROOT / "knowledge").kb


@pytest.fixture(scope="module")
def router(kb: KnowledgeBase) -> EntryRouter:
    return EntryRouter.of(kb)


@pytest.mark.parametrize("motif, said, entry", [
    ("hors_sujet", "mon avis de taxe foncière est faux", "hors_sujet_impots"),
    ("hors_sujet", "ma carte vitale ne marche plus", "hors_sujet_assurance_maladie"),
    ("hors_sujet", "mes allocations chômage de ce mois", "hors_sujet_france_travail"),
    ("hors_sujet", "ma pension de retraite est en retard", "hors_sujet_retraite"),
    ("hors_sujet", "renouveler mon permis", "hors_sujet_titres"),
    ("changement_situation", "j'ai une nouvelle banque il faut donner mon nouveau rib",
     "changement_coordonnees_bancaires"),
    ("changement_situation", "on déménage le mois prochain", "changement_situation_demenagement"),
    ("rendez_vous", "je souhaite un rendez vous avec la caf", "rendez_vous_prendre"),
    ("rendez_vous", "je peux pas venir à mon rendez-vous je fais comment", "rendez_vous_annuler"),
])
def test_the_entry_that_answers_the_question_is_chosen(router, motif, said, entry):
    assert router.entry(motif, said).id == entry


def test_a_motif_of_one_entry_or_nothing_in_common_falls_back_to_its_first_entry(kb, router):
    single = next(m for m in kb.motifs if len(kb.entries_of(m)) == 1)
    assert router.entry(single, "n'importe quoi").id == kb.entries_of(single)[0].id
    assert router.entry("hors_sujet", "").id == kb.entries_of("hors_sujet")[0].id
    assert router.entry("motif_inconnu", "bonjour") is None


def test_the_router_is_built_once_per_published_base(kb):
    assert EntryRouter.of(kb) is EntryRouter.of(kb)
    assert EntryRouter.of(check_kb(PROJECT_ROOT / "knowledge").kb) is not EntryRouter.of(kb)


# --- which callers the safety net transfers at once (bot/kb/triggers.py) ---------------------

@pytest.fixture(scope="module")
def triggers(kb: KnowledgeBase) -> TriggerIndex:
    return TriggerIndex(kb)


@pytest.mark.parametrize("said", [
    # the cases
    "à quelle date il faut que je rende ma déclaration trimestrielle",
    "attestation de non dette",
    "mon rsa est suspendu pendant les vacances ou pas",
    # general questions that carry an urgency's words
    "c'est quoi un trop perçu exactement",
    "qu'est-ce qu'un indu de la caf",
    "est-ce que l'apl est suspendue si je pars six mois",
    "les allocations sont arrêtées à quel âge pour les enfants",
    "comment éviter une dette quand on reprend un travail",
    "mon locataire a des dettes envers moi",
    "il faut que je rende mon dossier de demande d'apl avant quand",
    "mon compte caf est suspendu",
])
def test_an_ordinary_question_with_urgency_words_is_not_transferred_at_once(triggers, said):
    match = triggers.match(said)
    assert match is None, f"{said!r} transferred by {match and match.trigger!r}"


@pytest.mark.parametrize(("said", "entry"), [
    ("j'ai une dette à la caf", "urgence_indu_dette"),
    ("on me réclame un trop perçu de deux mille euros", "urgence_indu_dette"),
    ("la caf veut que je rembourse tout", "urgence_indu_dette"),
    ("mon rsa est suspendu depuis le mois dernier", "urgence_rupture_droits"),
    ("mes allocations ont été suspendues", "urgence_rupture_droits"),
    ("mes paiements sont arrêtés", "urgence_rupture_droits"),
    ("on va m'expulser", "urgence_sociale"),
    ("je suis à la rue c'est quoi les aides", "urgence_sociale"),  # no exception for danger
    ("c'est quoi ce service je veux parler à un conseiller", "conseiller_demande"),
])
def test_a_real_urgency_or_a_request_for_a_person_is_still_transferred(triggers, said, entry):
    match = triggers.match(said)
    assert match is not None and match.entry.id == entry, match


def test_an_exception_silences_only_its_own_entry(kb: KnowledgeBase, triggers):
    debt = kb.entry("urgence_indu_dette")
    assert "c'est quoi" in debt.trigger_exceptions
    assert triggers.match("j'ai une dette").entry.id == debt.id
    assert triggers.match("c'est quoi une dette") is None
    # the social emergency has no exception: danger is transferred however it is asked
    assert triggers.match("c'est quoi une dette on va m'expulser").entry.id == "urgence_sociale"


MINIMAL = PROJECT_ROOT / "tests" / "data" / "kb" / "minimal"
HANDOFF_QUESTIONS = "    questions: [je veux un conseiller,"


@pytest.fixture
def small_kb(tmp_path: Path) -> Path:
    shutil.copytree(MINIMAL, tmp_path / "knowledge")
    return tmp_path / "knowledge"


def insert_before(path: Path, anchor: str, block: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.count(anchor) == 1
    path.write_text(text.replace(anchor, block + anchor), encoding="utf-8")


def test_kb_check_accepts_a_question_whose_trigger_word_comes_with_an_exception(small_kb):
    themes = small_kb / "themes.yml"
    insert_before(themes, HANDOFF_QUESTIONS, "    declencheurs: [code secret]\n")
    refused = check_kb(small_kb).errors  # "code secret oublié" is a question of mdp_oublie
    assert len(refused) == 1 and "« code secret »" in refused[0].message
    insert_before(themes, HANDOFF_QUESTIONS, "    sauf: [oublié]\n")
    result = check_kb(small_kb)
    assert result.ok, [str(e) for e in result.errors]
    assert result.kb.entry("cons").trigger_exceptions == ("oublié",)
    index = TriggerIndex(result.kb)
    assert index.match("code secret oublié") is None
    assert index.match("mon code secret ne marche plus").entry.id == "cons"


def test_kb_check_refuses_exceptions_on_a_faq_entry_or_too_short(small_kb):
    themes = small_kb / "themes.yml"
    faq_questions = "    questions: [j'ai oublié mon mot de passe,"
    insert_before(themes, faq_questions, "    sauf: [c'est quoi]\n")
    insert_before(themes, HANDOFF_QUESTIONS, "    declencheurs: [un humain]\n    sauf: [si]\n")
    messages = sorted(e.message for e in check_kb(small_kb).errors)
    assert messages == [
        "exception « si » trop courte : au moins 4 lettres, sinon de vraies urgences ne seraient "
        "plus transférées tout de suite.",
        "fiche « mdp » : « sauf » n'est possible qu'avec des « declencheurs », pour un motif de "
        "transfert ; retirez ce champ.",
    ]
