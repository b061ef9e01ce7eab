#!/usr/bin/env bash
# System packages the test-suite needs (installed once; a no-op when present).
set -euo pipefail
need=()
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v java >/dev/null 2>&1 || need+=(default-jre-headless)  # local PySpark (Databricks tests)
# The web console's browser tests drive Debian's Chromium (Playwright's own download is not used);
# fonts-dejavu-core gives its screenshots readable text.
[ -x /usr/bin/chromium ] || need+=(chromium)
[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need+=(fonts-dejavu-core)
if ((${#need[@]})); then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  else
    echo "missing system packages: ${need[*]} (install them with apt-get)" >&2
    exit 1
  fi
fi
