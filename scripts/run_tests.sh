#!/usr/bin/env bash
# Runs the test suite inside .venv. In CI (CI=true) a test that needs ../shared/data must not skip:
# HATL_REQUIRE_REAL_DATA=1 turns such a skip into a failure (see tests/conftest.py).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
if [ "${CI:-}" = "true" ]; then export HATL_REQUIRE_REAL_DATA=1; fi
exec python -m pytest -q "$@"
