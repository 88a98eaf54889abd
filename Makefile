# The entry points README.md promises. Both do all set-up themselves (scripts/setup.sh is idempotent).
SHELL := /bin/bash
VENV ?= .venv
CORES ?= all
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: setup demo test lint report

setup:
	bash scripts/setup.sh

demo: setup
	snakemake results/table5.csv --cores $(CORES)

test: setup
	bash scripts/run_tests.sh

lint: setup
	snakemake --lint
	snakefmt --check Snakefile rules/

# The Snakemake report of whatever paper artefacts exist: `snakemake --report` needs every file it collects to be
# built, so it is given the built targets (a table or figure target's report holds what its own jobs made).
REPORT_TARGETS = $(wildcard results/table[3-7].csv results/figures/figure*.png results/figures/learning_curves_*.png)
report:
	@test -n "$(REPORT_TARGETS)" || { echo "nothing built yet: build a target first, e.g. make demo" >&2; exit 2; }
	snakemake --report report.html $(REPORT_TARGETS)
