"""Who called: the one rule that turns what a line or a CSV claims into a number or nothing.

Live calls (the SIP adapter) and CSV imports both go through :func:`decide_caller`, so a
caller is linked (SC3.2 rule 3) on exactly the same evidence wherever the row comes from:

- a caller who asked for privacy (``Privacy: id``, ``user`` or ``header``, RFC 3323/3325)
  is withheld, even when ``P-Asserted-Identity`` carries the number;
- ``P-Asserted-Identity`` counts only when the peer that handed the call to us is a
  trusted one (``telephony.trusted_peers``); anyone else can write it, so ``From`` is used;
- only a telephone number identifies a caller. Anything else (``sip:ivr@sbc``, a trunk
  name, a SIP user name) is withheld: pseudonymising it would link every caller of a trunk
  that sends the same user, and void their calls.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from enum import Enum
from typing import NamedTuple

from bot.errors import SettingsError
from ledger.pseudonym import InvalidNumberError, normalize_number

PRIVACY_WITHHOLDS = frozenset({"id", "user", "header"})
"""Privacy values (RFC 3323 §4.2, RFC 3325 §9.3) by which the caller hides who they are."""

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_ANGLE = re.compile(r"<([^<>]*)>")
_DIGITS_ONLY = re.compile(r"\+?[0-9().\s\-/\u00a0\u202f]+\Z")


class Why(str, Enum):
    """Why a caller is what :func:`decide_caller` says (for logs and the CSV's errors)."""

    NUMBER = "number"
    WITHHELD = "withheld"
    """Nothing given, or a platform's word for a withheld number (``anonymous``…)."""
    PRIVACY = "privacy"
    """The caller asked for privacy: withheld whatever the headers carry."""
    NOT_A_NUMBER = "not_a_number"
    """A SIP user, a trunk or IVR name: withheld, never pseudonymised."""
    MALFORMED_NUMBER = "malformed_number"
    """Digits that make no telephone number (too short, too long): withheld; a CSV import
    reports it, since a person typed it and can correct it."""


class CallerId(NamedTuple):
    e164: str | None
    """The caller's number in E.164 (``+33612345678``), or None: withheld, never linked."""
    why: Why


def decide_caller(
    claimed: str | None,
    *,
    asserted: Sequence[str] = (),
    privacy: Iterable[str] = (),
    peer: str | None = None,
    trusted_peers: Sequence[Network] = (),
) -> CallerId:
    """The caller of a call or a CSV line; never raises.

    ``claimed`` is the From header's URI (or name-addr), or a CSV ``caller`` value;
    ``asserted`` the ``P-Asserted-Identity`` values, ``privacy`` the ``Privacy`` values,
    ``peer`` the address that handed the INVITE to us.
    """
    if any(value.strip().lower() in PRIVACY_WITHHOLDS for value in privacy):
        return CallerId(None, Why.PRIVACY)
    if asserted and peer_is_trusted(peer, trusted_peers):
        verdicts = [identity_of(value) for value in asserted]
        for verdict in verdicts:
            if verdict.e164 is not None:
                return verdict
        return verdicts[0]
    return identity_of(claimed)


def identity_of(value: str | None) -> CallerId:
    """A number, or why not, from one URI, name-addr or CSV value (no trust involved)."""
    if value is None:
        return CallerId(None, Why.WITHHELD)
    text = value
    if "<" in text:  # a name-addr: "Name" <uri>;params
        angle = _ANGLE.search(text)
        if angle is not None:
            text = angle.group(1)
    try:
        e164 = normalize_number(text)
    except InvalidNumberError:
        user = re.sub(r"^(?:sips?|tel):", "", text.strip(), flags=re.IGNORECASE)
        user = user.split("@", 1)[0].split(";", 1)[0].strip()
        if user and _DIGITS_ONLY.match(user) and any(c.isdigit() for c in user):
            return CallerId(None, Why.MALFORMED_NUMBER)
        return CallerId(None, Why.NOT_A_NUMBER)
    if e164 is None:
        return CallerId(None, Why.WITHHELD)
    return CallerId(e164, Why.NUMBER)


def peer_is_trusted(peer: str | None, trusted_peers: Sequence[Network]) -> bool:
    """``peer`` is ``192.0.2.1``, ``192.0.2.1:5060``, ``[2001:db8::1]:5060`` or ``2001:db8::1``."""
    if not peer or not trusted_peers:
        return False
    address = peer_address(peer)
    return address is not None and any(address in network for network in trusted_peers
                                       if network.version == address.version)


def peer_address(peer: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The IP address of a SIP peer written ``host``, ``host:port`` or ``[v6]:port``."""
    text = peer.strip()
    if text.startswith("["):
        text = text[1:].split("]", 1)[0]
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def parse_trusted_peers(entries: Iterable[str], setting: str = "telephony.trusted_peers"
                        ) -> tuple[Network, ...]:
    """Addresses or networks (``192.0.2.10``, ``10.0.0.0/24``, ``2001:db8::/32``)."""
    networks = []
    for entry in entries:
        text = str(entry).strip()
        if not text:
            continue
        try:
            networks.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            raise SettingsError(
                f"{setting} : « {text} » n'est ni une adresse IP ni un réseau "
                "(exemples : 192.0.2.10, 10.0.0.0/24, 2001:db8::/32)."
            ) from None
    return tuple(networks)
