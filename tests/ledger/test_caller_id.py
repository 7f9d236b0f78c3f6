"""One rule for who called, for live calls and CSV imports (ledger/caller_id.py)."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.errors import SettingsError
from ledger.caller_id import Why, decide_caller, parse_trusted_peers, peer_is_trusted

SBC = parse_trusted_peers(["192.0.2.10", "10.1.0.0/16", "2001:db8::/32"])
PAI = ("<tel:+33145678900>",)


@pytest.mark.parametrize(("claimed", "e164"), [
    ('"Mme Martin" <sip:+33612345678@sbc.example;user=phone>', "+33612345678"),
    ("<sip:0612345678@10.0.0.1>", "+33612345678"),
    ("sip:0145678900@pbx.example", "+33145678900"),
    ("tel:+33-6-12-34-56-78", "+33612345678"),
    ("06 12 34 56 78", "+33612345678"),
    ("0692 12 34 56", "+262692123456"),
])
def test_a_telephone_number_is_the_caller(claimed, e164):
    assert decide_caller(claimed) == (e164, Why.NUMBER)


@pytest.mark.parametrize("claimed", [
    "<sip:ivr@sbc.example>", "sip:ivr@sbc", "trunk-orange", "alice", "sip:alice@192.0.2.1",
    "<sip:orange-trunk-01@10.0.0.1;transport=udp>", "SVI CAF",
])
def test_an_identity_that_is_not_a_number_is_withheld(claimed):
    assert decide_caller(claimed) == (None, Why.NOT_A_NUMBER)


@pytest.mark.parametrize("claimed", ["1234", "06 12 34", "+3361234567890123456"])
def test_digits_that_make_no_number_are_withheld(claimed):
    assert decide_caller(claimed) == (None, Why.MALFORMED_NUMBER)


@pytest.mark.parametrize("claimed", [None, "", "anonymous", "<>", "unknown",
                                     '"Anonymous" <sip:anonymous@anonymous.invalid>'])
def test_withheld_words_are_withheld(claimed):
    assert decide_caller(claimed).e164 is None


@pytest.mark.parametrize("privacy", [("id",), ("ID",), ("header", "id"), ("user",),
                                     (" id ", "critical")])
def test_privacy_withholds_even_a_trusted_asserted_number(privacy):
    caller = decide_caller("<sip:0612345678@sbc>", asserted=PAI, privacy=privacy,
                           peer="192.0.2.10:5060", trusted_peers=SBC)
    assert caller == (None, Why.PRIVACY)


def test_privacy_none_or_session_keeps_the_number():
    caller = decide_caller("<sip:ivr@sbc>", asserted=PAI, privacy=("none",),
                           peer="192.0.2.10", trusted_peers=SBC)
    assert caller.e164 == "+33145678900"
    assert decide_caller("<sip:0612345678@x>", privacy=("session",)).e164 == "+33612345678"


@pytest.mark.parametrize("peer", ["192.0.2.10", "192.0.2.10:5060", "10.1.200.3:5080",
                                  "[2001:db8::7]:5060", "2001:db8::7", "[::ffff:192.0.2.10]:5060"])
def test_asserted_identity_is_believed_from_trusted_peers(peer):
    caller = decide_caller("<sip:ivr@sbc>", asserted=PAI, peer=peer, trusted_peers=SBC)
    assert caller == ("+33145678900", Why.NUMBER)


@pytest.mark.parametrize(("peer", "trusted"), [
    ("203.0.113.5:5060", SBC), ("192.0.2.11", SBC), (None, SBC), ("garbage", SBC),
    ("192.0.2.10", ()),  # the default: no peer is trusted
])
def test_asserted_identity_from_anyone_else_is_ignored_for_from(peer, trusted):
    assert decide_caller("<sip:ivr@sbc>", asserted=PAI, peer=peer,
                         trusted_peers=trusted) == (None, Why.NOT_A_NUMBER)
    assert decide_caller("<sip:0612345678@sbc>", asserted=PAI, peer=peer,
                         trusted_peers=trusted).e164 == "+33612345678"


def test_the_first_asserted_value_that_is_a_number_counts():
    caller = decide_caller("<sip:x@y>", asserted=("<sip:alice@sbc>", "<tel:+33612345678>"),
                           peer="192.0.2.10", trusted_peers=SBC)
    assert caller.e164 == "+33612345678"


def test_trusted_peers_setting_errors_are_french():
    assert parse_trusted_peers(["", " 10.0.0.1 "]) == (ipaddress.ip_network("10.0.0.1/32"),)
    with pytest.raises(SettingsError) as caught:
        parse_trusted_peers(["sbc.example"])
    assert str(caught.value) == (
        "telephony.trusted_peers : « sbc.example » n'est ni une adresse IP ni un réseau "
        "(exemples : 192.0.2.10, 10.0.0.0/24, 2001:db8::/32).")


@settings(max_examples=400, deadline=None)
@given(claimed=st.one_of(st.none(), st.text()), asserted=st.lists(st.text(), max_size=3),
       privacy=st.lists(st.text(), max_size=3), peer=st.one_of(st.none(), st.text()))
def test_any_input_gives_a_number_or_withheld_never_an_exception(claimed, asserted, privacy,
                                                                  peer):
    caller = decide_caller(claimed, asserted=asserted, privacy=privacy, peer=peer,
                           trusted_peers=SBC)
    assert (caller.e164 is None) != (caller.why is Why.NUMBER)
    if caller.e164 is not None:
        assert caller.e164[0] == "+" and caller.e164[1:].isdigit()
        assert 9 <= len(caller.e164) <= 16
    assert peer_is_trusted(peer, SBC) in (True, False)
