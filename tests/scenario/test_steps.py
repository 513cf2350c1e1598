"""The step registry: one class per step kind, and the docs' step table made from it."""

from pathlib import Path

import pytest

from simulator.scenario.loader import parse_scenario
from simulator.scenario.steps import STEPS, Step, _contact_name, steps_table

from .test_loader import HEAD

DOCS = Path(__file__).resolve().parents[2] / "docs" / "scenarios.md"


def test_the_docs_step_table_is_the_registrys():
    assert steps_table() in DOCS.read_text(encoding="utf-8"), (
        "docs/scenarios.md's step table differs from the registry: paste `python -m simulator.scenario.steps`")


@pytest.mark.parametrize("kind, text", [
    ("cut", "cut: wan"), ("restore", "restore: wan"), ("impair", "impair: {link: wan, loss: 0.1}"),
    ("wait", "wait: 5s"), ("expect", "expect: {cdrs: 0}"), ("call", "call: {from: a@b, to: '1'}"),
    ("change", "change: {add_user: {upn: x@y}}"), ("sync", "sync: sba1"), ("restart", "restart: sbc1"),
])
def test_each_registered_kind_parses_into_its_own_class(kind, text):
    step = parse_scenario(HEAD + f"steps:\n  - {text}\n", "s.yaml").steps[0]
    assert type(step) is STEPS[kind] and step.kind == kind and isinstance(step, Step)


def test_every_registered_kind_is_covered_by_the_table_above():
    covered = {kind for kind, _ in test_each_registered_kind_parses_into_its_own_class.pytestmark[0].args[1]}
    assert covered == set(STEPS)


@pytest.mark.parametrize(("contact", "said"), [
    ("sip:sip.pstnhub.microsoft.com:443;transport=tls", "sip.pstnhub.microsoft.com"),
    ("sip:dave@contoso.com", "dave@contoso.com"),
    ("<sip:+12065550100@sba1.contoso.com;user=phone>", "+12065550100 at sba1.contoso.com"),
])
def test_the_answering_contact_is_named_as_people_say_it(contact, said):
    assert _contact_name(contact) == said
