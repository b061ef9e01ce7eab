"""What every `idr` command shares: consoles, options, opening a warehouse, printing rows."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from app.core.settings import get_settings
from app.core.timefmt import rfc3339
from app.platforms import duckdb_file, open_adapter
from app.platforms.base import Adapter
from app.services.warehouse import connect, lock_holder

# soft_wrap: plain lines are never broken at 80 columns when stdout is not a terminal.
console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

DbOpt = Annotated[str | None, typer.Option("--db", help="DuckDB file (default: IDR_DUCKDB_PATH, idr.duckdb).")]
TargetOpt = Annotated[
    str | None,
    typer.Option(
        "--target", help="A named warehouse from IDR_TARGETS__<NAME>__... (default: IDR_DEFAULT_TARGET, else --db)."
    ),
]
FORMATS = ("table", "json", "csv")
FormatOpt = Annotated[str, typer.Option("--format", help="table, json or csv.", case_sensitive=False)]


def fail(message: str, code: int = 2) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}", markup=True, highlight=False)
    return typer.Exit(code)


def check_format(fmt: str, allowed: Sequence[str] = FORMATS) -> str:
    fmt = fmt.lower()
    if fmt not in allowed:
        raise fail(f"--format must be one of {', '.join(allowed)}, not {fmt!r}")
    return fmt


def open_warehouse(db: str | None = None, target: str | None = None, *, create: bool = False) -> Adapter:
    """A connected adapter. A DuckDB file another process holds (the service during a run)
    is retried with backoff for IDR_CLI_WAREHOUSE_WAIT_SECONDS; a missing file is refused
    unless ``create`` (only `init` and `demo` create one)."""
    settings = get_settings()
    path = duckdb_file(db, settings, target)

    def waiting(e: BaseException) -> None:
        err.print(
            f"waiting for {path}: {lock_holder(e)} holds it (up to {settings.cli_warehouse_wait_seconds:.0f} s)",
            highlight=False,
        )

    return connect(
        lambda: open_adapter(db, settings, target, create=create),
        wait=settings.cli_warehouse_wait_seconds,
        path=path,
        on_wait=waiting,
    )


@contextmanager
def warehouse(db: str | None = None, target: str | None = None, *, create: bool = False) -> Iterator[Adapter]:
    adapter = open_warehouse(db, target, create=create)
    try:
        yield adapter
    finally:
        adapter.close()


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, datetime):  # headings say (UTC): everything stored is UTC
        return v.strftime("%Y-%m-%d %H:%M")
    if isinstance(v, float):
        return f"{v:,.3f}".rstrip("0").rstrip(".")
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    return str(v)


def _json_default(v: Any) -> Any:
    if isinstance(v, datetime):
        return rfc3339(v)
    if isinstance(v, date):
        return v.isoformat()
    return str(v)


def _csv(v: Any) -> Any:
    if v is None:
        return ""
    return v if isinstance(v, str | int | float) else _json_default(v)


def print_rows(
    rows: Sequence[dict[str, Any]],
    columns: Sequence[tuple[str, str]],
    fmt: str = "table",
    *,
    title: str | None = None,
    keep_whole: Sequence[str] = (),
) -> None:
    """Rows as a table (``keep_whole`` columns are never wrapped or cut: ids), a JSON array
    or CSV with a header. ``columns`` are (key, heading) pairs."""
    if fmt == "json":
        typer.echo(json.dumps([{k: r.get(k) for k, _ in columns} for r in rows], indent=2, default=_json_default))
        return
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow([k for k, _ in columns])
        for r in rows:
            w.writerow([_csv(r.get(k)) for k, _ in columns])
        typer.echo(buf.getvalue(), nl=False)
        return
    # No grid: at 80 columns its borders would squeeze the data.
    t = Table(
        title=title, title_justify="left", box=None, padding=(0, 1, 0, 0), pad_edge=False, header_style="bold underline"
    )
    for key, heading in columns:
        whole = key in keep_whole
        width = max([len(_cell(r.get(key))) for r in rows] + [len(heading)]) if whole else None
        numeric = bool(rows) and all(isinstance(r.get(key), int | float) or r.get(key) is None for r in rows)
        t.add_column(
            heading,
            no_wrap=whole,
            min_width=width,
            overflow="fold",
            justify="right" if numeric and not whole else "left",
        )
    for r in rows:
        t.add_row(*[_cell(r.get(k)) for k, _ in columns])
    console.print(t)
