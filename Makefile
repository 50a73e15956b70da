# Vigil: the two commands of the quick start, and the benchmarks.
#   make demo   set up .venv and run the posture tracker on bundled sample photos
#               (make demo SERVE=1 then keeps the dashboard up: vigil serve on 127.0.0.1:8600)
#   make test   set up .venv, check style and types, and run the whole test suite
#   make bench  set up .venv and run the benchmarks in bench/
# The environment lives in .venv and is reinstalled only when pyproject.toml changes.

SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip --quiet --disable-pip-version-check
# The index on some build machines carries stale mirror entries; their warnings are noise.
PIPENV := PIP_NO_WARN_SCRIPT_LOCATION=1
QUIET  := { grep -v '^WARNING: Location' || true; }
DEMO_ARGS ?=
SERVE ?=
SERVE_ARGS ?=
SERVING := $(filter 1 yes true,$(SERVE))

.PHONY: demo test bench clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(not (3, 11) <= sys.version_info[:2] < (3, 13))' || { \
	  echo "Vigil needs Python 3.11 or 3.12 (its default pose model, MediaPipe 0.10.14, has no" \
	       "wheel for newer ones); run: make $(MAKECMDGOALS) PYTHON=python3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip 2>&1 | $(QUIET)

$(VENV)/.demo-installed: pyproject.toml | $(BIN)/python
	$(PIPENV) $(PIP) install -e '.[demo]' 2>&1 | $(QUIET)
	touch $@

$(VENV)/.serve-installed: pyproject.toml | $(BIN)/python
	$(PIPENV) $(PIP) install -e '.[demo,hub]' 2>&1 | $(QUIET)
	touch $@ $(VENV)/.demo-installed

$(VENV)/.test-installed: pyproject.toml | $(BIN)/python
	$(PIPENV) $(PIP) install -e '.[all,dev]' 2>&1 | $(QUIET)
	touch $@ $(VENV)/.demo-installed $(VENV)/.serve-installed

# SERVE=1: after the demo, serve the dashboard over the same records database until Ctrl-C.
demo: $(if $(SERVING),$(VENV)/.serve-installed,$(VENV)/.demo-installed)
	$(BIN)/vigil demo $(DEMO_ARGS)
	$(if $(SERVING),$(BIN)/vigil serve $(SERVE_ARGS))

test: $(VENV)/.test-installed
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check --quiet src tests bench
	$(BIN)/mypy
	$(BIN)/python -m pytest

bench: $(VENV)/.test-installed
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) build dist .pytest_cache .mypy_cache .ruff_cache
