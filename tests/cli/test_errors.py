"""Expected failures print one or two lines and exit 1 (failure) or 2 (bad input); the
traceback only with --debug or IDR_DEBUG=1; nothing is created or wiped by a refused command."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import yaml

from app.platforms.duckdb import DuckDBAdapter


def _lines(text: str) -> list[str]:
    return [x for x in text.splitlines() if x.strip()]


def test_unknown_scopes_name_the_allowed_ones(cli):
    for scopes in ("read,superuser", "superuser", ""):
        r = cli("api-keys", "create", "bad", "--scopes", scopes)
        assert r.exit_code == 2, r.output
        assert "Traceback" not in r.output and "TypeError" not in r.output
        (line,) = _lines(r.stderr)
        assert "read, run, admin" in line
    r = cli("api-keys", "create", "ok", "--scopes", "RUN, read")
    assert r.exit_code == 0 and "(read,run)" in r.stdout


def _hold(path) -> subprocess.Popen:
    """Another process holding the DuckDB file (as a loader or a Celery worker's run does)."""
    code = f"import duckdb, sys, time; c = duckdb.connect({str(path)!r}); print('held', flush=True); time.sleep(60)"
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert p.stdout is not None and p.stdout.readline().strip() == "held"
    return p


def test_a_locked_duckdb_file_is_one_line_and_exit_1(cli, demo_db):
    path, run_id = demo_db
    holder = _hold(path)
    try:
        for args in (("dry-runs", "list"), ("dry-runs", "show", run_id), ("run", "--mode", "INCR"), ("config", "show")):
            r = cli(*args, "--db", str(path))
            assert r.exit_code == 1, (args, r.output)
            assert "Traceback" not in r.output
            err = _lines(r.stderr)
            assert 1 <= len(err) <= 2, err  # "waiting for ..." then the error
            assert f"process {holder.pid}" in err[-1] and "retry" in err[-1] and str(path) in err[-1]
        r = cli("--debug", "dry-runs", "list", "--db", str(path))
        assert r.exit_code == 1 and "Traceback" in r.stderr
        r = cli("dry-runs", "list", "--db", str(path), env={"IDR_DEBUG": "1"})
        assert r.exit_code == 1 and "Traceback" in r.stderr
    finally:
        holder.kill()
        holder.wait()
    r = cli("dry-runs", "list", "--db", str(path))  # and once the holder is gone it just works
    assert r.exit_code == 0 and run_id in r.stdout


def test_a_lock_released_while_waiting_is_waited_for(cli, demo_db):
    path, run_id = demo_db
    holder = _hold(path)
    killer = subprocess.Popen([sys.executable, "-c", f"import os, time; time.sleep(0.5); os.kill({holder.pid}, 9)"])
    try:
        t0 = time.monotonic()
        r = cli("dry-runs", "list", "--db", str(path), env={"IDR_CLI_WAREHOUSE_WAIT_SECONDS": "20"})
        assert r.exit_code == 0, r.output
        assert run_id in r.stdout and "waiting for" in r.stderr and time.monotonic() - t0 < 15
    finally:
        killer.wait()
        holder.wait()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_snowflake_target_is_two_lines(cli):
    env = {
        "IDR_TARGETS__SF__PLATFORM": "snowflake",
        "IDR_TARGETS__SF__ACCOUNT": "acme",
        "IDR_TARGETS__SF__USER": "idr",
        "IDR_TARGETS__SF__PASSWORD": "pw-not-shown",
        "IDR_TARGETS__SF__DATABASE": "ANALYTICS",
        "IDR_TARGETS__SF__HOST": "127.0.0.1",
        "IDR_TARGETS__SF__PORT": str(_closed_port()),
        "IDR_TARGETS__SF__PROTOCOL": "http",
    }
    r = cli("config", "show", "--target", "sf", env=env)
    assert r.exit_code == 1, r.output
    err = _lines(r.stderr)
    assert len(err) == 2 and err[0].startswith("error: Snowflake:") and "--debug" in err[1], err
    assert "Traceback" not in r.output and "pw-not-shown" not in r.output


def test_invalid_settings_are_one_line(cli):
    r = cli("dry-runs", "list", env={"IDR_DUCKDB_MEMORY_LIMIT": "lots"})
    assert r.exit_code == 2 and "Traceback" not in r.output
    (line,) = _lines(r.stderr)
    assert "IDR_DUCKDB_MEMORY_LIMIT" in line


def test_commands_on_a_missing_file_create_nothing(cli, tmp_path):
    missing = tmp_path / "nonexistent.duckdb"
    for args in (
        ("run", "--mode", "FULL"),
        ("dry-runs", "list"),
        ("config", "show"),
        ("metrics", "export", "--provider", "stdout"),
    ):
        r = cli(*args, "--db", str(missing))
        assert r.exit_code == 2, (args, r.output)
        (line,) = _lines(r.stderr)
        assert "does not exist" in line and "idr init" in line
        assert not missing.exists() and not (tmp_path / "nonexistent.duckdb.wal").exists()
    r = cli("init", "--db", str(missing))
    assert r.exit_code == 0 and missing.exists()


def test_config_apply_names_the_file_once(cli, tmp_path, demo_db):
    path, _ = demo_db
    bad = tmp_path / "bad.yml"
    bad.write_text("sources: [\n")
    r = cli("config", "apply", str(bad), "--db", str(path))
    assert r.exit_code == 2
    (line,) = _lines(r.stderr)
    assert line.count("bad.yml") == 1 and "line 2" in line


def test_config_apply_refuses_empty_sections_unless_allowed(cli, tmp_path, demo_db):
    path, _ = demo_db
    shown = cli("config", "show", "--db", str(path)).stdout
    doc = yaml.safe_load(shown)
    # The other sections refer to the sources, so a document without sources is `sources: []` alone.
    for section, wiped in (
        ("sources", {"sources": []}),
        ("rules", {"rules": []}),
        ("identifier_mappings", {**doc, "identifier_mappings": []}),
    ):
        f = tmp_path / f"no_{section}.yml"
        f.write_text(yaml.safe_dump(wiped))
        r = cli("config", "apply", str(f), "--db", str(path))
        assert r.exit_code == 2, r.output
        assert section in r.stderr and "--allow-empty" in r.stderr
        assert cli("config", "show", "--db", str(path)).stdout == shown  # nothing written
    f = tmp_path / "empty.yml"
    f.write_text("sources: []\n")
    r = cli("config", "apply", str(f), "--db", str(path), "--allow-empty")
    assert r.exit_code == 0, r.output
    with DuckDBAdapter.from_path(str(path)) as a:
        assert a.scalar("SELECT count(*) FROM idr_meta.source_table") == 0


def test_unexpected_errors_are_short_too(cli, monkeypatch, demo_db):
    path, _ = demo_db
    import app.pipeline.dryrun as dryrun

    def boom(*a, **k):
        raise RuntimeError("kaputt\nsecond line of detail")

    monkeypatch.setattr(dryrun, "cleanup", boom)
    r = cli("dry-runs", "cleanup", "--db", str(path))
    assert r.exit_code == 1
    assert _lines(r.stderr) == ["error: unexpected RuntimeError: kaputt", "run with --debug for the traceback"]


def test_serve_on_a_busy_port_is_one_line(cli, demo_db):
    path, _ = demo_db
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = cli("serve", "--port", str(port), env={"IDR_DUCKDB_PATH": str(path)})
    assert r.exit_code == 1, r.output
    (line,) = _lines(r.stderr)
    assert str(port) in line and "--port" in line
