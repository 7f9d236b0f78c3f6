from __future__ import annotations

from tts.sentences import split_sentences


def test_a_reply_is_cut_at_sentence_ends():
    assert split_sentences("Bonjour. Vous êtes bien à la Caf ! Que puis-je faire ?") == [
        "Bonjour.", "Vous êtes bien à la Caf !", "Que puis-je faire ?"]


def test_numbers_abbreviations_and_lower_case_do_not_end_a_sentence():
    assert split_sentences("Appelez le 3230. M. Dupont vous répondra, etc. et ensuite 2 fois.") == [
        "Appelez le 3230.", "M. Dupont vous répondra, etc. et ensuite 2 fois."]


def test_line_breaks_end_sentences_and_blanks_vanish():
    assert split_sentences("Première ligne\n\n  Deuxième ligne.  \n") == [
        "Première ligne", "Deuxième ligne."]
    assert split_sentences("   ") == []
