"""The caller of an INVITE: Privacy, P-Asserted-Identity from trusted peers only, numbers only.

Parsing is tested on INVITE texts, then on random text (hypothesis), then end to end: a
real INVITE over UDP to the real PJSIP endpoint, whose call leg must carry the decision.
"""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sip_peer import SipPeer

from ledger.caller_id import parse_trusted_peers
from telephony_adapter.pjsip_agent import Invite
from telephony_adapter.sip import CallLeg
from telephony_adapter.sip_identity import SipIdentity, caller_from_invite

SBC = parse_trusted_peers(["192.0.2.10"])


def invite(*headers: str) -> str:
    return "\r\n".join(["INVITE sip:3230@127.0.0.1 SIP/2.0", "Via: SIP/2.0/UDP x;branch=z9hG4bK1",
                        *headers, "Call-ID: x", "CSeq: 1 INVITE", "", "v=0"])


@pytest.mark.parametrize(("headers", "peer", "caller"), [
    (["From: \"Mme Martin\" <sip:+33612345678@sbc.example;user=phone>;tag=a"], None,
     "+33612345678"),
    (["f: <sip:0612345678@10.0.0.1>;tag=a"], None, "+33612345678"),
    (["From: sip:0145678900@pbx.example;tag=a"], None, "+33145678900"),
    # P-Asserted-Identity from a trusted peer only
    (["From: <sip:ivr@sbc.example>;tag=a", "P-Asserted-Identity: <tel:+33145678900>"],
     "192.0.2.10:5060", "+33145678900"),
    (["From: <sip:ivr@sbc.example>;tag=a", "P-Asserted-Identity: <tel:+33145678900>"],
     "203.0.113.9:5060", ""),
    (["From: <sip:0612345678@x>;tag=a", "P-Asserted-Identity: <tel:+33145678900>"],
     "203.0.113.9:5060", "+33612345678"),
    (["From: <sip:x@y>;tag=a",
      "P-Asserted-Identity: \"A, B\" <sip:alice@sbc>, <tel:+33612345678>"],
     "192.0.2.10", "+33612345678"),
    # Privacy: id withholds whatever the headers carry
    (["From: <sip:anonymous@anonymous.invalid>;tag=a",
      "P-Asserted-Identity: <tel:+33145678900>", "Privacy: id"], "192.0.2.10:5060", ""),
    (["From: <sip:0612345678@x>;tag=a", "Privacy: header;id"], None, ""),
    (["From: <sip:0612345678@x>;tag=a", "privacy: none"], None, "+33612345678"),
    # not a number: withheld, never a user name
    (["From: <sip:ivr@sbc.example>;tag=a"], None, ""),
    (["From: \"Anonymous\" <sip:anonymous@anonymous.invalid>;tag=a"], None, ""),
    (["From: <>;tag=a"], None, ""),
    ([], None, ""),
])
def test_caller_of_an_invite(headers, peer, caller):
    assert caller_from_invite(invite(*headers), peer, SBC) == caller
    assert Invite.parse(invite(*headers), peer, SBC).caller == caller


def test_the_dispatcher_names_the_real_peer_only_over_the_loopback():
    message = invite("From: <sip:ivr@sbc>;tag=a", "P-Asserted-Identity: <tel:+33145678900>",
                     "X-Allo-Source: 192.0.2.10")
    assert caller_from_invite(message, "127.0.0.1:5060", SBC) == "+33145678900"
    assert caller_from_invite(message, "203.0.113.9:5060", SBC) == ""  # forged from outside
    assert SipIdentity.parse(message).relayed_source == "192.0.2.10"


header_names = st.sampled_from(["From", "f", "P-Asserted-Identity", "Privacy",
                                "X-Allo-Source", "To", "Via"])


@settings(max_examples=300, deadline=None)
@given(lines=st.lists(st.tuples(header_names, st.text()), max_size=8),
       peer=st.one_of(st.none(), st.text(max_size=40)))
def test_random_headers_give_a_number_or_nothing(lines, peer):
    message = invite(*(f"{name}: {value}" for name, value in lines))
    caller = caller_from_invite(message, peer, SBC)
    assert caller == "" or (caller[0] == "+" and caller[1:].isdigit())
    if any(name == "Privacy" and "id" in [v.strip().lower() for v in value.split(";")]
           for name, value in lines):
        assert caller == ""


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_any_message_text_is_read_without_raising(text):
    caller = caller_from_invite(text, "192.0.2.10", SBC)
    assert caller == "" or caller.startswith("+")
    Invite.parse(text, "192.0.2.10", SBC)


def test_a_real_invite_reaches_the_call_with_the_decided_caller(world):
    """Over UDP to PJSIP: 127.0.0.1 is the trusted SBC, so its PAI counts, unless Privacy."""
    arrived: asyncio.Queue[CallLeg] = asyncio.Queue()
    callers: list[str] = []

    async def refuse(leg: CallLeg) -> None:
        arrived.put_nowait(leg)
        await leg.hangup()

    async def scenario():
        endpoint = await world.endpoint(refuse, trusted_peers=("127.0.0.1",))
        peer = await SipPeer("operateur").open()
        try:
            for headers in (("P-Asserted-Identity: <tel:+33145678900>",),
                            ("P-Asserted-Identity: <tel:+33145678900>", "Privacy: id"),
                            ()):
                await peer.call(endpoint.sip_port, headers=headers)
                callers.append((await asyncio.wait_for(arrived.get(), 5)).caller)
        finally:
            peer.close()

    world.run(scenario())
    # From is <sip:caller@127.0.0.1>: not a number, so without PAI the caller is withheld.
    assert callers == ["+33145678900", "", ""]
