"""Starts bqemulator without network: it insists on INSTALL/LOAD of DuckDB's spatial (and
avro) extensions at start-up, which fetch from the internet. idr uses no GEOGRAPHY or
Avro, so both loads become no-ops. Run with the emulator's own venv python
(scripts/bq-emulator-venv.sh); arguments are bqemulator's CLI arguments."""

from bqemulator.cli import main
from bqemulator.storage import engine

engine.DuckDBEngine._load_spatial = lambda self: None  # type: ignore[method-assign]
engine.DuckDBEngine._load_format_extensions = lambda self: None  # type: ignore[method-assign]

if __name__ == "__main__":
    main()
