#!/usr/bin/env bash
# One-shot, idempotent set-up of the project's environment in .venv:
#   1. the pinned CPU torch first (an unpinned torch would pull several GB of CUDA wheels),
#   2. everything else in ONE resolver call from envs/requirements.txt (mediapipe 0.10.21 pins numpy<2,
#      and installing it after snakemake would break snakemake's plugins),
#   3. KenLM's lmplz/build_binary built from the kenlm PyPI sdist when they are missing.
# Re-running it is cheap: each step is skipped when its stamp is newer than its inputs.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV=${HATL_VENV:-$ROOT/.venv}
PY=${PYTHON:-python3}
STAMP_DIR=$VENV/.hatl-stamps

log() { printf '[setup] %s\n' "$*" >&2; }

if [ ! -x "$VENV/bin/python" ]; then
  log "creating virtual environment $VENV"
  "$PY" -m venv "$VENV"
fi
mkdir -p "$STAMP_DIR"
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)

if [ ! -f "$STAMP_DIR/torch" ]; then
  log "installing torch==2.13.0 (CPU build) first"
  "${PIP[@]}" install -q "torch==2.13.0"
  touch "$STAMP_DIR/torch"
fi

if [ ! -f "$STAMP_DIR/requirements" ] || [ envs/requirements.txt -nt "$STAMP_DIR/requirements" ] || [ pyproject.toml -nt "$STAMP_DIR/requirements" ]; then
  log "installing pinned requirements and the hatl package in one resolver call"
  "${PIP[@]}" install -q -r envs/requirements.txt -e ".[dev]"
  "${PIP[@]}" check
  touch "$STAMP_DIR/requirements"
fi

if [ ! -x "$VENV/bin/lmplz" ] || [ ! -x "$VENV/bin/build_binary" ]; then
  if command -v lmplz >/dev/null && command -v build_binary >/dev/null; then
    log "using lmplz/build_binary found on PATH"
    ln -sf "$(command -v lmplz)" "$VENV/bin/lmplz"
    ln -sf "$(command -v build_binary)" "$VENV/bin/build_binary"
  else
    bash scripts/build_kenlm.sh "$VENV/bin"
  fi
fi
log "environment ready: $VENV"
