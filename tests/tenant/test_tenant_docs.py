"""docs/tenant-powershell.md and docs/tenant-yaml.md list what the loaders read, exactly."""

from __future__ import annotations

import re
from pathlib import Path

from simulator.tenant.ps_loader import CMDLETS, IGNORED_CMDLETS
from simulator.tenant.yaml_loader import SECTIONS, TOP_LEVEL

DOCS = Path(__file__).resolve().parents[2] / "docs"
POWERSHELL = (DOCS / "tenant-powershell.md").read_text(encoding="utf-8")
MODELLED, IGNORED = POWERSHELL.split("## Cmdlets drlab models")[1].split("## Ignored on purpose")


def _rows(text: str) -> dict[str, str]:
    """Table rows by the first cell's code names."""
    rows = {}
    for line in text.splitlines():
        if line.startswith("| `"):
            first = line.split("|")[1]
            for name in re.findall(r"`([^`]+)`", first):
                rows[name] = line
    return rows


def test_every_modelled_cmdlet_and_parameter_is_documented() -> None:
    rows = _rows(MODELLED)
    assert sorted(rows) == sorted(spec.name for spec in CMDLETS.values())
    for spec in CMDLETS.values():
        documented = re.findall(r"`([^`]+)`", rows[spec.name].split("|", 2)[2])
        assert documented == [*spec.parameters, *spec.ignored], spec.name


def test_every_cmdlet_ignored_on_purpose_is_documented() -> None:
    assert sorted(_rows(IGNORED)) == sorted(IGNORED_CMDLETS)


def test_every_yaml_section_is_documented() -> None:
    rows = _rows((DOCS / "tenant-yaml.md").read_text(encoding="utf-8").split("## Values")[0])
    assert set(TOP_LEVEL) <= set(rows)
    assert set(SECTIONS) <= set(rows)
