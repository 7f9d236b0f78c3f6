"""The domain prompt is a sentence, not a list (a list made Whisper base loop)."""

from __future__ import annotations

from asr.prompt import MAX_TERMS, build_prompt


def test_terms_become_one_french_sentence_with_articles():
    assert build_prompt(["prime d'activité", "RSA", "APL", "Mon Compte", "FranceConnect"]) == (
        "Bonjour, j'appelle la Caf au sujet de la prime d'activité, du RSA, des APL, "
        "de Mon Compte et de FranceConnect.")


def test_duplicates_blanks_and_the_word_caf_are_dropped():
    assert build_prompt(["RSA", " rsa ", "", "Caf", "  allocataire  "]) == \
        "Bonjour, j'appelle la Caf au sujet du RSA et de l'allocataire."


def test_no_terms_still_gives_a_sentence():
    assert build_prompt([]) == "Bonjour, j'appelle la Caf au sujet de mon dossier."


def test_the_prompt_keeps_at_most_the_first_terms():
    prompt = build_prompt([f"terme{i}" for i in range(40)])
    assert f"terme{MAX_TERMS - 1}" in prompt and f"terme{MAX_TERMS}" not in prompt
