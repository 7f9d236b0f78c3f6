"""What an advisor is told about a caller handed over, and which queue the call goes to.

A hand-off carries its context so the caller need not repeat (docs/telephony.md, "Hand-off
context"): three SIP headers that travel as URI headers of the REFER target (the caller's
side copies them into its INVITE to the advisor, RFC 3261 §19.1.5) and as plain headers of
the bridge's INVITE when the REFER is refused.

- ``X-Allo-Motif``: the motif id (``knowledge/motifs.yml``): ``urgence``, ``conseiller``…
- ``X-Allo-Urgence``: ``oui`` or ``non``; urgent calls go to ``urgent_advisor_uri`` when one
  is configured (a priority queue), else to ``advisor_uri``.
- ``User-to-User``: what the caller asked, one line of their own words, as RFC 7433 carries
  it: the UTF-8 bytes in hexadecimal with ``;encoding=hex``, at most ``UUI_MAX_BYTES``.

Questions about the caller's own file go to the Caf's service (``dossier_personnel_uri``),
never to a contractor advisor (CCTP §3.1, §4.1).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from bot.pipeline import ConversationResult
from telephony_adapter.options import TelephonyOptions

MOTIF_HEADER = "X-Allo-Motif"
URGENCY_HEADER = "X-Allo-Urgence"
UUI_HEADER = "User-to-User"
URGENT_MOTIFS = frozenset({"urgence"})
"""Motifs the tender calls urgent (CCTP §2.2.1: indus, rupture de droits, urgence sociale)."""
DOSSIER_MOTIF = "dossier_personnel"
DEFAULT_MOTIF = "conseiller"
"""A hand-off with no question behind it (saturation, a failure, key 0 at the greeting)."""
UUI_MAX_BYTES = 128
"""The ISDN user-user limit (RFC 7434 §4): a summary that long survives interworking."""


@dataclass(frozen=True)
class Handoff:
    """One hand-off: what it is about, and what the caller said."""

    motif: str
    urgent: bool
    summary: str
    """The caller's question in their words, on one line ("" when they said nothing)."""

    @classmethod
    def of(cls, conversation: ConversationResult | None) -> Handoff:
        motif = (conversation.motif if conversation else None) or DEFAULT_MOTIF
        summary = conversation.question if conversation else ""
        return cls(motif, motif in URGENT_MOTIFS, " ".join(summary.split()))

    def target(self, options: TelephonyOptions) -> str | None:
        """The SIP URI to transfer to; None: the worker's ``advisor_uri``."""
        if self.motif == DOSSIER_MOTIF and options.dossier_personnel_uri:
            return options.dossier_personnel_uri
        if self.urgent and options.urgent_advisor_uri:
            return options.urgent_advisor_uri
        return None

    def headers(self) -> Mapping[str, str]:
        headers = {MOTIF_HEADER: self.motif, URGENCY_HEADER: "oui" if self.urgent else "non"}
        if self.summary:
            headers[UUI_HEADER] = user_to_user(self.summary)
        return headers


def user_to_user(text: str, max_bytes: int = UUI_MAX_BYTES) -> str:
    """``text`` as a User-to-User value (RFC 7433): hex of its UTF-8, cut to ``max_bytes``
    on a character boundary, control characters turned into spaces."""
    line = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    data = line.encode("utf-8")[:max_bytes].decode("utf-8", "ignore").rstrip().encode("utf-8")
    return f"{data.hex()};encoding=hex"


def read_user_to_user(value: str) -> str:
    """The text of a User-to-User value written by ``user_to_user`` (for the advisor's side
    and the tests); raises ValueError on anything else."""
    data, _, params = value.partition(";")
    if "encoding=hex" not in params.replace(" ", "").lower().split(";"):
        raise ValueError(f"User-to-User without ;encoding=hex: {value!r}")
    return bytes.fromhex(data.strip()).decode("utf-8")
