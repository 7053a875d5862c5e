# nav-crm-ops — every set-up step lives here, so a fresh machine needs only `make demo` or `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
DEMO_DIR ?= .nav_crm_ops/demo

.PHONY: help venv browser postgres lint typecheck test test-all demo sandbox bench soak lab dashboards screenshots clean

help:
	@echo "make demo   - set up, start the CRONUS sandbox, run the main synchronization job"
	@echo "make test   - set up, lint, type-check and run the test suite"
	@echo "make sandbox - run the sandbox in the foreground (Ctrl+C to stop)"
	@echo "make bench  - benchmarks (writes benchmarks/results.md and .json)"
	@echo "make lab    - JupyterLab on notebooks/ (the notebooks start the sandbox themselves)"
	@echo "make dashboards - the notebooks as Voila dashboards"
	@echo "make screenshots - regenerate docs/screenshots/ (dashboards in headless chromium)"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

# The browser test drives the dashboards in Debian's chromium (Playwright uses it as is).
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium for the browser test"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO="sudo -n"; fi; \
	  $$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y -qq chromium >/dev/null || { \
	    echo "could not install chromium with apt-get (root or passwordless sudo needed)"; exit 2; }; }

# The store, engine and jobs tests also run against a private PostgreSQL server (Debian's
# postgresql: initdb/pg_ctl; tests/pg.py starts it on a free port with its socket in a temp dir).
postgres:
	@command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { \
	  echo "installing Debian's postgresql for the PostgreSQL state-database tests"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO="sudo -n"; fi; \
	  $$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y -qq postgresql >/dev/null || { \
	    echo "could not install postgresql with apt-get (root or passwordless sudo needed)"; exit 2; }; }

lint: venv
	$(BIN)/ruff check nav_crm_ops tests $(wildcard benchmarks)

typecheck: venv
	$(BIN)/mypy

test: lint typecheck browser postgres
	NAV_CRM_OPS_REQUIRE_BROWSER=1 NAV_CRM_OPS_REQUIRE_POSTGRES=1 $(BIN)/python -m pytest -m "not slow" -q

test-all: lint typecheck browser postgres
	NAV_CRM_OPS_REQUIRE_BROWSER=1 NAV_CRM_OPS_REQUIRE_POSTGRES=1 $(BIN)/python -m pytest -q

demo: venv
	$(BIN)/nav-crm-ops demo --dir $(DEMO_DIR)

sandbox: venv
	$(BIN)/nav-crm-ops sandbox --port 8765 --seed cronus

# datacompy (a baseline only) pins old polars/pandas: installed without its dependencies.
bench: venv
	$(BIN)/python -m pip install --quiet --no-deps 'datacompy>=1.1' ordered-set
	$(BIN)/python -m benchmarks.run

lab: venv
	$(BIN)/jupyter lab notebooks/

dashboards: venv
	$(BIN)/nav-crm-ops ui

# docs/screenshots/*.png (linked from the README): pytest starts the sandbox and the dashboards
# (as `nav-crm-ops ui` serves them) and each test drives its screens in Debian's chromium,
# saving PNGs to $$NAV_CRM_OPS_SCREENSHOTS. One test per screen set; add yours to the list
# (the job report's screenshot is docs/screenshots/job-report.png).
SCREENSHOT_TESTS := tests/notebooks/test_browser_app.py::test_screens \
  tests/notebooks/test_browser_approvals.py tests/notebooks/test_browser_revert.py \
  tests/jobs/test_run_reports.py::test_a_report_renders_in_a_browser_with_its_headline_and_chart
screenshots: venv browser
	NAV_CRM_OPS_REQUIRE_BROWSER=1 NAV_CRM_OPS_SCREENSHOTS=$(CURDIR)/docs/screenshots \
	  $(BIN)/python -m pytest -q -p no:cacheprovider $(SCREENSHOT_TESTS)

soak: venv
	$(BIN)/python -m pytest -m slow -q -s -p no:cacheprovider

clean:
	rm -rf $(VENV) .nav_crm_ops .pytest_cache .mypy_cache .ruff_cache
