"""The caller's identity headers of an INVITE, read as text, decided by ``ledger.caller_id``.

PJSIP has parsed the message already but pjsua2 exposes only its text. What is read here:
``From`` (``f``), ``P-Asserted-Identity`` (may be repeated, or hold a sip: and a tel: URI
separated by a comma), ``Privacy`` (values separated by ``;``) and, from our own
dispatcher only, ``X-Allo-Source``: the address Kamailio received the INVITE from, since
the worker itself only sees Kamailio on the loopback. Malformed headers count as absent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ledger.caller_id import CallerId, Network, decide_caller, peer_address

SOURCE_HEADER = "x-allo-source"
"""Written by the edge dispatcher (``$si``) after removing any copy sent from outside."""
_NAMES = {"from": "from", "f": "from", "p-asserted-identity": "pai", "privacy": "privacy",
          SOURCE_HEADER: "source"}
MAX_HEADER_CHARS = 4096
"""Longer identity headers are ignored (nothing legitimate is that long)."""


@dataclass(frozen=True)
class SipIdentity:
    """What an INVITE says about its caller, before any trust is applied."""

    from_value: str | None = None
    asserted: tuple[str, ...] = ()
    privacy: tuple[str, ...] = ()
    relayed_source: str | None = None

    @classmethod
    def parse(cls, message: str) -> SipIdentity:
        """Never raises; the first ``From`` counts, every ``P-Asserted-Identity`` value does."""
        from_value: str | None = None
        asserted: list[str] = []
        privacy: list[str] = []
        source: str | None = None
        head = message.split("\r\n\r\n", 1)[0].split("\n\n", 1)[0]
        for raw_line in head.splitlines()[1:]:
            name, colon, value = raw_line.partition(":")
            kind = _NAMES.get(name.strip().lower()) if colon else None
            if kind is None or len(value) > MAX_HEADER_CHARS:
                continue
            value = value.strip()
            if kind == "from" and from_value is None:
                from_value = value
            elif kind == "pai":
                asserted += [part.strip() for part in _split_uris(value) if part.strip()]
            elif kind == "privacy":
                privacy += [part.strip() for part in value.split(";")]
            elif kind == "source" and source is None:
                source = value
        return cls(from_value, tuple(asserted), tuple(privacy), source)

    def caller(self, peer: str | None, trusted_peers: Sequence[Network]) -> CallerId:
        """The caller, ``peer`` being the address the INVITE came from.

        When it came from the loopback (our own dispatcher), the dispatcher's
        ``X-Allo-Source`` names the real peer; from anywhere else that header is ignored.
        """
        if _is_loopback(peer) and self.relayed_source:
            peer = self.relayed_source
        return decide_caller(self.from_value, asserted=self.asserted, privacy=self.privacy,
                             peer=peer, trusted_peers=trusted_peers)


def caller_from_invite(message: str, peer: str | None = None,
                       trusted_peers: Sequence[Network] = ()) -> str:
    """The caller's E.164 number, or "" when withheld (whatever the reason). Never raises."""
    return SipIdentity.parse(message).caller(peer, trusted_peers).e164 or ""


def _split_uris(value: str) -> list[str]:
    """``<sip:a@b>, <tel:+33…>``: commas inside ``<…>`` or quotes do not split."""
    parts, current, depth, quoted = [], [], 0, False
    for char in value:
        if char == '"':
            quoted = not quoted
        elif not quoted and char == "<":
            depth += 1
        elif not quoted and char == ">":
            depth = max(0, depth - 1)
        elif char == "," and depth == 0 and not quoted:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return parts


def _is_loopback(peer: str | None) -> bool:
    address = peer_address(peer) if peer else None
    return address is not None and address.is_loopback
