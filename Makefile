# The two entry points README.md promises. Both do all set-up themselves (scripts/setup.sh is idempotent).
SHELL := /bin/bash
VENV ?= .venv
CORES ?= all
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: setup demo test lint

setup:
	bash scripts/setup.sh

demo: setup
	snakemake results/table5.csv --cores $(CORES)

test: setup
	bash scripts/run_tests.sh

lint: setup
	snakemake --lint
	snakefmt --check Snakefile rules/
