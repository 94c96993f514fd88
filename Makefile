# tfxp: `make run` trains, evaluates and pushes the taxi model; `make test` runs the test suite.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
UV := $(shell command -v uv 2>/dev/null || echo $(PYTHON) -m uv)
CONFIG ?= configs/taxi.yaml
STAMP := $(VENV)/.tfxp-installed

.PHONY: setup run test test-deps bench lock clean

setup: $(STAMP)

# Idempotent: re-installs only when the lock or setup.py changes.
$(STAMP): requirements.lock setup.py
	@command -v uv >/dev/null 2>&1 || $(PYTHON) -m uv --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet uv
	@test -x $(PY) || $(UV) venv --seed --python 3.11 $(VENV)
	$(UV) pip install --python $(PY) --quiet -r requirements.lock
	$(UV) pip install --python $(PY) --quiet --no-deps -e .
	@# uv writes no bytecode; without it every fresh process compiles TF/TFX/Beam from source (~17 s).
	$(PY) -m compileall -q -j 0 $(VENV)/lib/python3.11/site-packages >/dev/null
	@touch $(STAMP)

run: setup
	$(VENV)/bin/tfxp run --config $(CONFIG) --summary-json runs/taxi/summary.json

# The report tests open pages in a real browser: Debian's chromium, installed here when missing.
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
test-deps:
	@command -v chromium >/dev/null 2>&1 || { echo "installing Debian's chromium for the report tests"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq \
	  --no-install-recommends chromium >/dev/null; }

test: setup test-deps
	$(PY) -m pytest -q tests

bench: setup
	$(PY) -m bench.pipeline --out bench/results/pipeline.json

# Re-resolve the lock (Python 3.11) from requirements.in.
lock:
	$(UV) pip compile requirements.in --python-version 3.11 -o requirements.lock

clean:
	rm -rf runs bench/results
