"""The lab: topology (sites, links, hosts), certificates and roles, built on a network.

    from simulator.lab import Lab, LabError
    lab = Lab.load("examples/labs/contoso.yaml", tenant="examples/contoso.yaml", network="sim", seed=1)

The lab file format is docs/lab-yaml.md; `spec.py` reads it, `lab.py` builds and runs it.
"""

from simulator.lab.lab import ROLE_CLASSES, Lab
from simulator.lab.spec import LabError, LabSpec, load_lab_spec, parse_lab

__all__ = ["ROLE_CLASSES", "Lab", "LabError", "LabSpec", "load_lab_spec", "parse_lab"]
