"""Caller numbers: every way of writing one line gives one pseudonym; withheld gives none."""

from __future__ import annotations

import pytest
from ledger_builders import NUMBER_FORMS

from ledger.pseudonym import (
    InvalidNumberError,
    Pseudonymizer,
    format_pseudonym,
    normalize_number,
    parse_pseudonym,
)

KEY = b"k" * 32


@pytest.mark.parametrize("raw", [f for f in NUMBER_FORMS if f != "612345678"] + [
    "+33 (0)6 12 34 56 78", "+33(0)612345678", "0033 (0)6 12 34 56 78", "06 12 34 56 78 ",
    "sip:+33612345678@192.0.2.1;user=phone", "tel:+33-6-12-34-56-78", "+330612345678",
    "06\u00a012\u00a034\u00a056\u00a078", "06/12/34/56/78", "(06) 12 34 56 78",
])
def test_every_french_format_is_one_e164_number(raw):
    assert normalize_number(raw) == "+33612345678"


def test_every_format_gives_the_same_pseudonym():
    pseudonymizer = Pseudonymizer(KEY)
    keys = {pseudonymizer.caller_key(f) for f in NUMBER_FORMS if f != "612345678"}
    assert len(keys) == 1
    assert len(keys.pop()) == 64


@pytest.mark.parametrize(("raw", "e164"), [
    ("0692 12 34 56", "+262692123456"),  # La Réunion mobile, national form
    ("+262 692 12 34 56", "+262692123456"),
    ("+33 6 92 12 34 56", "+262692123456"),  # wrongly prefixed with +33
    ("0262 12 34 56", "+262262123456"),
    ("0590 12 34 56", "+590590123456"),  # Guadeloupe
    ("0694 12 34 56", "+594694123456"),  # Guyane
    ("0696 12 34 56", "+596696123456"),  # Martinique
    ("0639 12 34 56", "+262639123456"),  # Mayotte mobile
    ("01 23 45 67 89", "+33123456789"),
    ("09 70 12 34 56", "+33970123456"),
    ("+44 20 7946 0958", "+442079460958"),
    ("0044 20 7946 0958", "+442079460958"),
    ("+1 (202) 555-0143", "+12025550143"),
])
def test_overseas_and_foreign_numbers(raw, e164):
    assert normalize_number(raw) == e164


@pytest.mark.parametrize("raw", [None, "", "  ", "anonymous", "Anonymous", "ANONYME",
                                 "restricted", "unavailable", "private", "withheld", "masqué",
                                 "sip:anonymous@anonymous.invalid", "unknown"])
def test_withheld_numbers_have_no_pseudonym(raw):
    assert normalize_number(raw) is None
    assert Pseudonymizer(KEY).caller_key(raw) is None


@pytest.mark.parametrize("raw", ["612345678", "3230", "06123456", "061234567890", "+33 6 12",
                                 "alice", "06 12 34 56 7x", "+", "00", "+0612345678",
                                 "+33 0 12 34 56 78", "٠٦١٢٣٤٥٦٧٨"])
def test_invalid_numbers_are_refused_without_echoing_them(raw):
    with pytest.raises(InvalidNumberError) as caught:
        normalize_number(raw)
    message = str(caught.value)
    digits = "".join(ch for ch in raw if ch.isascii() and ch.isdigit())
    assert raw not in message
    assert len(digits) < 4 or digits not in message


def test_pseudonym_depends_on_the_key():
    one, two = Pseudonymizer(b"a" * 32), Pseudonymizer(b"b" * 32)
    assert one.caller_key("0612345678") != two.caller_key("0612345678")
    assert one.key_id != two.key_id
    assert one.key_id == Pseudonymizer(b"a" * 32).key_id


def test_pseudonym_is_hmac_sha256_of_e164():
    import hashlib
    import hmac

    expected = hmac.new(KEY, b"+33612345678", hashlib.sha256).hexdigest()
    assert Pseudonymizer(KEY).caller_key("06 12 34 56 78") == expected


def test_short_keys_are_refused():
    with pytest.raises(ValueError):
        Pseudonymizer(b"short")


def test_pseudonym_text_round_trip():
    key = Pseudonymizer(KEY).caller_key("0612345678")
    assert parse_pseudonym(format_pseudonym(key)) == key
    assert format_pseudonym(None) == ""  # a withheld caller: empty in the export
    assert parse_pseudonym("pseudo:abc") is None
    assert parse_pseudonym("0612345678") is None
