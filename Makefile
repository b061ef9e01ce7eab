# Two entry points do all set-up on a fresh machine: `make run` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev,platforms]'
	touch $(STAMP)

# The HTTP service on 127.0.0.1:8000, embedded: DuckDB + SQLite state + in-process worker, demo data.
run: $(STAMP)
	IDR_DUCKDB_PATH=$${IDR_DUCKDB_PATH:-demo.duckdb} IDR_STATE_DB_URL=$${IDR_STATE_DB_URL:-sqlite:///demo_state.db} \
		$(BIN)/idr serve --demo

lint: $(STAMP)
	$(BIN)/ruff check .

test: $(STAMP)
	bash scripts/system-deps.sh
	bash scripts/bq-emulator-venv.sh >/dev/null  # cached outside the clone
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q --durations=15

bench: $(STAMP)
	$(BIN)/python bench/run.py --records 100000

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
