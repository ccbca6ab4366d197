# The two commands of the README: `make demo` and `make test`. Each sets itself up.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip

CORE_PLUGINS    := $(sort $(dir $(wildcard sedna_plugins/*/pyproject.toml)))
CONTRIB_PLUGINS := $(sort $(dir $(wildcard plugins-contrib/*/pyproject.toml)))
EDITABLE        := -e . $(foreach p,$(CORE_PLUGINS) $(CONTRIB_PLUGINS),-e ./$(p))

export FLWR_TELEMETRY_ENABLED = 0
export FLWR_DISABLE_UPDATE_CHECK = 1
export HF_HUB_OFFLINE = 1
export TF_CPP_MIN_LOG_LEVEL = 2
# Two cores: one BLAS thread per process avoids oversubscription (many tests run servers).
export OMP_NUM_THREADS = 1
export OPENBLAS_NUM_THREADS = 1
export MKL_NUM_THREADS = 1

.PHONY: demo test bench lint wheels clean venv sedna-venv apidocs

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

venv: $(BIN)/python

demo: venv
	$(PIP) install --quiet -r requirements/frameworks.txt -e . $(foreach p,$(CORE_PLUGINS),-e ./$(p))
	$(BIN)/python -m examples.demo

test: venv
	$(PIP) install --quiet -r requirements/test.txt $(EDITABLE)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The API reference, generated from the docstrings (Sphinx autodoc; docs/api/conf.py says why):
# -n -W fails on any broken reference. tests/core/test_core_apidocs.py runs the same build.
apidocs: venv
	$(PIP) install --quiet -r requirements/test.txt $(EDITABLE)
	$(BIN)/python -m sphinx -E -b html -n -W --keep-going -q docs/api build/apidocs
	@echo "open build/apidocs/index.html"

bench: venv
	$(PIP) install --quiet -r requirements/bench.txt $(EDITABLE)
	@for b in benchmarks/*.py; do m=$$(basename $$b .py); echo "== $$m"; $(BIN)/python -m benchmarks.$$m || exit 1; done

lint: venv
	$(BIN)/ruff check sedna_core sedna_plugins plugins-contrib tests benchmarks examples

wheels: venv
	$(PIP) install --quiet build
	@for d in . $(CORE_PLUGINS) $(CONTRIB_PLUGINS); do $(BIN)/python -m build --wheel --outdir dist $$d || exit 1; done

# KubeEdge Sedna's real SDK in its own venv (it pins pydantic 1), for compatibility tests and
# benchmarks against the real thing. SEDNA_LIB defaults to ../shared/peers/sedna-lib.
SEDNA_PEERS ?= ../shared/peers
sedna-venv:
	test -x .venv-sedna/bin/python || $(PYTHON) -m venv .venv-sedna
	.venv-sedna/bin/python -m pip install --quiet -r $(SEDNA_PEERS)/sedna-lib-requirements.txt

clean:
	rm -rf dist build *.egg-info .pytest_cache
