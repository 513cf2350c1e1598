"""Caller ID policies: what an outbound PSTN call presents (CallingIDSubstitute, EnableUserOverride)."""

from __future__ import annotations

import pytest

from simulator.tenant.caller_id import caller_id
from simulator.tenant.model import (
    CallingLineIdentity,
    Group,
    GroupPolicyAssignment,
    ResourceAccount,
    Tenant,
    User,
)

OWN = "+14255550101"


def tenant(policy: CallingLineIdentity, *, hidden: bool = False, account_number: str | None = "+14255550150") -> Tenant:
    t = Tenant()
    t.add("resource_account", ResourceAccount("aa@contoso.com", object_id="ra-1", phone_number=account_number))
    t.add("calling_line_identity", policy)
    t.add("user", User("ann@contoso.com", OWN, "DirectRouting", True, calling_line_identity=policy.name,
                       caller_id_hidden=hidden))
    return t


@pytest.mark.parametrize(("policy", "hidden", "number", "privacy"), [
    (CallingLineIdentity("P"), False, OWN, False),
    (CallingLineIdentity("P", calling_id_substitute="Service", service_number="+14255550100"), False,
     "+14255550100", False),
    (CallingLineIdentity("P", calling_id_substitute="Service", service_number="14255550100"), False,
     "+14255550100", False),  # presented in E.164
    (CallingLineIdentity("P", calling_id_substitute="Resource", resource_account="ra-1"), False,
     "+14255550150", False),
    (CallingLineIdentity("P", calling_id_substitute="Resource", resource_account="aa@contoso.com"), False,
     "+14255550150", False),
    (CallingLineIdentity("P", calling_id_substitute="Anonymous"), False, None, True),
    # the user's own choice to hide the number counts only with EnableUserOverride
    (CallingLineIdentity("P", enable_user_override=True), True, None, True),
    (CallingLineIdentity("P", calling_id_substitute="Service", service_number="+14255550100",
                         enable_user_override=True), True, None, True),
    (CallingLineIdentity("P"), True, OWN, False),
])
def test_the_policy_decides_the_number_presented(policy, hidden, number, privacy) -> None:
    t = tenant(policy, hidden=hidden)
    ident = caller_id(t, t.user("ann@contoso.com"))
    assert (ident.number, ident.own_number, ident.privacy, ident.policy) == (number, OWN, privacy, "P")
    assert ident.to_json() == {"number": number, "privacy": "id" if privacy else "none", "policy": "P"}


def test_a_resource_account_without_a_number_leaves_the_users_own() -> None:
    t = tenant(CallingLineIdentity("P", calling_id_substitute="Resource", resource_account="ra-1"),
               account_number=None)
    ident = caller_id(t, t.user("ann@contoso.com"))
    assert ident.number == OWN and "has no number" in ident.reasons[0]


@pytest.mark.parametrize("policy", [
    CallingLineIdentity("P", calling_id_substitute="Anonymous"),
    CallingLineIdentity("P", calling_id_substitute="Service", service_number="+14255550100"),
])
def test_an_emergency_call_presents_the_users_own_number(policy) -> None:
    t = tenant(policy)
    ident = caller_id(t, t.user("ann@contoso.com"), emergency=True)
    assert (ident.number, ident.privacy) == (OWN, False)


def test_a_group_grant_applies_when_the_user_has_none() -> None:
    t = tenant(CallingLineIdentity("P", calling_id_substitute="Anonymous"))
    t.add("user", User("bo@contoso.com", "+14255550102", "DirectRouting", True))
    t.add("group", Group("Desk", ("bo@contoso.com",)))
    t.add("group_policy_assignment", GroupPolicyAssignment("Desk", "calling_line_identity", "P", 1))
    assert caller_id(t, t.user("bo@contoso.com")).number is None
    assert caller_id(Tenant(), User("x@contoso.com", OWN)).policy == "Global"


def test_a_grant_of_a_policy_the_tenant_does_not_hold_presents_the_users_own_number() -> None:
    """An SBA's cache holds users with their grants but no caller ID policies [S26]."""
    t = Tenant()
    t.add("user", User("ann@contoso.com", OWN, "DirectRouting", True, calling_line_identity="Withheld"))
    ident = caller_id(t, t.user("ann@contoso.com"))
    assert (ident.number, ident.privacy, ident.policy) == (OWN, False, "Withheld")
