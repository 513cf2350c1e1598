"""The caller ID an outbound PSTN call presents: the user's caller ID policy [S36].

`caller_id(tenant, user, emergency=False)` reads the user's effective calling line identity
policy (granted, through a group, -Global, else Global):

- `LineUri` (the default): the user's own number;
- `Service`: the policy's ServiceNumber;
- `Resource`: the number of the resource account the policy names (an auto attendant's or call
  queue's); a resource account without a number leaves the user's own;
- `Anonymous`: no number is presented: the From is anonymous and `Privacy: id` asks the trusted
  SBC to withhold the identity that P-Asserted-Identity still carries (RFC 3325 §7, §9.1);
- EnableUserOverride: the user may hide their number in Teams' settings (`caller_id_hidden`),
  which makes the call anonymous; without it the user's choice is ignored.

An emergency call always presents the user's own number, whatever the policy (the PSAP needs a
number to call back; docs/ASSUMPTIONS.md). So does a tenant that names a policy it does not hold:
an SBA caches no caller ID policies [S26].
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from simulator.tenant.model import Tenant, User


@dataclass(frozen=True, slots=True)
class CallerId:
    number: str | None  # the number presented (None: anonymous)
    own_number: str | None  # the user's own number, asserted to the SBC
    privacy: bool  # Privacy: id (RFC 3325)
    policy: str
    reasons: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"number": self.number, "privacy": "id" if self.privacy else "none", "policy": self.policy}


def _e164(number: str) -> str:
    return number if number.startswith("+") else "+" + number


def caller_id(tenant: Tenant, user: User, emergency: bool = False) -> CallerId:
    policy = tenant.effective_policy(user, "calling_line_identity")
    own = user.phone_number
    if policy is None:  # a tenant that holds the grant but not the policy (an SBA's cache)
        name = user.calling_line_identity or tenant.group_policy(user, "calling_line_identity") or "?"
        return CallerId(own, own, False, name, (f"caller ID: {own} (caller ID policy {name!r} is not known here)",))
    if emergency:
        return CallerId(own, own, False, policy.name,
                        (f"caller ID: {own} (an emergency call presents the user's own number; caller ID policy "
                         f"{policy.name!r} does not apply)",))
    substitute = policy.calling_id_substitute
    if user.caller_id_hidden and policy.enable_user_override:
        return CallerId(None, own, True, policy.name,
                        (f"caller ID: anonymous, Privacy: id ({user.upn} hides the number and caller ID policy "
                         f"{policy.name!r} lets users override)",))
    reasons = []
    if user.caller_id_hidden:
        reasons.append(f"{user.upn} hides the number, but caller ID policy {policy.name!r} does not let users "
                       "override (EnableUserOverride)")
    if substitute == "Anonymous":
        reasons.append(f"caller ID: anonymous, Privacy: id (caller ID policy {policy.name!r})")
        return CallerId(None, own, True, policy.name, tuple(reasons))
    number = own
    if substitute == "Service":
        number = _e164(policy.service_number)
        reasons.append(f"caller ID: {number}, the service number of caller ID policy {policy.name!r}")
    elif substitute == "Resource":
        account = tenant.resource_account(policy.resource_account)
        if account is not None and account.phone_number:
            number = account.phone_number
            reasons.append(f"caller ID: {number}, the number of resource account {account.upn} "
                           f"(caller ID policy {policy.name!r})")
        else:
            reasons.append(f"caller ID: {own} (resource account {policy.resource_account} of caller ID policy "
                           f"{policy.name!r} has no number)")
    else:
        reasons.append(f"caller ID: {own}, the user's own number (caller ID policy {policy.name!r})")
    return CallerId(number, own, False, policy.name, tuple(reasons))
