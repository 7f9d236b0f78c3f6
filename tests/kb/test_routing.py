"""Within a motif of several entries, the caller gets the entry that answers their question.

``hors_sujet`` is where it matters most: each of its entries sends the caller to a
different body, and the wrong one sends them to the wrong office.
"""

from __future__ import annotations

import pytest

from bot.kb.check import check_kb
from bot.kb.model import KnowledgeBase
from bot.kb.routing import EntryRouter
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
     "changement_situation_travail_banque"),
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
