# Two commands do everything on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export DAGSTER_HOME := $(CURDIR)/.dagster_home
# One materialization-planned event per asset and run, not per day (see etl_assets/runner.py).
export DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS := 1

.PHONY: setup run land test dev demo bench clean

setup: $(STAMP)

# Reinstall only when the declared dependencies change.
$(STAMP): setup.py pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 10), "Python 3.10+ is required"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

land: setup
	$(BIN)/etl-assets land

run: land
	$(BIN)/etl-assets run

test: setup
	$(BIN)/python -m pytest

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

clean:
	rm -rf data .dagster_home/storage .dagster_home/history .dagster_home/schedules .dagster_home/logs
