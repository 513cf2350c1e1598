"""Role settings: documented defaults, overrides by name, clear errors, ASSUMPTIONS.md kept complete."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest

from simulator.roles.settings import DAY_S, RoleSettings, SettingsError

ASSUMPTIONS = Path(__file__).resolve().parents[2] / "docs" / "ASSUMPTIONS.md"


@pytest.mark.parametrize(
    "name, documented_default",
    [
        ("sbc_options_interval_s", 60.0),  # [S6][S8][S9]
        ("demotion_window_s", 300.0),  # [S8]
        ("max_sessions_alert_ratio", 0.9),  # [S4]
        ("expired_token_grace_s", 7 * DAY_S),  # [S26]
        ("sba_contact_window_s", DAY_S),  # [S26]
        ("cae_token_limit_s", 1800.0),  # [S26]
        ("sip_t1_s", 0.5), ("sip_t2_s", 4.0), ("sip_t4_s", 5.0),  # RFC 3261 §17.1.1.1, §17.1.2.2
        ("sba_sync_interval_s", 300.0),  # default 5 minutes
    ],
)
def test_documented_defaults(name, documented_default):
    assert getattr(RoleSettings(), name) == documented_default


@pytest.mark.parametrize(
    "overrides, name, expect",
    [
        ({"client_detection_s": 20}, "client_detection_s", 20.0),
        ({"demotion_window_s": 180}, "demotion_window_s", 180.0),
        ({"token_grace_from": "last_authentication"}, "token_grace_from", "last_authentication"),
        ({"max_sessions_enforced": True}, "max_sessions_enforced", True),
        ({"proxy_datacenter_attempts": 2.0}, "proxy_datacenter_attempts", 2),
        ({}, "client_detection_s", 30.0),
        (None, "client_detection_s", 30.0),
    ],
)
def test_override_by_name(overrides, name, expect):
    value = getattr(RoleSettings.from_overrides(overrides), name)
    assert value == expect and type(value) is type(expect)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"client_detecton_s": 20}, "unknown setting 'client_detecton_s'; did you mean client_detection_s"),
        ({"zzz": 1}, "unknown setting 'zzz'; known settings: "),
        ({"client_detection_s": "20s"}, "'client_detection_s' must be a number"),
        ({"client_detection_s": True}, "'client_detection_s' must be a number"),
        ({"client_detection_s": 0}, "must be a duration > 0"),
        ({"demotion_window_s": -5}, "must be a finite number >= 0"),
        ({"demotion_window_s": float("inf")}, "must be a finite number"),
        ({"max_sessions_enforced": 1}, "must be true or false"),
        ({"token_grace_from": "forever"}, "must be one of token_expiry, last_authentication"),
        ({"demoted_gateways": 3}, "must be a string"),
        ({"max_sessions_alert_ratio": 1.5}, "must be in (0, 1]"),
        ({"proxy_datacenter_attempts": 0}, ">= 1"),
        ({"proxy_datacenter_attempts": 1.5}, "must be a whole number"),
        (["client_detection_s"], "must be a mapping"),
    ],
)
def test_bad_override_is_a_clear_error(overrides, message):
    with pytest.raises(SettingsError) as err:
        RoleSettings.from_overrides(overrides)
    assert message in str(err.value)


def test_overrides_apply_on_top_of_a_base():
    base = RoleSettings.from_overrides({"demotion_window_s": 180})
    both = base.with_overrides(client_detection_s=20)
    assert (both.demotion_window_s, both.client_detection_s) == (180.0, 20.0)
    assert RoleSettings().demotion_window_s == 300.0  # frozen: the base was not touched


@pytest.mark.parametrize(
    "grace_from, authenticated_at, expires_at, expect",
    [
        # [S26] 2024-08 revision: outage 20 h after renewal leaves 6 days 4 h -> counts from sign-in
        ("last_authentication", 0.0, 3600.0, 7 * DAY_S),
        # later revision: 7 days from the token's expiration
        ("token_expiry", 0.0, 3600.0, 7 * DAY_S + 3600),
    ],
)
def test_token_grace_deadline_follows_the_chosen_reading(grace_from, authenticated_at, expires_at, expect):
    settings = RoleSettings(token_grace_from=grace_from)
    assert settings.token_grace_deadline(authenticated_at, expires_at) == expect


@pytest.mark.parametrize(
    "concurrent, max_sessions, expect",
    [(89, 100, False), (90, 100, True), (100, 100, True), (5, None, False), (1, 1, True), (0, 1, False)],
)
def test_max_sessions_alert_at_ninety_percent(concurrent, max_sessions, expect):
    assert RoleSettings().is_max_sessions_alert(concurrent, max_sessions) is expect


def test_every_setting_is_described_and_listed_in_assumptions_md():
    text = ASSUMPTIONS.read_text()
    for f in fields(RoleSettings):
        info = RoleSettings.describe(f.name)
        assert info.doc and info.source, f.name
        assert f"`{f.name}`" in text, f"{f.name} missing from docs/ASSUMPTIONS.md"


def test_describe_unknown_setting_is_an_error():
    with pytest.raises(SettingsError, match="unknown setting"):
        RoleSettings.describe("nope")
