"""``idr metrics ...``: serve the Prometheus page, push unexported rows to a provider."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import duckdb
import typer

from app.cli.common import DbOpt, TargetOpt
from app.core.errors import ConfigError
from app.core.settings import get_settings
from app.platforms.duckdb import DuckDBAdapter

if TYPE_CHECKING:
    from app.metrics.collector import AdapterFactory

metrics_app = typer.Typer(
    help="Prometheus endpoint and push exporters for idr_out.metrics_export.", no_args_is_help=True
)


def read_only_factory(path: str) -> AdapterFactory:
    """Each scrape opens its own read-only connection and closes it after (DuckDB file lock)."""

    def factory() -> DuckDBAdapter:
        return DuckDBAdapter(lambda: duckdb.connect(path, read_only=True))

    return factory


def _parse_options(options: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in options:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"expected key=value, got {item!r}", param_hint="--option")
        out[key.strip()] = value
    return out


@metrics_app.command()
def serve(
    db: Annotated[
        Path | None, typer.Option("--db", help="DuckDB warehouse file (default: IDR_DUCKDB_PATH, idr.duckdb).")
    ] = None,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port of the /metrics endpoint.")] = 9108,
) -> None:
    """Serve /metrics, read from idr_out.metrics_export at every scrape."""
    from prometheus_client import start_http_server

    db = db or Path(get_settings().duckdb_path)
    if not db.exists():
        raise typer.BadParameter(f"{db} does not exist", param_hint="--db")
    from app.metrics.collector import file_state_key, make_registry  # prometheus_client: only for this command

    registry = make_registry(read_only_factory(str(db)), cache_key=file_state_key(str(db), f"{db}.wal"))
    server, _thread = start_http_server(port, addr=host, registry=registry)
    typer.echo(f"serving http://{host}:{server.server_port}/metrics from {db}")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.shutdown()


@metrics_app.command("export")
def export_cmd(
    provider: Annotated[str, typer.Option("--provider", help="Exporter name (entry point).")],
    db: DbOpt = None,
    target: TargetOpt = None,
    option: Annotated[
        list[str] | None, typer.Option("--option", "-o", help="Provider option key=value (repeatable).")
    ] = None,
    run_id: Annotated[str | None, typer.Option(help="Only this run's rows.")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Rows per batch.")] = None,
) -> None:
    """Send rows this provider has not exported yet; exit 1 if the provider failed."""
    from app.cli.common import warehouse

    try:
        from app.metrics.exporters import export_pending, load_exporter
        from app.metrics.settings import get_metrics_settings

        exporter = load_exporter(provider, _parse_options(option or []))
    except ConfigError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(2) from exc
    with warehouse(db, target) as adapter:
        kwargs = {"run_id": run_id} if run_id is not None else {}
        report = export_pending(
            adapter, exporter, batch_size=batch_size or get_metrics_settings().export_batch_size, **kwargs
        )
    typer.echo(f"{report.provider}: exported {report.exported} rows in {report.batches} batches", err=True)
    if not report.ok:
        typer.echo(f"error: {report.error}", err=True)
        raise typer.Exit(1)


@metrics_app.command("providers")
def providers() -> None:
    """List installed exporters."""
    from app.metrics.exporters import available_exporters

    for name, ep in sorted(available_exporters().items()):
        typer.echo(f"{name}\t{ep.value}")
