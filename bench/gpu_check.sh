#!/usr/bin/env bash
# The one prepared GPU check (issue 16): set up a CUDA environment, run the gpu tests, time the paper-size runs.
#
#   bash bench/gpu_check.sh [--skip-setup] [options of bench/gpu_check.py, e.g. --mode quick --table5-budget-s 300]
#
# About 8 minutes on one H200 (setup 2-3 min, pytest -m gpu about 1-2, ST-GCN++ timing under a minute, the
# PHOENIX14T and MedASL epochs when their data is present, then the demo table 5 for at most 150 s).
# 1. Setup (skipped with --skip-setup or HATL_GPU_CHECK_SETUP=0): a virtual environment at $HATL_GPU_VENV
#    (default .venv-gpu, so a CPU .venv is never touched) gets the CUDA build of torch 2.13.0 from PyPI first
#    ($HATL_TORCH_SPEC, default "torch===2.13.0": '===' matches the plain version only, never a local "+cpu"
#    wheel that a find-links folder may offer; $HATL_TORCH_INDEX_URL picks another index), then the project's
#    own scripts/setup.sh installs everything else into it (its torch step is marked done). A failed KenLM
#    build does not stop the check: only the demo table 5 needs lmplz, and it says so.
# 2. bench/gpu_check.py runs the parts and writes every figure to $OUT/gpu_check.json (default ./gpu_check_out).
# Without CUDA it says so loudly, runs the parts that need none at small sizes, and exits 0.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=${OUT:-$ROOT/gpu_check_out}
VENV=${HATL_GPU_VENV:-$ROOT/.venv-gpu}
TORCH_SPEC=${HATL_TORCH_SPEC:-torch===2.13.0}
SETUP=${HATL_GPU_CHECK_SETUP:-1}
ARGS=()
for arg in "$@"; do
  if [ "$arg" = "--skip-setup" ]; then SETUP=0; else ARGS+=("$arg"); fi
done
mkdir -p "$OUT"
log() { printf '[gpu_check %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  nvidia-smi -L >&2
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv >"$OUT/nvidia_smi.csv" 2>/dev/null || true
else
  log "no NVIDIA GPU visible (nvidia-smi absent or failing): CUDA is absent, the check runs its CPU fallback"
fi

SETUP_STATUS=skipped
if [ "$SETUP" = "1" ]; then
  start=$(date +%s)
  if [ ! -x "$VENV/bin/python" ]; then
    log "creating $VENV"
    "${PYTHON:-python3}" -m venv "$VENV" || { log "cannot create $VENV"; exit 1; }
  fi
  mkdir -p "$VENV/.hatl-stamps"
  PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)
  if [ ! -f "$VENV/.hatl-stamps/torch" ]; then
    log "installing $TORCH_SPEC (the CUDA build on Linux x86-64 PyPI)"
    if "${PIP[@]}" install -q ${HATL_TORCH_INDEX_URL:+--index-url "$HATL_TORCH_INDEX_URL"} "$TORCH_SPEC"; then
      touch "$VENV/.hatl-stamps/torch"  # scripts/setup.sh then keeps this torch instead of installing its CPU pin
    else
      log "torch install failed"; exit 1
    fi
  fi
  "$VENV/bin/python" -c 'import torch; print("[gpu_check] torch", torch.__version__, "CUDA", torch.version.cuda, "available", torch.cuda.is_available())' >&2
  # setup.sh may apt-get the KenLM build packages: on a machine that reaches PyPI only, fail fast instead of
  # waiting on every mirror (and never let the set-up eat the whole check's time).
  if [ -z "${APT_CONFIG:-}" ]; then
    export APT_CONFIG="$VENV/apt-fast-fail.conf"
    printf 'Acquire::Retries "0";\nAcquire::http::Timeout "10";\nAcquire::https::Timeout "10";\n' >"$APT_CONFIG"
  fi
  if HATL_VENV="$VENV" timeout "${HATL_SETUP_TIMEOUT_S:-420}" bash scripts/setup.sh; then
    SETUP_STATUS=ok
  elif "$VENV/bin/python" -c 'import hatl, snakemake, torch' 2>/dev/null; then
    SETUP_STATUS="partial: scripts/setup.sh failed after the Python packages (KenLM build?); the table 5 part needs lmplz"
    log "$SETUP_STATUS"
  else
    log "scripts/setup.sh failed before the Python packages were installed"; exit 1
  fi
  log "setup: $SETUP_STATUS ($(( $(date +%s) - start )) s)"
  echo "{\"setup\": \"$SETUP_STATUS\", \"setup_s\": $(( $(date +%s) - start )), \"venv\": \"$VENV\"}" >"$OUT/setup.json"
fi

if [ -x "$VENV/bin/python" ]; then
  PY="$VENV/bin/python"
  export PATH="$VENV/bin:$PATH"
else
  PY=$(command -v python3)
  log "no $VENV: using $PY as it is (--skip-setup)"
fi
"$PY" bench/gpu_check.py --out "$OUT/gpu_check.json" "${ARGS[@]}"
rc=$?
if ! "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
  log "CUDA is absent: CPU fallback only (exit $rc); no GPU figures were measured"
fi
exit $rc
