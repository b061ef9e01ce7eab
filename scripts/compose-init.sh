#!/usr/bin/env bash
# First run of the docker compose stack; safe to run again (it creates only what is missing):
#   1. builds the image, starts PostgreSQL and Redis, migrates the state database;
#   2. creates an admin API key and prints it, once (none when an admin key exists);
#   3. writes a read-scope key for Prometheus to deploy/prometheus/token (mode 600);
#   4. creates the warehouse in the `warehouse` volume (/data/idr.duckdb): the idr schema,
#      or with --demo the demo dataset and its configuration.
# Then: docker compose up -d
set -euo pipefail
cd "$(dirname "$0")/.."
COMPOSE=${COMPOSE:-docker compose}
run() { $COMPOSE run --rm -T api "$@"; }

$COMPOSE build
$COMPOSE up -d --wait redis postgres
run idr db upgrade

if run idr api-keys list --format csv | grep -Eq '^[^,]*,[^,]*,admin,'; then
  echo "an admin API key exists already (idr api-keys list); none created"
else
  run idr api-keys create admin --scopes admin
fi

token=deploy/prometheus/token
if [ -s "$token" ]; then
  echo "$token exists; kept"
else
  (umask 077 && run idr api-keys create prometheus --scopes read --key-only > "$token.tmp")
  mv "$token.tmp" "$token"
  echo "Prometheus read key written to $token"
fi

if [ "${1:-}" = "--demo" ]; then
  run sh -c '[ -e "$IDR_DUCKDB_PATH" ] && echo "$IDR_DUCKDB_PATH exists; kept" || idr demo'
else
  run idr init
fi
echo "next: docker compose up -d   (README: configure and load data with docker compose run --rm api idr ...)"
