# drlab — every target installs what it needs (a fresh machine has only Python 3.11 and PyPI).
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The compiled SIP quick path: built when a C compiler is there, skipped (pure Python) if not.
SPEEDUPS := $(VENV)/.speedups

.PHONY: venv test test-fast demo bench fuzz lint clean docker-image lab lab-down test-docker

venv: $(STAMP) $(SPEEDUPS)

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) on PATH"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	@touch $(STAMP)

$(SPEEDUPS): simulator/sip/_speedups.pyx build-tools/speedups.py $(STAMP)
	$(BIN)/python build-tools/speedups.py
	@touch $(SPEEDUPS)

test: venv
	$(BIN)/pytest

# Everything not marked slow (see tests/conftest.py): the quick loop while editing.
test-fast: venv
	$(BIN)/pytest -m "not slow"

demo: venv
	$(BIN)/drlab run scenarios/branch-outage.yaml

bench: venv
	$(BIN)/python -m bench

# Each fuzz target for FUZZ_SECONDS (default 600); crashing inputs land in tests/fuzz/regressions/.
FUZZ_SECONDS ?= 600
fuzz: venv
	$(BIN)/pip install --quiet -e '.[fuzz]'
	FUZZ_SECONDS=$(FUZZ_SECONDS) $(BIN)/python -m fuzz

# The Docker lab (docker/README.md): one container per node, cuts in a router container.
# LAB= and TENANT= choose the lab; the images are built here, with no registry.
# TIME_SCALE=K runs every role timer K times faster (drlab run --attach reads it from the lab);
# CAPTURE=1 captures on every bridge of the lab, with every node's TLS key log, for Wireshark.
LAB        ?= examples/labs/contoso.yaml
TENANT     ?= examples/contoso.yaml
TIME_SCALE ?= 1
CAPTURE    ?=

docker-image: venv
	$(BIN)/python docker/build.py image

lab: docker-image
	$(BIN)/python -m simulator.dockerlab up $(LAB) --tenant $(TENANT) --time-scale $(TIME_SCALE) $(if $(CAPTURE),--capture)

lab-down: venv
	$(BIN)/python -m simulator.dockerlab down $(LAB)

# Real containers and networks (labelled, removed afterwards), the Contoso lab end to end with an
# attached scenario included; `make test` skips these.
test-docker: docker-image
	DRLAB_DOCKER_TESTS=1 $(BIN)/pytest tests/docker

lint: venv
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) runs .pytest_cache .hypothesis build simulator/sip/_speedups.c simulator/sip/_speedups.*.so
