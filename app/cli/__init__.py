"""`idr` command line: init, config, demo, run (and dry runs), serve, API keys, metrics.

For people who schedule idr from Airflow or cron: exit code 0 on success, 1 on a failure
(a failed run, a warehouse that cannot be reached), 2 on bad input; progress on a
terminal, plain lines otherwise; one or two lines per error, a traceback only with
``idr --debug`` or ``IDR_DEBUG=1``.
"""

from __future__ import annotations

import os
import sys
import traceback
from pathlib import Path
from typing import Annotated, Any

import click
import typer
from typer.core import TyperGroup

from app.cli.common import DbOpt, FormatOpt, TargetOpt, check_format, console, err, fail, print_rows, warehouse
from app.cli.errors import configure_logging, debug_enabled, explain, set_debug
from app.core.run_record import RunResult
from app.core.settings import get_settings


class _Group(TyperGroup):
    """Every command's failures go through ``explain``: one or two lines and an exit code."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):  # type: ignore[override]
        args = list(sys.argv[1:] if args is None else args)
        # --debug is accepted anywhere before a '--' (people add it to the failing command).
        cut = args.index("--") if "--" in args else len(args)
        if "--debug" in args[:cut]:
            args = [a for i, a in enumerate(args) if not (i < cut and a == "--debug")]
            set_debug(True)
        return super().main(args, prog_name, complete_var, standalone_mode, **extra)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (Exception, KeyboardInterrupt) as e:
            if type(e).__module__.split(".")[0] in ("click", "typer"):
                raise  # exits, usage errors, aborts: click reports them itself
            if debug_enabled():
                traceback.print_exception(e, file=sys.stderr)
            lines, code = explain(e)
            err.print(f"[bold red]error:[/] {lines[0]}", highlight=False)
            for line in lines[1:]:
                err.print(line, markup=False, highlight=False)
            raise typer.Exit(code) from None


app = typer.Typer(
    cls=_Group,
    help="idr: identity resolution inside your warehouse. `idr --debug COMMAND` shows tracebacks.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
config_app = typer.Typer(help="Load and show the configuration (idr_meta).", no_args_is_help=True)
app.add_typer(config_app, name="config")


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Print tracebacks of failures (or IDR_DEBUG=1).")] = False,
) -> None:
    if debug:
        set_debug(True)
    configure_logging()


@app.command()
def init(db: DbOpt = None, target: TargetOpt = None) -> None:
    """Create (or upgrade) the idr_meta, idr_out and idr_work schemas. Idempotent."""
    from app.schema import init_schema

    with warehouse(db, target, create=True) as a:
        changes = init_schema(a)
    console.print(f"schema ready ({len(changes)} change(s))")
    for c in changes:
        console.print(f"  {c}", highlight=False)


@config_app.command("apply")
def config_apply(
    file: Path,
    db: DbOpt = None,
    target: TargetOpt = None,
    allow_empty: Annotated[
        bool, typer.Option("--allow-empty", help="Accept a document without sources or rules (runs need both).")
    ] = False,
) -> None:
    """Validate FILE (YAML or JSON) and replace the configuration in one transaction."""
    from app.config.apply import apply_config
    from app.config.yaml_io import load_config_file
    from app.schema import init_schema

    doc = load_config_file(file)
    with warehouse(db, target) as a:
        init_schema(a)
        summary = apply_config(a, doc, actor=os.environ.get("USER", "cli"), allow_empty=allow_empty)
    parts = ", ".join(f"{n} {k}" for k, n in summary.counts.items())
    console.print(f"configuration applied: {parts}", highlight=False)


@config_app.command("show")
def config_show(
    db: DbOpt = None,
    target: TargetOpt = None,
    fmt: Annotated[str, typer.Option("--format", help="yaml or json")] = "yaml",
) -> None:
    """Print the active configuration."""
    import json

    from app.config.apply import show_config
    from app.config.yaml_io import dump_config

    fmt = check_format(fmt, ("yaml", "json"))
    with warehouse(db, target) as a:
        cfg = show_config(a)
    if fmt == "json":
        typer.echo(json.dumps(cfg.model_dump(mode="json", exclude_none=True), indent=2))
    else:
        typer.echo(dump_config(cfg), nl=False)


@config_app.command("template")
def config_template(
    name: Annotated[str | None, typer.Argument(help="retail, healthcare, financial or b2b_saas.")] = None,
) -> None:
    """Print a commented starting configuration for a common case (no NAME: list them).

    idr config template retail > idr.yml; edit it; idr config apply idr.yml"""
    from app.config.templates import TEMPLATES, template_text

    if name is None:
        for key, what in TEMPLATES.items():
            console.print(f"{key:<12} {what}", highlight=False, markup=False)
        console.print("print one: idr config template NAME > idr.yml", highlight=False)
        return
    typer.echo(template_text(name), nl=False)


@app.command()
def demo(
    db: DbOpt = None,
    records: Annotated[int, typer.Option(help="Source records to generate.", min=1)] = 2000,
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
            raise fail(f"{path} exists; use --force to replace it")
        Path(path).unlink()
        Path(path + ".wal").unlink(missing_ok=True)
    with warehouse(path, create=True) as a:
        stats = generate(a, records, seed=seed)
        init_schema(a)
        apply_config(a, demo_config(records=records), actor="idr demo")
    rows = {k.removeprefix("rows_"): v for k, v in stats.items() if k.startswith("rows_")}
    console.print(f"demo data written to {path}: " + ", ".join(f"{t} {n:,}" for t, n in rows.items()))
    console.print(f"next: idr run --mode FULL --db {path}", highlight=False)


dbt_app = typer.Typer(help="dbt integration.", no_args_is_help=True)
app.add_typer(dbt_app, name="dbt")


@dbt_app.command("sources")
def dbt_sources(
    db: DbOpt = None,
    target: TargetOpt = None,
    out: Annotated[str, typer.Option("--out", help="File to write ('-': standard output).")] = "sources.yml",
) -> None:
    """Write a dbt sources.yml for idr's public tables (columns, key tests)."""
    from pathlib import Path

    from app.dbt import sources_yaml

    with warehouse(db, target) as a:
        text = sources_yaml(a)
    if out == "-":
        typer.echo(text, nl=False)
    else:
        Path(out).write_text(text)
        console.print(f"wrote {out}", highlight=False)


deploy_app = typer.Typer(help="Create the in-warehouse runners.", no_args_is_help=True)
app.add_typer(deploy_app, name="deploy")


@deploy_app.command("snowflake-procedure")
def deploy_snowflake_procedure(
    target: Annotated[str, typer.Option("--target", help="A snowflake target (IDR_TARGETS__<NAME>__...).")],
    schema: Annotated[str, typer.Option(help="Schema of the procedure and of its code stage.")] = "IDR_META",
    name: Annotated[str, typer.Option(help="Procedure name.")] = "IDR_RUN",
    show: Annotated[bool, typer.Option("--print", help="Print the procedure's DDL; send nothing.")] = False,
) -> None:
    """Create the stored procedure that runs idr inside Snowflake: CALL idr_meta.idr_run('INCR', TRUE)."""
    from app.inwarehouse import snowflake as procedure
    from app.platforms import named_target

    if show:
        typer.echo(procedure.procedure_ddl(schema, name))
        return
    procedure.procedure_ddl(schema, name)  # refuses a bad name before connecting
    platform = named_target(get_settings(), target).platform
    if platform != "snowflake":
        raise fail(f"target {target!r} is a {platform} target; snowflake-procedure needs a snowflake one")
    with warehouse(None, target) as a:
        procedure.deploy(a.conn, schema, name)
    console.print(
        f"created {schema.upper()}.{name.upper()}: CALL {schema.lower()}.{name.lower()}('INCR', TRUE)", highlight=False
    )


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
    """Run the pipeline. DRY_RUN=true in the environment also makes it a dry run.

    The run is recorded in the service state DB (IDR_STATE_DB_URL) when the warehouse is
    one the service serves: the API lists it and can cancel it."""
    mode = mode.upper()
    if mode not in ("FULL", "INCR"):
        raise fail(f"--mode must be FULL or INCR, not {mode!r}")
    dry_run = dry_run or _env_flag("DRY_RUN")
    with warehouse(db, target) as a:  # a missing file or schema is bad input, not a failed run
        if not a.table_exists("idr_out", "run_history"):
            raise fail("the idr schema is missing in this warehouse: run `idr init` first")
    _execute_and_report(db, target, quiet, mode=mode, dry_run=dry_run)


@app.command()
def plan(
    mode: Annotated[str, typer.Option(help="FULL or INCR.", case_sensitive=False)] = "FULL",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="The plan of a dry run.")] = False,
    apply: Annotated[bool, typer.Option("--apply", help="The plan of applying a dry run.")] = False,
    first_run: Annotated[
        bool, typer.Option("--first-run", help="A FULL run over an empty state (every record new).")
    ] = False,
) -> None:
    """Print the steps a run executes: what each reads and writes, and when each scratch
    table is dropped (after its last reader). Needs no warehouse."""
    from app.pipeline.runner import plan as run_plan

    mode = mode.upper()
    if mode not in ("FULL", "INCR"):
        raise fail(f"--mode must be FULL or INCR, not {mode!r}")
    if dry_run and apply:
        raise fail("--dry-run and --apply exclude each other")
    if first_run and mode != "FULL":
        raise fail("--first-run is a FULL run")
    typer.echo(run_plan(mode, dry_run=dry_run, apply=apply, fresh=first_run).render())


def _execute_and_report(
    db: str | None, target: str | None, quiet: bool, *, mode: str | None, dry_run: bool, apply_of: str | None = None
) -> None:
    """Run (recorded in the state DB when possible), print progress and the summary, exit 1 on failure."""
    from app.services.warehouse import service_target

    settings = get_settings()
    name = service_target(settings, db, target) if settings.record_cli_runs else None
    rt = None
    if name is not None:
        from app.services import local_runs  # the state DB's models: only when the run is recorded

        try:
            rt = local_runs.open_runtime(settings)
        except Exception as e:  # noqa: BLE001 - bookkeeping must not stop a scheduled run
            err.print(f"[yellow]warning:[/] not recorded in the state DB: {explain(e)[0][0]}", highlight=False)
    if rt is None:
        _run_unrecorded(db, target, quiet, mode=mode, dry_run=dry_run, apply_of=apply_of)
        return
    try:
        done = _run_with_progress(
            lambda p: local_runs.run_recorded(rt, name, mode, dry_run=dry_run, apply_of=apply_of, observer=p), quiet
        )
    finally:
        rt.close()
    r = done.result
    if r is None:  # it never ran: warehouse busy or unreachable, cancelled while queued...
        raise fail(f"run {done.run_id} {done.status}: {done.error_message}", 1)
    _report(db, target, quiet, r, cancelled=done.status == "CANCELLED")


def _run_unrecorded(
    db: str | None, target: str | None, quiet: bool, *, mode: str | None, dry_run: bool, apply_of: str | None
) -> None:
    from app.pipeline.runner import apply_dry_run, run_pipeline

    with warehouse(db, target) as a:
        if apply_of is not None:
            r = _run_with_progress(lambda p: apply_dry_run(a, apply_of, progress=p), quiet)
        else:
            r = _run_with_progress(lambda p: run_pipeline(a, mode or "INCR", dry_run=dry_run, progress=p), quiet)
    _report(db, target, quiet, r)


def _report(db: str | None, target: str | None, quiet: bool, r: RunResult, cancelled: bool = False) -> None:
    if r.dry_run and r.ok:
        from app.pipeline.dryrun import render_summary

        with warehouse(db, target) as a:
            console.print(render_summary(a, r), highlight=False)
    elif not quiet:
        _print_summary(r)
    if cancelled:
        err.print(f"[bold red]run {r.run_id} CANCELLED[/] before publish: production tables untouched", highlight=False)
        raise typer.Exit(1)
    if not r.ok:
        if r.error_stage == "apply_check":
            raise fail(r.error_message or "the dry run's inputs changed", 1)
        err.print(f"[bold red]run {r.run_id} FAILED[/] in stage {r.error_stage}: {r.error_message}", highlight=False)
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
    from rich.table import Table

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
        f"· {r.statements:,} round trips · {r.duration_seconds:.2f} s"
    )
    for w in r.warnings:
        console.print(f"[yellow]warning:[/] {w}", highlight=False)


def _mount() -> None:
    from app.cli import api_keys, dry_runs, erase, load, serve

    app.add_typer(dry_runs.dry_app, name="dry-runs")
    app.add_typer(api_keys.api_keys_app, name="api-keys")
    app.add_typer(api_keys.db_app, name="db")
    app.add_typer(api_keys.webhooks_app, name="webhooks")
    app.command()(serve.serve)
    app.command()(load.load)
    app.command()(erase.erase)
    try:
        from app.metrics.cli import metrics_app
    except ImportError:  # pragma: no cover - metrics extra missing
        return
    app.add_typer(metrics_app, name="metrics")


_mount()

__all__ = ["DbOpt", "FormatOpt", "TargetOpt", "app", "main", "print_rows"]


def main() -> None:
    app()


if __name__ == "__main__":
    main()
