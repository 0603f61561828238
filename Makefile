# Two commands do everything on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export DAGSTER_HOME := $(CURDIR)/.dagster_home
# One materialization-planned event per asset and run, not per day (see etl_assets/operations/runner.py).
export DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS := 1

.PHONY: setup lock lint run land test test-fast test-unit dev demo soak bench audit clean

setup: $(STAMP)

# Every package at the version requirements.lock pins, then the project itself (editable);
# again only when the lock or the project's metadata changes.
$(STAMP): requirements.lock setup.py pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 10), "Python 3.10+ is required"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip "setuptools>=78.1.1"
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

# Pin every dependency again from setup.py's requirements (after changing them), then commit
# requirements.lock; `make setup` installs from it. pip-tools has a virtual environment of its
# own, so its dependencies never change the project's.
TOOLS := .venv-tools/bin
lock:
	test -x $(TOOLS)/pip-compile || ($(PYTHON) -m venv .venv-tools && \
		$(TOOLS)/python -m pip install --quiet "pip-tools==7.7.0")
	$(TOOLS)/pip-compile --quiet --upgrade --extra dev --strip-extras --no-emit-find-links \
		--no-emit-index-url --output-file requirements.lock setup.py

land: setup
	$(BIN)/etl-assets land

run: land
	$(BIN)/etl-assets run

# Every test: the in-process suite on both cores, then the end-to-end tests (marked e2e: they
# start dagster dev, the CLI, PostgreSQL or a browser) one at a time, since they time the daemon.
test: setup
	$(BIN)/python -m pytest -m "not e2e" -n 2 --dist loadfile
	$(BIN)/python -m pytest -m e2e

# The loop while you change code: every layer on real data, in process, without the e2e tests.
test-fast: setup
	$(BIN)/python -m pytest -m "not e2e" -n 2 --dist loadfile

# Style, format and types: ruff's rules and formatter (pyproject.toml), mypy (strict on the pure
# pipeline/). CI runs it before the tests; `ruff format etl_assets etl_assets_tests benchmarks`
# and `ruff check --fix ...` (in .venv/bin) repair most of what it finds.
LINTED := etl_assets etl_assets_tests benchmarks setup.py
lint: setup
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)
	$(BIN)/mypy

# The pure layers alone (pipeline/: the contract, the SQL, landing, extract, quality), with no
# Dagster loaded: the loop in seconds while changing them.
test-unit: setup
	$(BIN)/python -m pytest etl_assets_tests/pipeline_tests -m "not e2e" -n 2

# The platform against the plain script it replaces, on the same landed files (BENCH_REPEATS=3).
bench: setup
	$(BIN)/python -m benchmarks.run

dev: setup
	$(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

# The bundled year as a live feed under dagster dev, into an empty warehouse in data/demo; stops
# by itself once the pipeline has caught up with the last day (DEMO_EVERY seconds between days).
DEMO_EVERY ?= 3
demo: setup
	$(BIN)/etl-assets demo --every $(DEMO_EVERY)

# The bundled year through the sensor path under dagster dev with faults injected (bad files, a
# killed run, a webhook outage), into data/soak; stops by itself and prints what it counted.
SOAK_EVERY ?= 1
SOAK_START ?= 2013-01-01
SOAK_END ?= 2013-12-31
soak: setup
	$(BIN)/etl-assets soak --start $(SOAK_START) --end $(SOAK_END) --every $(SOAK_EVERY)

# Known vulnerabilities in the installed packages; --strict fails when a package could not be
# checked (as on the build machines, where PyPI's per-release JSON is not reachable: see
# docs/dependency-review.md).
# pip-audit lives in a virtual environment of its own, so its dependencies never change the
# project's; it audits the project's site-packages.
AUDIT := .venv-audit/bin
audit: setup
	test -x $(AUDIT)/pip-audit || ($(PYTHON) -m venv .venv-audit && \
		$(AUDIT)/python -m pip install --quiet "pip-audit==2.10.1")
	$(AUDIT)/pip-audit --strict --skip-editable --progress-spinner off \
		--path "$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"

clean:
	rm -rf data .dagster_home/storage .dagster_home/history .dagster_home/schedules .dagster_home/logs
