#!/usr/bin/env bash
# Builds the BigQuery emulator's own virtualenv (bqemulator pins an older sqlglot than
# idr uses, so it cannot share .venv). Idempotent and cached outside the work tree, so
# CI's fresh clones on the same machine reuse it. Prints the venv's python path.
set -euo pipefail
REQS="bqemulator==${BQEMU_VERSION:-1.4.0} numpy"  # numpy: the emulator's built-in UDFs need it
PY="${PY:-python3}"
CACHE="${IDR_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/idr}"
VENV="$CACHE/bqemulator-venv"
STAMP="$VENV/.installed"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$REQS" ]; then
  mkdir -p "$CACHE"
  rm -rf "$VENV"
  "$PY" -m venv "$VENV"
  # pip's chatter goes to a log; the script's only stdout is the interpreter path.
  "$VENV/bin/pip" install -q --upgrade pip >"$CACHE/bqemulator-pip.log" 2>&1
  # shellcheck disable=SC2086
  "$VENV/bin/pip" install -q $REQS >>"$CACHE/bqemulator-pip.log" 2>&1 || {
    tail -20 "$CACHE/bqemulator-pip.log" >&2
    exit 1
  }
  echo "$REQS" >"$STAMP"
fi
echo "$VENV/bin/python"
