# nav-crm-ops — every set-up step lives here, so a fresh machine needs only `make demo` or `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
DEMO_DIR ?= .nav_crm_ops/demo

.PHONY: help venv lint typecheck test test-all demo sandbox bench soak lab clean

help:
	@echo "make demo   - set up, start the CRONUS sandbox, run the main synchronization job"
	@echo "make test   - set up, lint, type-check and run the test suite"
	@echo "make sandbox - run the sandbox in the foreground (Ctrl+C to stop)"
	@echo "make bench  - benchmarks (writes benchmarks/results.md and .json)"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

lint: venv
	$(BIN)/ruff check nav_crm_ops tests $(wildcard benchmarks)

typecheck: venv
	$(BIN)/mypy

test: lint typecheck
	$(BIN)/python -m pytest -m "not slow" -q

test-all: lint typecheck
	$(BIN)/python -m pytest -q

demo: venv
	$(BIN)/nav-crm-ops demo --dir $(DEMO_DIR)

sandbox: venv
	$(BIN)/nav-crm-ops sandbox --port 8765 --seed cronus

bench: venv
	@test -f benchmarks/run.py || { echo "benchmarks are not built yet (see the open benchmarks issue)"; exit 2; }
	$(BIN)/python -m benchmarks.run

soak: venv
	$(BIN)/python -m pytest -m slow -q -p no:cacheprovider

clean:
	rm -rf $(VENV) .nav_crm_ops .pytest_cache .mypy_cache .ruff_cache
