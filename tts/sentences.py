"""Cut a reply into sentences, so the first one can play while the next is synthesised."""

from __future__ import annotations

import re

# A sentence ends at . ! ? or … followed by a space and something that starts a sentence
# (a capital, a digit, a quote). "etc. et" or "n° 3230. " followed by lower case stay whole.
_BOUNDARY = re.compile(r"(?<=[.!?…])[\s]+(?=[«\"(A-ZÀÂÄÇÉÈÊËÎÏÔÖÙÛÜ0-9])")
_ABBREVIATIONS = ("M.", "Mme.", "Dr.", "St.", "cf.", "p.", "n°.", "art.")


def split_sentences(text: str) -> list[str]:
    """Sentences of ``text`` in order; line breaks also end a sentence. Never empty strings."""
    sentences: list[str] = []
    for paragraph in text.splitlines():
        pending = ""
        for piece in _BOUNDARY.split(paragraph.strip()):
            pending = f"{pending} {piece}".strip() if pending else piece.strip()
            if pending and not pending.endswith(_ABBREVIATIONS):
                sentences.append(pending)
                pending = ""
        if pending:
            sentences.append(pending)
    return [s for s in sentences if s]
