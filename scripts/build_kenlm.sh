#!/usr/bin/env bash
# Builds KenLM's lmplz and build_binary from the kenlm sdist on PyPI (there is no Debian package)
# and installs them into the directory given as $1.
set -euo pipefail
DEST=${1:?usage: build_kenlm.sh DEST_BIN_DIR}
KENLM_VERSION=0.3.0
log() { printf '[kenlm] %s\n' "$*" >&2; }

need_pkgs=(cmake g++ libboost-program-options-dev libboost-system-dev libboost-thread-dev libboost-test-dev zlib1g-dev libbz2-dev liblzma-dev)
missing=()
for p in "${need_pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    log "missing build packages: ${missing[*]}; install them (apt-get install ${missing[*]}) or put lmplz on PATH"
    exit 1
  fi
  log "installing build packages: ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
log "downloading kenlm==$KENLM_VERSION sdist"
python3 -m pip download -q --no-deps --no-binary kenlm "kenlm==$KENLM_VERSION" -d "$work"
tar -xzf "$work"/kenlm-*.tar.gz -C "$work"
src=$(find "$work" -maxdepth 1 -type d -name 'kenlm-*' | head -n1)
mkdir -p "$src/build"
log "building lmplz and build_binary"
(cd "$src/build" && cmake .. -DCMAKE_BUILD_TYPE=Release >/dev/null && make -j"$(nproc)" lmplz build_binary >/dev/null)
mkdir -p "$DEST"
install -m 755 "$src/build/bin/lmplz" "$src/build/bin/build_binary" "$DEST/"
log "installed lmplz and build_binary into $DEST"
