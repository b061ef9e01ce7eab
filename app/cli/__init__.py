"""`idr` command line: init, config, demo, run (and dry runs), metrics.

For people who schedule idr from Airflow or cron: exit code 0 on success, 1 on a failed
run, 2 on bad input; progress on a terminal, plain lines otherwise.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from app.core.errors import ConfigError, IdrError
from app.core.settings import get_settings
from app.pipeline.result import RunResult
from app.platforms import open_adapter

app = typer.Typer(help="idr: identity resolution inside your warehouse.", no_args_is_help=True)
config_app = typer.Typer(help="Load and show the configuration (idr_meta).", no_args_is_help=True)
app.add_typer(config_app, name="config")

console = Console(stderr=False)
err = Console(stderr=True)

DbOpt = Annotated[str | None, typer.Option("--db", help="DuckDB file (default: IDR_DUCKDB_PATH or idr.duckdb).")]
TargetOpt = Annotated[
    str | None, typer.Option("--target", help="A named warehouse from IDR_TARGETS__<NAME>__... (default: --db).")
]


def _fail(message: str, code: int = 2) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}")
    return typer.Exit(code)


def _config_error(e: ConfigError) -> typer.Exit:
    err.print(f"[bold red]error:[/] {e.message}")
    for item in e.errors:
        err.print(f"  - [bold]{item.get('field')}[/]: {item.get('message')}")
    return typer.Exit(2)


@app.command()
def init(db: DbOpt = None, target: TargetOpt = None) -> None:
    """Create (or upgrade) the idr_meta, idr_out and idr_work schemas. Idempotent."""
    from app.schema import init_schema

    try:
        adapter = open_adapter(db, target=target)
    except IdrError as e:
        raise _fail(e.message) from None
    with adapter as a:
        changes = init_schema(a)
    console.print(f"schema ready ({len(changes)} change(s))")
    for c in changes:
        console.print(f"  {c}")


@config_app.command("apply")
def config_apply(file: Path, db: DbOpt = None) -> None:
    """Validate FILE (YAML or JSON) and replace the configuration in one transaction."""
    from app.config.apply import apply_config
    from app.config.yaml_io import load_config_file
    from app.schema import init_schema

    try:
        doc = load_config_file(file)
        with open_adapter(db) as a:
            init_schema(a)
            summary = apply_config(a, doc, actor=os.environ.get("USER", "cli"))
    except ConfigError as e:
        raise _config_error(e) from None
    parts = ", ".join(f"{n} {k}" for k, n in summary.counts.items())
    console.print(f"configuration applied: {parts}")


@config_app.command("show")
def config_show(
    db: DbOpt = None,
    fmt: Annotated[str, typer.Option("--format", help="yaml or json")] = "yaml",
) -> None:
    """Print the active configuration."""
    from app.config.apply import show_config
    from app.config.yaml_io import dump_config

    with open_adapter(db) as a:
        cfg = show_config(a)
    if fmt == "json":
        typer.echo(json.dumps(cfg.model_dump(mode="json", exclude_none=True), indent=2))
    else:
        typer.echo(dump_config(cfg), nl=False)


@app.command()
def demo(
    db: DbOpt = None,
    records: Annotated[int, typer.Option(help="Source records to generate.")] = 2000,
    seed: int = 42,
    force: Annotated[bool, typer.Option(help="Replace an existing database file.")] = False,
) -> None:
    """Create a small multi-source demo dataset and its configuration in a DuckDB file."""
    from app.config.apply import apply_config
    from app.demo.generator import demo_config, generate
    from app.schema import init_schema

    path = db or get_settings().duckdb_path
    if Path(path).exists():
        if not force:
            raise _fail(f"{path} exists; use --force to replace it")
        Path(path).unlink()
        Path(path + ".wal").unlink(missing_ok=True)
    with open_adapter(path) as a:
        stats = generate(a, records, seed=seed)
        init_schema(a)
        apply_config(a, demo_config(records=records), actor="idr demo")
    rows = {k.removeprefix("rows_"): v for k, v in stats.items() if k.startswith("rows_")}
    console.print(f"demo data written to {path}: " + ", ".join(f"{t} {n:,}" for t, n in rows.items()))
    console.print(f"next: idr run --mode FULL --db {path}")


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


@app.command()
def run(
    mode: Annotated[str, typer.Option(help="FULL or INCR.", case_sensitive=False)] = "INCR",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Preview: never touches production tables.")] = False,
    db: DbOpt = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
    target: TargetOpt = None,
) -> None:
    """Run the pipeline. DRY_RUN=true in the environment also makes it a dry run."""
    from app.pipeline.runner import run_pipeline

    mode = mode.upper()
    if mode not in ("FULL", "INCR"):
        raise _fail(f"--mode must be FULL or INCR, not {mode!r}")
    dry_run = dry_run or _env_flag("DRY_RUN")
    try:
        with open_adapter(db, target=target) as a:
            result = _run_with_progress(lambda p: run_pipeline(a, mode, dry_run=dry_run, progress=p), quiet)
            if result.dry_run and result.ok:
                from app.pipeline.dryrun import render_summary

                console.print(render_summary(a, result))
            elif not quiet:
                _print_summary(result)
    except IdrError as e:
        raise _fail(e.message) from None
    if not result.ok:
        err.print(f"[bold red]run {result.run_id} FAILED[/] in stage {result.error_stage}: {result.error_message}")
        raise typer.Exit(1)


def _run_with_progress(fn, quiet: bool) -> RunResult:
    if quiet:
        return fn(None)
    if not sys.stdout.isatty():

        def plain(stage: str, event: str) -> None:
            if event == "start":
                print(f"stage {stage} ...", flush=True)

        return fn(plain)
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console) as prog:
        tasks: dict[str, int] = {}

        def update(stage: str, event: str) -> None:
            if event == "start":
                tasks[stage] = prog.add_task(stage, total=1)
            else:
                prog.update(tasks[stage], completed=1, description=f"[green]✓[/] {stage}")

        return fn(update)


def _print_summary(r: RunResult) -> None:
    t = Table(title=f"run {r.run_id} ({r.mode}) — {r.status}", show_lines=False)
    for col in ("stage", "seconds", "rows in", "rows out"):
        t.add_column(col, justify="right" if col != "stage" else "left")
    for s in r.stages:
        t.add_row(s.name, f"{s.seconds:.3f}", f"{s.rows_in:,}", f"{s.rows_out:,}")
    console.print(t)
    console.print(
        f"entities processed {r.entities_processed:,} · edges created {r.edges_created:,} "
        f"· updated {r.edges_updated:,} · removed {r.edges_removed:,} · clusters impacted {r.clusters_impacted:,}"
    )
    console.print(
        f"component rounds {r.lp_iterations} · groups skipped {r.groups_skipped:,} "
        f"· values excluded {r.values_excluded:,} · large clusters {r.large_clusters:,} "
        f"· {r.duration_seconds:.2f} s"
    )
    for w in r.warnings:
        console.print(f"[yellow]warning:[/] {w}")


dry_app = typer.Typer(help="Review, apply and clean up dry runs.", no_args_is_help=True)
app.add_typer(dry_app, name="dry-runs")


@dry_app.command("list")
def dry_list(db: DbOpt = None, limit: int = 20) -> None:
    """The newest dry runs with their summary."""
    with open_adapter(db) as a:
        rows = a.fetchall(
            "SELECT h.run_id, h.run_mode, h.status, h.started_at, s.total_entities, s.merged_clusters, "
            "s.split_clusters FROM idr_out.run_history AS h LEFT JOIN idr_out.dry_run_summary AS s "
            "ON s.run_id = h.run_id WHERE h.dry_run ORDER BY h.started_at DESC LIMIT $n",
            {"n": limit},
        )
    t = Table(title="dry runs")
    for col in ("run id", "mode", "status", "started", "entities", "merges", "splits"):
        t.add_column(col)
    for r in rows:
        t.add_row(*["" if v is None else str(v) for v in r])
    console.print(t)


@dry_app.command("show")
def dry_show(run_id: str, db: DbOpt = None) -> None:
    """Print a dry run's summary in the console format."""
    from app.pipeline.dryrun import get_dry_run, render_summary

    try:
        with open_adapter(db) as a:
            info = get_dry_run(a, run_id)
            fake = RunResult(run_id=run_id, mode=info.mode, dry_run=True, platform=a.platform,  # type: ignore[arg-type]
                             started_at=info.started_at, status=info.status)  # type: ignore[arg-type]
            console.print(render_summary(a, fake))
    except IdrError as e:
        raise _fail(e.message, 1 if e.status == 404 else 2) from None


@dry_app.command("apply")
def dry_apply(run_id: str, db: DbOpt = None) -> None:
    """Publish exactly the reviewed proposal, unless its inputs changed since."""
    from app.pipeline.dryrun import apply_dry_run

    try:
        with open_adapter(db) as a:
            result = _run_with_progress(lambda p: apply_dry_run(a, run_id, progress=p), False)
    except IdrError as e:
        raise _fail(e.message, 1) from None
    _print_summary(result)
    if not result.ok:
        err.print(f"[bold red]apply failed[/] in stage {result.error_stage}: {result.error_message}")
        raise typer.Exit(1)


@dry_app.command("delete")
def dry_delete(run_id: str, db: DbOpt = None) -> None:
    """Delete one dry run's results (its run_history row stays as the audit trail)."""
    from app.pipeline.dryrun import delete_dry_run

    try:
        with open_adapter(db) as a:
            had = delete_dry_run(a, run_id)
    except IdrError as e:
        raise _fail(e.message, 1) from None
    console.print(f"dry run {run_id}: " + ("results deleted" if had else "nothing left to delete"))


@dry_app.command("cleanup")
def dry_cleanup(db: DbOpt = None) -> None:
    """Delete dry-run results older than dry_run_retention_days (keeping dry_run_keep_last)."""
    from app.pipeline.dryrun import cleanup

    with open_adapter(db) as a:
        removed = cleanup(a)
    console.print(f"removed {len(removed)} expired dry run(s)")
    for rid in removed:
        console.print(f"  {rid}")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default IDR_API_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default IDR_API_PORT).")] = None,
    demo: Annotated[bool, typer.Option("--demo", help="Create demo data + config if the warehouse is new.")] = False,
) -> None:
    """Start the HTTP service (embedded worker unless IDR_BROKER_URL is set)."""
    import secrets

    import uvicorn
    from pydantic import SecretStr

    from app.main import create_app

    settings = get_settings()
    if demo and not Path(settings.duckdb_path).exists():
        from app.config.apply import apply_config
        from app.demo.generator import demo_config, generate
        from app.schema import init_schema

        with open_adapter() as a:
            generate(a, 2000, seed=42)
            init_schema(a)
            apply_config(a, demo_config(records=2000), actor="idr serve --demo")
            from app.pipeline.runner import run_pipeline

            run_pipeline(a, "FULL")  # so lookups answer from the first request
        console.print(f"demo data, configuration and a first FULL run written to {settings.duckdb_path}")
    key_note = ""
    if settings.bootstrap_api_key is None:
        # First start without a key configured: mint one so the service is usable, print it once.
        key = "idr_" + secrets.token_urlsafe(24)
        settings = settings.model_copy(update={"bootstrap_api_key": SecretStr(key)})
        key_note = " (generated for this start; set IDR_BOOTSTRAP_API_KEY to keep one)"
    key = settings.bootstrap_api_key.get_secret_value()  # type: ignore[union-attr]
    host = host or settings.api_host
    port = port or settings.api_port
    base = f"http://{host}:{port}"
    auth = f'-H "Authorization: Bearer {key}"'
    console.print(f"idr service on {base}  admin API key{key_note}: {key}", soft_wrap=True)
    console.print("try:", soft_wrap=True)
    for line in (
        f"curl -s {base}/readyz",
        f"curl -s {auth} -X POST {base}/v1/runs -H 'content-type: application/json' "
        "-d '{\"mode\": \"FULL\", \"dry_run\": true}'",
        f"curl -s {auth} '{base}/v1/runs?limit=5'",
        f"curl -s {auth} {base}/v1/dry-runs/<run id>/summary",
        f"curl -s {auth} -X POST {base}/v1/runs -H 'content-type: application/json' -d '{{\"mode\": \"FULL\"}}'",
        f"curl -s {auth} {base}/v1/entities/crm_customers:1",
        f"curl -s {auth} {base}/metrics | head",
        f"open {base}/docs  (interactive API docs)",
    ):
        console.print(f"  {line}", soft_wrap=True, markup=False, highlight=False)
    uvicorn.run(create_app(settings), host=host, port=port, log_level="info")


api_keys_app = typer.Typer(help="Create and revoke API keys of the HTTP service.", no_args_is_help=True)
app.add_typer(api_keys_app, name="api-keys")


@api_keys_app.command("create")
def api_key_create(
    name: str,
    scopes: Annotated[str, typer.Option(help="Comma-separated: read, run, admin.")] = "read",
) -> None:
    """Create a key (printed once; only its hash is stored)."""
    from app.db.session import make_engine, make_session_factory, session_scope, upgrade
    from app.services.auth import create_key

    settings = get_settings()
    upgrade(settings.state_db_url)
    with session_scope(make_session_factory(make_engine(settings.state_db_url))) as s:
        row, key = create_key(s, name, scopes)
    console.print(f"key {row.id} ({row.scopes}): {key}", soft_wrap=True)


@api_keys_app.command("revoke")
def api_key_revoke(key_id: str) -> None:
    from app.db.session import make_engine, make_session_factory, session_scope
    from app.services.auth import revoke_key

    settings = get_settings()
    with session_scope(make_session_factory(make_engine(settings.state_db_url))) as s:
        ok = revoke_key(s, key_id)
    if not ok:
        raise _fail(f"no active key {key_id}", 1)
    console.print(f"key {key_id} revoked")


db_app = typer.Typer(help="Service state database.", no_args_is_help=True)
app.add_typer(db_app, name="db")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply Alembic migrations to IDR_STATE_DB_URL."""
    from app.db.session import upgrade

    upgrade(get_settings().state_db_url)
    console.print("state database up to date")


def _mount_optional() -> None:
    try:
        from app.metrics.cli import metrics_app
    except ImportError:  # pragma: no cover - metrics extra missing
        return
    app.add_typer(metrics_app, name="metrics")


_mount_optional()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
