# Two entry points do all set-up on a fresh machine: `make run` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The service alone (make run), then everything the tests need on top (make test).
SERVICE_STAMP := $(VENV)/.installed-service
STAMP := $(VENV)/.installed

.PHONY: run test lint bench screenshots clean

$(SERVICE_STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e .
	touch $(SERVICE_STAMP)

$(STAMP): $(SERVICE_STAMP)
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

# The HTTP service on 127.0.0.1:8000, embedded: DuckDB + SQLite state + in-process worker, demo data.
# Same defaults as every `idr` command (IDR_DUCKDB_PATH, IDR_STATE_DB_URL, .env), so the CLI
# works on the same files while it serves.
run: $(SERVICE_STAMP)
	$(BIN)/idr serve --demo

lint: $(STAMP)
	$(BIN)/ruff check .

test: $(STAMP)
	bash scripts/system-deps.sh
	bash scripts/bq-emulator-venv.sh >/dev/null  # cached outside the clone
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q --durations=15

# The web console's pictures in docs/console/ (README), taken by its browser tests.
screenshots: $(STAMP)
	bash scripts/system-deps.sh
	IDR_CONSOLE_SCREENSHOTS=docs/console $(BIN)/python -m pytest -q tests/ui/test_console.py

bench: $(STAMP)
	$(BIN)/python bench/run.py --records 100000

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
