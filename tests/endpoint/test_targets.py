"""Target: default ports per transport, next hops from SIP URIs, bad input named."""

import pytest

from simulator.endpoint import Target


@pytest.mark.parametrize(("uri", "expected"), [
    ("sip:sbc1.contoso.com", ("sbc1.contoso.com", 5060, "udp")),
    ("sip:sbc1.contoso.com:5068;transport=TCP", ("sbc1.contoso.com", 5068, "tcp")),
    ("sip:sip.pstnhub.microsoft.com;transport=tls;lr", ("sip.pstnhub.microsoft.com", 5061, "tls")),
    ("sips:+14255550100@sbc1.contoso.com", ("sbc1.contoso.com", 5061, "tls")),
    ("sip:alice@10.1.0.10:5070", ("10.1.0.10", 5070, "udp")),
])
def test_next_hop_from_a_uri(uri, expected):
    target = Target.from_uri(uri)
    assert (target.host, target.port, target.transport) == expected


@pytest.mark.parametrize(("make", "message"), [
    (lambda: Target("sbc1.contoso.com", transport="sctp"), "bad SIP transport"),
    (lambda: Target.from_uri("tel:+14255550100"), "not a sip:/sips: URI"),
])
def test_bad_targets_are_named(make, message):
    with pytest.raises(ValueError, match=message):
        make()
