# The two commands of the README: `make run` and `make test`.
# Both create .venv when it is missing and (re)install the project when pyproject.toml changed.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CORES ?= all
# The workflow's config: config.yaml (the demo), or a file of your own that replaces it (config/real.yaml).
CONFIG ?= config.yaml
REPORT ?= report.html
SNAKEMAKE_ARGS ?=

.PHONY: run report test lint format dryrun dag clean-results help

help:
	@echo "make run    - install into $(VENV) and run the whole workflow on config.yaml (demo data; CONFIG=file for another)"
	@echo "make report - write the HTML report of the last run to $(REPORT) (snakemake --report)"
	@echo "make test   - install with the test extra and run the test suite"
	@echo "make lint   - ruff (lint + format check) and snakefmt --check, as CI runs them"
	@echo "make format - rewrite the code in the linters' style (ruff format, ruff --fix, snakefmt)"
	@echo "make dryrun - show what would run (snakemake -n)"
	@echo "make dag    - write the rule graph to results/rulegraph.svg (needs graphviz)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@ $(VENV)/.installed-run

# Targets in SNAKEMAKE_ARGS come first: --configfile takes several values.
run: $(VENV)/.installed-run
	@# On failure, still write the comparison of the models that finished, then fail.
	$(BIN)/snakemake $(SNAKEMAKE_ARGS) --cores $(CORES) --configfile $(CONFIG) || { $(BIN)/dfdetect report --config $(CONFIG) || true; \
	  echo "make run failed: see the job log named above (results/logs/)." >&2; \
	  echo "After a killed run Snakemake's lock on this folder stays:" >&2; \
	  echo "  run '$(BIN)/snakemake --unlock' (and 'make run' again); README: When something goes wrong" >&2; exit 1; }
	@$(BIN)/dfdetect where --configfile $(CONFIG)

report: $(VENV)/.installed-run
	$(BIN)/snakemake $(SNAKEMAKE_ARGS) --report $(REPORT) --configfile $(CONFIG)
	@echo "wrote $(REPORT): open it in a browser (file://$(abspath $(REPORT)))"

test: $(VENV)/.installed-test
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Python with ruff (configured in pyproject.toml), the Snakefile and rules/*.smk with snakefmt.
LINT_PATHS := dfdetect tests benchmarks workflow_scripts
SNAKE_PATHS := Snakefile rules

lint: $(VENV)/.installed-test
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)
	$(BIN)/snakefmt --check $(SNAKE_PATHS)

format: $(VENV)/.installed-test
	$(BIN)/ruff check --fix $(LINT_PATHS)
	$(BIN)/ruff format $(LINT_PATHS)
	$(BIN)/snakefmt $(SNAKE_PATHS)

dryrun: $(VENV)/.installed-run
	$(BIN)/snakemake $(SNAKEMAKE_ARGS) -n --configfile $(CONFIG)

dag: $(VENV)/.installed-run
	mkdir -p results
	$(BIN)/snakemake --rulegraph --configfile $(CONFIG) | dot -Tsvg > results/rulegraph.svg
	@echo "wrote results/rulegraph.svg"

clean-results:
	rm -rf results .snakemake
