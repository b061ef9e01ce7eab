#!/usr/bin/env bash
# Builds the BigQuery emulator's own virtualenv (bqemulator pins an older sqlglot than
# idr uses, so it cannot share .venv). Idempotent and cached outside the work tree, so
# CI's fresh clones on the same machine reuse it. Prints the venv's python path.
set -euo pipefail
BQEMU_VERSION="${BQEMU_VERSION:-1.4.0}"
PY="${PY:-python3}"
CACHE="${IDR_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/idr}"
VENV="$CACHE/bqemulator-$BQEMU_VERSION"
STAMP="$VENV/.installed"
if [ ! -f "$STAMP" ]; then
  mkdir -p "$CACHE"
  rm -rf "$VENV"
  "$PY" -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip >&2
  "$VENV/bin/pip" install -q "bqemulator==$BQEMU_VERSION" >&2
  touch "$STAMP"
fi
echo "$VENV/bin/python"
