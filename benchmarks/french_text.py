"""French text normalisation for word error rates: case, punctuation, elision, numbers.

"Appuyez sur 1." and "appuyez sur un" are the same answer to a caller; a WER that counts
them as an error measures spelling conventions, not hearing.
"""

from __future__ import annotations

import re
import unicodedata

_UNITS = ("zéro un deux trois quatre cinq six sept huit neuf dix onze douze treize quatorze "
          "quinze seize dix-sept dix-huit dix-neuf").split()
_TENS = {2: "vingt", 3: "trente", 4: "quarante", 5: "cinquante", 6: "soixante"}


def number_words(n: int) -> str:
    """French words for 0 ≤ n < 10 000 (enough for menus, amounts and digit groups)."""
    if n < 20:
        return _UNITS[n]
    if n < 70:
        tens, unit = divmod(n, 10)
        if unit == 0:
            return _TENS[tens]
        return f"{_TENS[tens]} et un" if unit == 1 else f"{_TENS[tens]}-{_UNITS[unit]}"
    if n < 80:
        return "soixante et onze" if n == 71 else f"soixante-{_UNITS[n - 60]}"
    if n < 100:
        return "quatre-vingts" if n == 80 else f"quatre-vingt-{_UNITS[n - 80]}"
    if n < 1000:
        hundreds, rest = divmod(n, 100)
        head = "cent" if hundreds == 1 else f"{_UNITS[hundreds]} cent"
        return head if rest == 0 else f"{head} {number_words(rest)}"
    thousands, rest = divmod(n, 1000)
    head = "mille" if thousands == 1 else f"{number_words(thousands)} mille"
    return head if rest == 0 else f"{head} {number_words(rest)}"


def normalize(text: str) -> str:
    text = unicodedata.normalize("NFC", text).casefold()
    text = text.replace("’", "'").replace("œ", "oe")
    text = re.sub(r"\d+", lambda m: number_words(int(m.group())) if len(m.group()) <= 4
                  else " ".join(_UNITS[int(d)] for d in m.group()), text)
    text = re.sub(r"(\w)'", r"\1' ", text)  # d'agent -> d' agent: elision is its own word
    text = re.sub(r"[-‐–—]", " ", text)
    text = re.sub(r"[^\w' ]", " ", text)
    return " ".join(text.split())
