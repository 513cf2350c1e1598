"""The quick paths give exactly what the careful parsers give, or step aside.

parse_message, parse_via, parse_name_addr, parse_cseq and parse_uri each try a quick path for
the common well-formed shape and hand anything else to a careful parser. A quick path may
decline, but whatever it accepts must come out identical to the careful result: same header
lists, same cached structured values, same re-send octets, same fields and parameters.
Checked over the whole torture corpus, the bench messages, generated messages, and generated
header values (including broken ones, where both must fail the same way).
"""

from __future__ import annotations

import os
import string
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.parse import SAMPLES
from simulator.sip import AbsoluteUri, SipParseError, SipUri, TelUri, Via
from simulator.sip.fields import (
    parse_cseq,
    parse_cseq_careful,
    parse_name_addr,
    parse_name_addr_careful,
    parse_via,
    parse_via_careful,
)
from simulator.sip.grammar import plain_param, plain_params
from simulator.sip.parser import _compiled_quick, parse_message_careful, parse_message_python
from simulator.sip.speedups import SPEEDUPS
from simulator.sip.uri import parse_uri, parse_uri_careful, sip_uri_parts_python
from tests.sip.test_conformance_parse import ENTRIES
from tests.sip.test_parser_properties import messages


def _uri_state(uri) -> tuple:
    return (type(uri), str(uri), uri.scheme, uri.user, getattr(uri, "password", None), uri.host, uri.port,
            dict(getattr(uri, "params", {})), dict(getattr(uri, "headers", {})))  # fmt: skip


def _value_state(value) -> object:
    """Everything observable about a cached structured value."""
    if isinstance(value, list):
        return [_value_state(v) for v in value]
    if value is None or isinstance(value, tuple):
        return value
    if isinstance(value, (SipUri, TelUri, AbsoluteUri)):
        return _uri_state(value)
    if isinstance(value, Via):
        # branch first: on a fresh Via it is read without building the params dict.
        return ("via", value.branch, value.protocol, value.transport, value.host, value.port, dict(value.params), str(value))
    tag = value.tag  # first, as for branch
    try:
        uri: object = _uri_state(value.uri)
    except SipParseError as error:
        uri = ("error", error.status, error.reason)
    return ("addr", tag, value.display_name, value.uri_text, dict(value.params), uri, str(value))


def _outcome(parse, data: bytes) -> tuple:
    try:
        message = parse(data)
    except SipParseError as error:
        return ("error", error.status, error.reason)
    headers = message.headers
    cache = {key: _value_state(value) for key, value in headers._cache.items()}
    return (type(message), message.start_line(), headers._names, headers._values, headers._keys,
            message.body, headers._raw, cache, message.to_bytes())  # fmt: skip


def _compiled(data: bytes):
    return _compiled_quick(data) or parse_message_careful(data)


# Both quick paths, whichever parse_message runs: the Python one, and the compiled one
# (simulator/sip/_speedups.pyx) where `make venv` could build it.
QUICK_PATHS = [parse_message_python] + ([_compiled] if _compiled_quick is not None else [])


def _same_message(data: bytes) -> None:
    careful = _outcome(parse_message_careful, data)
    for parse in QUICK_PATHS:
        assert _outcome(parse, data) == careful, parse.__name__


@pytest.mark.parametrize("name,data", [(n, d) for n, _e, d in ENTRIES] + list(SAMPLES.items()))
def test_corpus_and_bench_messages_parse_the_same_either_way(name, data):
    _same_message(data)


def test_the_quick_path_is_taken_for_the_bench_messages():
    # Otherwise the agreement above would hold trivially and the bench would measure the
    # careful path.
    from simulator.sip.parser import _parse_quick

    for data in SAMPLES.values():
        end = data.find(b"\r\n\r\n")
        assert _parse_quick(data, end, data[:end].decode().splitlines()) is not None
        if _compiled_quick is not None:
            assert _compiled_quick(data) is not None


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(messages())
def test_generated_messages_parse_the_same_either_way(generated):
    message, _expected = generated
    _same_message(message.to_bytes())


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([d for _n, _e, d in ENTRIES] + list(SAMPLES.values())), st.data())
def test_damaged_messages_parse_the_same_either_way(data, draw):
    # Overwrite a few octets with characters the quick paths care about.
    damaged = bytearray(data)
    for _ in range(draw.draw(st.integers(1, 4))):
        at = draw.draw(st.integers(0, len(damaged) - 1))
        damaged[at] = draw.draw(st.sampled_from(list(b' \t\r\n:;,="<>@[]\\x0Aa-.%*9/\x00\x7f\xc3\xff')))
    _same_message(bytes(damaged))


def _result(parse, *args) -> object:
    try:
        return _value_state(parse(*args))
    except SipParseError as error:
        return ("error", error.status, error.reason)


# Header values shaped like the real thing (so the quick paths accept many of them), then
# sometimes damaged with a piece the quick paths must notice: a stray ';', an empty
# parameter, an upper-case name, a 6-digit port, a quote, an escape, IPv6, a tab.
_names = st.sampled_from(["branch", "Branch", "branchy", "tagx", "rport", "RPORT", "tag", "TAG", "user", "lr", "x-i", "a:b", ""])
_param_values = st.sampled_from(["z9hG4bK1", "phone", "tls", "1", "a:b", "", "x=y", "[::1]", '"q"', "%41"])
_params = st.lists(st.tuples(_names, st.one_of(st.none(), _param_values)), max_size=3).map(
    lambda items: "".join(f";{n}" if v is None else f";{n}={v}" for n, v in items)
)
_hosts = st.sampled_from(["host.example.com", "10.0.0.1", "[2001:db8::1]", "h_1", "HOST", "a..b", ""])
_ports = st.sampled_from(["", ":5060", ":65535", ":65536", ":99999", ":0", ":"])
_uris = st.builds(
    "{}:{}{}{}{}".format,
    st.sampled_from(["sip", "SIP", "sips", "tel", "im"]),
    st.sampled_from(["", "alice@", "+1425@", "a:pw@", "a%40b@", "a;b@", "@"]),
    _hosts,
    _ports,
    _params,
)
_vias = st.builds(
    "{}/{} {}{}{}".format,
    st.sampled_from(["SIP/2.0", "sip/2.0", "SIP/2.1", "SIP / 2.0"]),
    st.sampled_from(["UDP", "tls", "TCP", "X-Y", ""]),
    _hosts,
    _ports,
    _params,
)
_addrs = st.builds(
    "{}<{}>{}".format,
    st.sampled_from(["", '"Alex Wilber" ', '"Al"', "Alex ", '"a\\"b" ', '"é" ', '"a\tb" ']),
    _uris,
    _params,
)
_cseqs = st.builds("{} {}".format, st.sampled_from(["1", "0", "999999999", "2147483648", "", "01", "1 "]),
                   st.sampled_from(["INVITE", "invite", "X-Y", "", "INVITE "]))  # fmt: skip
_damage = st.sampled_from([";", ";;", "=", " ", "\t", ",", '"', "<", ">", "\\", "é", "%", ":", "?h=v", "@", "[", "]"])


@st.composite
def values(draw):
    value = draw(st.one_of(_vias, _addrs, _uris, _cseqs, _uris.map(lambda u: u.split("@")[-1])))
    for _ in range(draw(st.integers(0, 2))):
        at = draw(st.integers(0, len(value)))
        value = value[:at] + draw(_damage) + value[at:]
    return value


@settings(max_examples=500, deadline=None)
@given(values())
def test_header_values_parse_the_same_either_way(value):
    assert _result(parse_via, value) == _result(parse_via_careful, value)
    assert _result(parse_name_addr, value, "To") == _result(parse_name_addr_careful, value, "To")
    assert _result(parse_cseq, value) == _result(parse_cseq_careful, value)
    assert _result(parse_uri, value) == _result(parse_uri_careful, value)


@settings(max_examples=300, deadline=None)
@given(st.text(string.printable, max_size=40))
def test_arbitrary_values_parse_the_same_either_way(value):
    assert _result(parse_via, value) == _result(parse_via_careful, value)
    assert _result(parse_name_addr, value, "To") == _result(parse_name_addr_careful, value, "To")
    assert _result(parse_cseq, value) == _result(parse_cseq_careful, value)
    assert _result(parse_uri, value) == _result(parse_uri_careful, value)


@pytest.mark.skipif(SPEEDUPS is None, reason="simulator/sip/_speedups is not built (no C compiler)")
@settings(max_examples=500, deadline=None)
@given(st.one_of(values(), st.text(string.printable, max_size=40), st.text(max_size=20)))
def test_the_compiled_uri_match_is_the_regex_match(value):
    assert SPEEDUPS.sip_uri_parts(value) == sip_uri_parts_python(value)


_plain_texts = st.lists(
    st.tuples(st.sampled_from(["tag", "TAG", "Tag", "tagx", "xtag", "branch", "ta", "t"]),
              st.one_of(st.none(), st.sampled_from(["a", "B1", "x:y", "tag", ";tag"[1:]]))),  # fmt: skip
    max_size=5,
).map(lambda items: "".join(f";{n}" if v is None else f";{n}={v}" for n, v in items))


@settings(max_examples=300, deadline=None)
@given(_plain_texts)
def test_one_parameter_read_without_the_dict_is_the_dicts_value(text):
    assert plain_param(text, ";tag") == plain_params(text).get("tag")
    assert plain_param(text, ";branch") == plain_params(text).get("branch")


@pytest.mark.parametrize("text", [";tag=a;TAG=b", ";tag=a;tag", ";tag;tagx=1", ";tag=a;tagx=1", ";x=tag", ""])
def test_repeated_and_similar_parameters(text):
    assert plain_param(text, ";tag") == plain_params(text).get("tag")


def test_without_the_compiled_module_the_python_quick_paths_run():
    # What a machine without a C compiler runs: same messages, from the Python quick paths.
    script = (
        "from bench.parse import SAMPLES\n"
        "from simulator.sip import parse_message\n"
        "from simulator.sip.parser import _compiled_quick, parse_message_careful\n"
        "from simulator.sip.speedups import SPEEDUPS\n"
        "assert SPEEDUPS is None and _compiled_quick is None\n"
        "for data in SAMPLES.values():\n"
        "    assert parse_message(data) == parse_message_careful(data)\n"
        "    assert parse_message(data).contacts[0].uri.host\n"
    )
    env = {**os.environ, "DRLAB_PURE_PYTHON": "1"}
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    done = subprocess.run([sys.executable, "-c", script], env=env, cwd=root, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("octet", [0x00, 0x09, 0x1F, 0x7F, 0x80, 0xFF])
def test_an_odd_octet_anywhere_in_a_message_is_seen_wherever_it_falls(octet):
    # The compiled head scan checks eight octets at a time: an octet out of the printable range
    # must be noticed at every offset of such a word, not only where the byte loop would look.
    data = SAMPLES["options"]
    for at in range(len(data)):
        _same_message(data[:at] + bytes([octet]) + data[at + 1 :])
