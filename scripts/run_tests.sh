#!/usr/bin/env bash
# Runs the test suite inside .venv. In CI (CI=true) a test that needs ../shared/data must not skip:
# HATL_REQUIRE_REAL_DATA=1 turns such a skip into a failure (see tests/conftest.py).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
if [ "${CI:-}" = "true" ]; then export HATL_REQUIRE_REAL_DATA=1; fi
# Two workers, each taking whole test files (module fixtures are built once per file), in the order that
# tests/conftest.py gives: the suite took 1,361 s in one process on 2 cores, mostly one core busy at a time.
# HATL_TEST_WORKERS=0 runs it in one process (e.g. to debug one test).
exec python -m pytest -q -n "${HATL_TEST_WORKERS:-2}" --dist loadfile --no-loadscope-reorder "$@"
