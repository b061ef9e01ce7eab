"""`idr load TABLE FILE`: files into DuckDB source tables, by column name, waiting for a held file."""

from __future__ import annotations

import subprocess
import sys

from app.platforms.duckdb import DuckDBAdapter


def _count(path, table):
    with DuckDBAdapter.from_path(str(path)) as a:
        return a.scalar(f"SELECT count(*) FROM {table}")


def test_load_appends_creates_and_replaces(cli, demo_db, tmp_path):
    path, _ = demo_db
    before = _count(path, "crm.customers")
    f = tmp_path / "new.csv"
    f.write_text("email,customer_id,first_name\nnew.one@ex.io,900001,New\nNEW.ONE@ex.io ,900002,Newer\n")
    r = cli("load", "crm.customers", str(f), "--db", str(path))
    assert r.exit_code == 0, r.output
    assert "appended 2 row(s)" in r.stdout and _count(path, "crm.customers") == before + 2
    with DuckDBAdapter.from_path(str(path)) as a:  # matched by name, not position
        assert a.scalar("SELECT email FROM crm.customers WHERE customer_id = 900001") == "new.one@ex.io"
    r = cli("load", "staging.fresh", str(f), "--db", str(path))
    assert r.exit_code == 0 and "created with 2 row(s)" in r.stdout
    r = cli("load", "staging.fresh", str(f), "--db", str(path), "--replace")
    assert r.exit_code == 0 and _count(path, "staging.fresh") == 2
    pq = tmp_path / "x.parquet"
    with DuckDBAdapter.from_path(str(path)) as a:
        a.execute(f"COPY (SELECT * FROM staging.fresh) TO '{pq}' (FORMAT parquet)")
    assert cli("load", "staging.fresh", str(pq), "--db", str(path)).exit_code == 0
    assert _count(path, "staging.fresh") == 4


def test_load_refuses_bad_input_in_one_line(cli, demo_db, tmp_path):
    path, _ = demo_db
    f = tmp_path / "new.csv"
    f.write_text("a\n1\n")
    for args, words in (
        (("crm.x; DROP TABLE crm.customers", str(f)), "plain table name"),
        (("crm.customers", str(tmp_path / "missing.csv")), "does not exist"),
        (("crm.customers", str(tmp_path / "x.xlsx")), "unknown file type"),
    ):
        r = cli("load", *args, "--db", str(path))
        assert r.exit_code == 2 and words in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.output
    r = cli("load", "crm.customers", str(f), "--db", str(path))  # no such column: nothing written
    assert r.exit_code != 0 and "Traceback" not in r.output
    assert _count(path, "crm.customers") > 0


def test_load_waits_for_a_held_file(cli, demo_db, tmp_path):
    path, _ = demo_db
    f = tmp_path / "new.csv"
    f.write_text("customer_id,email\n900003,late@ex.io\n")
    code = f"import duckdb, time; c = duckdb.connect({str(path)!r}); print('held', flush=True); time.sleep(1.5)"
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    try:
        r = cli("load", "crm.customers", str(f), "--db", str(path), env={"IDR_CLI_WAREHOUSE_WAIT_SECONDS": "30"})
    finally:
        holder.wait()
    assert r.exit_code == 0 and "waiting for" in r.stderr and "appended 1 row(s)" in r.stdout
