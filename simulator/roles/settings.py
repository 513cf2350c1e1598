"""Every timer and knob the roles use, as one frozen dataclass with documented defaults.

Where Microsoft documents a value, the default is that value and the field's `source` names the
source tag ([S4], [S26], ...: docs/SOURCES.md lists each Microsoft Learn page). Where Microsoft is silent, the
default is our choice and `docs/ASSUMPTIONS.md` gives the reasoning (a test keeps the two in step).

Use:

    settings = RoleSettings()                                        # all defaults
    settings = RoleSettings.from_overrides({"client_detection_s": 20})  # a scenario's `settings:`
    settings = settings.with_overrides(demotion_window_s=180)
    settings.describe("demotion_window_s")   # -> SettingInfo(name, default, unit, doc, source, ...)
    settings.token_grace_deadline(authenticated_at, expires_at)   # the 7-day rule, as chosen
    settings.appliance_mode_bound_s()        # a cut -> every client in appliance mode within this
    settings.is_max_sessions_alert(concurrent, max_sessions)

`from_overrides` refuses an unknown name (with the closest known names) and a value of the
wrong type or out of range, raising `SettingsError` whose message names the setting.

Not here on purpose: FailoverTimeSeconds and FailoverResponseCodes are per-gateway attributes of
the tenant (`New-CsOnlinePSTNGateway`, defaults 10 and "408, 503, 504" [S4]); the proxy reads
them from the gateway, not from these settings.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields, replace
from typing import Any

DAY_S = 86_400.0

#: the two readings of "SBA accepts expired tokens for up to 7 days" in the SBA page [S26]
TOKEN_GRACE_FROM_EXPIRY = "token_expiry"  # later revision: 7 days from the token's expiration
TOKEN_GRACE_FROM_AUTHENTICATION = "last_authentication"  # 2024-08 revision: 7 days from last sign-in

#: what the routing engine does with a demoted gateway: [S6][S8] "tried last", [S7] "isn't tried"
DEMOTED_TRIED_LAST = "tried_last"
DEMOTED_SKIPPED = "skipped"


class SettingsError(ValueError):
    """A bad settings override: unknown name, wrong type or value out of range."""


def _setting(
    default: Any,
    doc: str,
    *,
    unit: str = "s",
    source: str = "assumption",
    minimum: float | None = 0.0,
    choices: tuple[str, ...] | None = None,
) -> Any:
    return field(
        default=default,
        metadata={"doc": doc, "unit": unit, "source": source, "minimum": minimum, "choices": choices},
    )


@dataclass(frozen=True)
class SettingInfo:
    name: str
    default: Any
    unit: str
    doc: str
    source: str
    choices: tuple[str, ...] | None


@dataclass(frozen=True)
class RoleSettings:
    """Timers and knobs of the roles. All times in seconds (virtual time on the sim network)."""

    # --- SIP transactions (RFC 3261 §17.1.1.1 and Table 4) -------------------------------
    sip_t1_s: float = _setting(0.5, "RTT estimate; INVITE/non-INVITE retransmit base", source="RFC 3261 §17.1.1.1")
    sip_t2_s: float = _setting(4.0, "maximum retransmit interval for non-INVITE requests and INVITE responses", source="RFC 3261 §17.1.2.2")
    sip_t4_s: float = _setting(5.0, "maximum time a message stays in the network", source="RFC 3261 §17.1.2.2")

    # --- OPTIONS keepalive and gateway health [S2][S6][S7][S10] --------------------------------
    sbc_options_interval_s: float = _setting(60.0, "SBC sends OPTIONS to each proxy FQDN this often", source="S6 S8 S9")
    proxy_options_interval_s: float = _setting(
        60.0, "proxy sends OPTIONS to the SBC's Contact this often, once it has received one from it",
        source="undocumented",
    )
    demotion_window_s: float = _setting(
        300.0, "gateway with no OPTIONS received in this window is demoted (tried last); [S6] says 3 min",
        source="S8 (S6: 180)",
    )
    inactive_after_s: float = _setting(
        900.0, "no OPTIONS for this long: the admin-center view shows the gateway Inactive",
        source="third-party ~15 min (S35, UNCERTAIN)",
    )
    demoted_gateways: str = _setting(
        DEMOTED_TRIED_LAST, "routing of demoted gateways: tried last [S6][S8] or not tried at all [S7]",
        unit="", source="S8 (S7: skipped)", minimum=None, choices=(DEMOTED_TRIED_LAST, DEMOTED_SKIPPED),
    )
    proxy_datacenter_attempts: int = _setting(
        3, "datacenters (proxy regions) a call to an unreachable gateway is tried from before failover",
        unit="count", source="S5 S7", minimum=1,
    )
    max_sessions_alert_ratio: float = _setting(
        0.9, "alert when concurrent sessions reach this share of MaxConcurrentSessions", unit="ratio",
        source="S4",
    )
    max_sessions_enforced: bool = _setting(
        False, "reject new calls with 503 at MaxConcurrentSessions (Microsoft documents only the alert)",
        unit="", source="assumption (S4 documents alerting only)", minimum=None,
    )

    # --- SBC toward the proxies [S1][S2] ----------------------------------------------------
    sbc_connect_timeout_s: float = _setting(
        5.0, "TCP+TLS connect to a proxy FQDN without success in this time: SBC tries the next FQDN",
        source="vendor setting, undocumented by Microsoft",
    )

    # --- Teams client [S26] (the detection timers are not documented) ------------------------
    client_keepalive_interval_s: float = _setting(10.0, "client checks the cloud this often while online")
    client_detection_s: float = _setting(
        30.0, "no successful cloud keepalive for this long: client declares the cloud unreachable"
    )
    client_probe_timeout_s: float = _setting(
        5.0, "a keepalive or probe without an answer in this time counts as failed"
    )
    client_cloud_probe_interval_s: float = _setting(
        15.0, "while offline or in appliance mode, client checks whether the cloud is back this often"
    )
    client_sba_probe_interval_s: float = _setting(
        10.0, "while offline with no SBA, client retries the SBAs of its policy this often"
    )
    client_sba_checkin_interval_s: float = _setting(
        600.0, "while online, client contacts each SBA of its policy this often (keeps the 24 h rule met)"
    )
    client_token_lifetime_s: float = _setting(
        3600.0, "lifetime of the client's access token (Entra ID default is 60-90 min)",
        source="Entra ID token lifetime (not documented for Teams)",
    )
    client_token_renew_before_s: float = _setting(300.0, "while online, client renews its token this long before expiry")
    client_cae_tokens: bool = _setting(
        False, "clients hold Continuous Access Evaluation tokens (SBA then works only ~30 min)",
        unit="", source="S26", minimum=None,
    )
    cae_token_limit_s: float = _setting(
        1800.0, "with CAE tokens, the SBA serves a client this long after its first appliance-mode registration",
        source="S26 (~30 min)",
    )

    # --- SBA [S26] -------------------------------------------------------------------------------
    sba_sync_interval_s: float = _setting(300.0, "SBA refreshes its cache from the cloud this often", source="undocumented")
    sba_sync_timeout_s: float = _setting(30.0, "a sync request without an answer in this time has failed")
    expired_token_grace_s: float = _setting(7 * DAY_S, "SBA accepts an expired client token for this long", source="S26")
    token_grace_from: str = _setting(
        TOKEN_GRACE_FROM_EXPIRY, "what the 7-day grace counts from: the token's expiry or the last sign-in",
        unit="", source="S26 (two revisions disagree)", minimum=None,
        choices=(TOKEN_GRACE_FROM_EXPIRY, TOKEN_GRACE_FROM_AUTHENTICATION),
    )
    sba_contact_window_s: float = _setting(DAY_S, "SBA refuses a client it has not seen within this window", source="S26")
    sba_registration_expiry_s: float = _setting(600.0, "Expires the SBA grants a client REGISTER; clients refresh at half")
    default_unanswered_after_s: float = _setting(
        20.0, "ring time before unanswered-call forwarding when the user set none",
        source="Teams call settings default, not documented",
    )
    sba_cdr_upload_retry_s: float = _setting(30.0, "after a failed CDR upload, the SBA retries this much later")

    # --- SBC and PSTN carrier (lab roles; Microsoft documents neither) ------------------------------
    sbc_retry_after_s: float = _setting(
        1.0, "a proxy that answered 503 with Retry-After is skipped for this long when it gives no value",
        source="S2 (Retry-After 'one-second interval')",
    )
    pstn_answer_after_s: float = _setting(
        2.0, "a far end whose number plan says `answer` without `answer_after` rings this long, then answers",
        source="lab choice",
    )
    client_no_answer_timeout_s: float = _setting(
        60.0, "a Teams client's outgoing call still unanswered after this long is cancelled (the caller gives up)",
    )

    # --- overload: new calls refused before the node falls behind (RFC 3261 §21.5.4) ---------------
    max_call_setups: int = _setting(
        100, "an SBC or proxy with this many calls being set up answers a new INVITE 503 with Retry-After",
        unit="count", source="assumption ([S2] documents the busy proxy's 503, not when)", minimum=1,
    )
    overload_queue_bytes: int = _setting(
        256 * 1024, "an INVITE read from a SIP UDP socket with this much still unread behind it gets 503 with Retry-After",
        unit="bytes", source="assumption (RFC 3261 §21.5.4)", minimum=1,
    )
    udp_receive_buffer_bytes: int = _setting(
        4 * 1024 * 1024, "receive buffer asked for each SIP UDP socket (the kernel grants at most net.core.rmem_max)",
        unit="bytes", source="assumption (RFC 3261 §18.3 leaves socket sizing to the implementation)", minimum=4096,
    )
    overload_retry_after_s: float = _setting(
        1.0, "the Retry-After of that 503: how long the caller should wait before trying this node again",
        source="S2 (Retry-After 'one-second interval')",
    )

    # --- media (docs/media.md) ------------------------------------------------------------------
    media: bool = _setting(
        True, "answered calls carry RTP and RTCP; false: SDP only, no packets, no media watch (a lab switch)",
        unit="", source="lab choice", minimum=None,
    )

    # --- calls in progress (Microsoft documents no media-inactivity timeout) ----------------------
    media_inactivity_timeout_s: float = _setting(
        30.0, "an answered call with no media on a leg for this long is ended by each node that sees the silence",
        source="SBC vendor setting (Oracle RTP guard 300 s, Asterisk rtptimeout 30-60 s)", minimum=1.0,
    )

    # ------------------------------------------------------------------------------------------
    def __post_init__(self) -> None:
        for f in fields(self):
            value = _coerce(f.name, getattr(self, f.name), f)
            object.__setattr__(self, f.name, value)  # frozen: normalise int -> float once, here
            _check(f.name, value, f)

    @classmethod
    def from_overrides(cls, overrides: Mapping[str, Any] | None, base: RoleSettings | None = None) -> RoleSettings:
        """Defaults (or `base`) with `overrides` applied by name, e.g. a scenario's `settings:` mapping."""
        base = base if base is not None else cls()
        if not overrides:
            return base
        if not isinstance(overrides, Mapping):
            raise SettingsError(f"settings must be a mapping of name: value, got {type(overrides).__name__}")
        known = {f.name: f for f in fields(cls)}
        for name in overrides:
            if name not in known:
                close = difflib.get_close_matches(str(name), known, n=3)
                hint = f"; did you mean {', '.join(close)}?" if close else f"; known settings: {', '.join(sorted(known))}"
                raise SettingsError(f"unknown setting {name!r}{hint}")
        return replace(base, **dict(overrides))

    def with_overrides(self, **overrides: Any) -> RoleSettings:
        return RoleSettings.from_overrides(overrides, base=self)

    def scaled(self, time_scale: float) -> RoleSettings:
        """A copy whose role-level durations are divided by `time_scale` (a rehearsal `time_scale`
        times faster than life on the wall clock). SIP transaction timers (T1, T2, T4, and Timer
        B/F derived from T1) stay as they are: they measure the network's round trips, which do
        not get faster; docs/ASSUMPTIONS.md says which timers are scaled and why."""
        if not time_scale > 0:  # an infinite one fails below: it would make every timer 0
            raise SettingsError(f"time scale must be a number > 0; got {time_scale!r}")
        transaction_timers = ("sip_t1_s", "sip_t2_s", "sip_t4_s")
        return replace(self, **{f.name: getattr(self, f.name) / time_scale for f in fields(self)
                                if f.metadata["unit"] == "s" and f.name not in transaction_timers})

    @staticmethod
    def describe(name: str | None = None) -> SettingInfo | list[SettingInfo]:
        """Documentation of one setting (by name) or of all of them, in declaration order."""
        infos = [
            SettingInfo(f.name, f.default, f.metadata["unit"], f.metadata["doc"], f.metadata["source"], f.metadata["choices"])
            for f in fields(RoleSettings)
        ]
        if name is None:
            return infos
        for info in infos:
            if info.name == name:
                return info
        raise SettingsError(f"unknown setting {name!r}")

    # --- derived rules several roles share ----------------------------------------------------
    def token_grace_deadline(self, authenticated_at: float, expires_at: float) -> float:
        """Last instant the SBA accepts a token signed in at `authenticated_at`, expiring at `expires_at`.

        [S26] 2024-08 revision: 7 days from the last authentication (an outage 20 h after renewal
        leaves 6 days 4 h); later revision: 7 days from the token's expiration. `token_grace_from`
        picks the reading.
        """
        if self.token_grace_from == TOKEN_GRACE_FROM_AUTHENTICATION:
            return authenticated_at + self.expired_token_grace_s
        return expires_at + self.expired_token_grace_s

    def appliance_mode_bound_s(self) -> float:
        """Latest a client with a reachable first SBA is in appliance mode after a cut.

        The cut comes at the earliest just after an answered keepalive, so the client is offline
        at most `client_detection_s` later; then one SBA probe and one REGISTER, each answered
        within `client_probe_timeout_s` on the LAN.
        """
        return self.client_detection_s + 2 * self.client_probe_timeout_s

    def cloud_return_bound_s(self) -> float:
        """Latest a client with no outgoing call is back online after the cloud is reachable again."""
        return self.client_cloud_probe_interval_s + self.client_probe_timeout_s

    def is_max_sessions_alert(self, concurrent: int, max_sessions: int | None) -> bool:
        """[S4]: alert when concurrent sessions >= 90 % of MaxConcurrentSessions; none if unset."""
        return max_sessions is not None and concurrent >= self.max_sessions_alert_ratio * max_sessions


def _check(name: str, value: Any, f: Any) -> None:
    choices = f.metadata["choices"]
    if choices is not None and value not in choices:
        raise SettingsError(f"setting {name!r} must be one of {', '.join(choices)}; got {value!r}")
    minimum = f.metadata["minimum"]
    if minimum is not None and isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value) or value < minimum:
            raise SettingsError(f"setting {name!r} must be a finite number >= {minimum:g}; got {value!r}")
        if f.metadata["unit"] == "s" and value <= 0:
            # a zero interval would make a role's next deadline "now" forever
            raise SettingsError(f"setting {name!r} must be a duration > 0 seconds; got {value!r}")
    if name == "max_sessions_alert_ratio" and not 0 < value <= 1:
        raise SettingsError(f"setting {name!r} must be in (0, 1]; got {value!r}")


def _coerce(name: str, value: Any, f: Any) -> Any:
    """Accept what YAML gives: int for a float setting is fine; bool is never a number."""
    default = f.default if f.default is not MISSING else None
    expected = type(default)
    if expected is bool:
        if not isinstance(value, bool):
            raise SettingsError(f"setting {name!r} must be true or false; got {value!r}")
        return value
    if expected in (int, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SettingsError(f"setting {name!r} must be a number ({f.metadata['unit'] or 'unitless'}); got {value!r}")
        if expected is int:
            if isinstance(value, float) and not value.is_integer():
                raise SettingsError(f"setting {name!r} must be a whole number; got {value!r}")
            return int(value)
        return float(value)
    if expected is str:
        if not isinstance(value, str):
            raise SettingsError(f"setting {name!r} must be a string; got {value!r}")
        return value
    return value
