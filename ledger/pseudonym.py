"""Caller numbers: one E.164 form per line, then an HMAC pseudonym; the number itself is dropped.

Rule 3 links a caller's calls of one day, so ``+33 6 12 34 56 78``, ``0612345678``,
``0033612345678`` and ``06.12.34.56.78`` must give the same pseudonym. French overseas
departments dial inside the French 10-digit plan (``0692…``) but have their own country
codes (``+262 692…``); both spellings map to the same E.164 number. Withheld numbers give
None and are never linked to anything.
"""

from __future__ import annotations

import hashlib
import hmac
import re

PSEUDONYM_PREFIX = "pseudo:"
"""How a pseudonym is written in CSV files, so it can never be mistaken for a number."""

WITHHELD = frozenset({
    "", "anonymous", "anonyme", "unknown", "inconnu", "private", "privé", "prive",
    "restricted", "unavailable", "withheld", "masqué", "masque",
})
"""What platforms write instead of a withheld number (compared in lower case)."""

# National prefix (after the trunk 0) -> country code, for the overseas departments.
OVERSEAS_PREFIXES = {
    "262": "262", "692": "262", "693": "262",  # La Réunion
    "269": "262", "639": "262",  # Mayotte
    "590": "590", "690": "590", "691": "590",  # Guadeloupe, Saint-Martin, Saint-Barthélemy
    "594": "594", "694": "594",  # Guyane
    "596": "596", "696": "596", "697": "596",  # Martinique
}

_SCHEME = re.compile(r"^(?:sips?|tel):", re.IGNORECASE)
_TRUNK_ZERO = re.compile(r"^(\+|00)(\d{1,3})\(0\)")
_SEPARATORS = re.compile(r"[\s.\-/\u00a0\u202f]")
_PSEUDONYM = re.compile(r"^[0-9a-f]{64}$")


class InvalidNumberError(ValueError):
    """Not a telephone number; the message never repeats the input (it may be personal)."""


def normalize_number(raw: str | None) -> str | None:
    """The E.164 form (``+33612345678``) of a caller number, or None when withheld."""
    if raw is None:
        return None
    text = _SCHEME.sub("", raw.strip())
    text = text.split("@", 1)[0].split(";", 1)[0].strip()
    if text.lower() in WITHHELD:
        return None
    text = _SEPARATORS.sub("", text)
    text = _TRUNK_ZERO.sub(r"\1\2", text).replace("(", "").replace(")", "")
    if text.startswith("+"):
        digits = text[1:]
    elif text.startswith("00"):
        digits = text[2:]
    elif len(text) == 10 and text.startswith("0"):
        digits = "33" + text[1:]
    elif len(text) == 11 and text.startswith("33"):
        digits = text
    else:
        raise InvalidNumberError("not a French national or international number")
    if not digits.isdigit() or not digits.isascii():
        raise InvalidNumberError("a number holds digits only")
    if digits.startswith("33"):
        national = digits[2:]
        if len(national) == 10 and national.startswith("0"):
            national = national[1:]  # "+330612345678": a trunk 0 kept by mistake
        if len(national) != 9 or national.startswith("0"):
            raise InvalidNumberError("a French number has 9 digits after +33")
        country = OVERSEAS_PREFIXES.get(national[:3], "33")
        return f"+{country}{national}"
    if not 8 <= len(digits) <= 15 or digits.startswith("0"):
        raise InvalidNumberError("an international number has 8 to 15 digits")
    return f"+{digits}"


class Pseudonymizer:
    """HMAC-SHA256 of the E.164 number under a secret key: stable, not reversible without it."""

    def __init__(self, key: bytes):
        if len(key) < 32:
            raise ValueError("pseudonym key must hold at least 32 bytes")
        self._key = key
        self.key_id = hmac.new(key, b"allo-caf key id", hashlib.sha256).hexdigest()[:16]
        """Names the key without revealing it; stored in the database to catch a key change."""

    def pseudonym(self, e164: str) -> str:
        return hmac.new(self._key, e164.encode("utf-8"), hashlib.sha256).hexdigest()

    def caller_key(self, raw: str | None) -> str | None:
        """Pseudonym of a raw number, None when withheld; raises InvalidNumberError."""
        e164 = normalize_number(raw)
        return None if e164 is None else self.pseudonym(e164)


def parse_pseudonym(text: str) -> str | None:
    """The key inside ``pseudo:<64 hex>``, or None when ``text`` is not a pseudonym."""
    if not text.startswith(PSEUDONYM_PREFIX):
        return None
    key = text[len(PSEUDONYM_PREFIX):]
    return key if _PSEUDONYM.match(key) else None


def format_pseudonym(caller_key: str | None) -> str:
    """The CSV's ``caller``: the pseudonym, or empty when the caller was withheld."""
    return "" if caller_key is None else PSEUDONYM_PREFIX + caller_key
