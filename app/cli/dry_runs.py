"""`idr dry-runs ...`: list, review (summary, entity and cluster changes), apply, delete, clean up."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from app.cli.common import DbOpt, FormatOpt, TargetOpt, check_format, console, err, fail, print_rows, warehouse
from app.core.run_record import RunResult
from app.pipeline.dryrun import CHANGE_TYPES, affected_entities

dry_app = typer.Typer(help="Review, apply and clean up dry runs.", no_args_is_help=True)

TypeOpt = Annotated[
    str | None,
    typer.Option(
        "--type",
        help=f"Only these change types, comma-separated: {', '.join(CHANGE_TYPES)} (default: all but UNCHANGED).",
    ),
]
LimitOpt = Annotated[int, typer.Option("--limit", help="Rows per page (0: every row).", min=0)]
AfterOpt = Annotated[str | None, typer.Option("--after", help="Start after this cursor (printed under a page).")]


def _types(value: str | None) -> list[str]:
    if value is None:
        return [t for t in CHANGE_TYPES if t != "UNCHANGED"]
    out = [t.strip().upper() for t in value.split(",") if t.strip()]
    bad = [t for t in out if t not in CHANGE_TYPES]
    if bad or not out:
        raise fail(f"--type takes {', '.join(CHANGE_TYPES)} (comma-separated), not {value!r}")
    return out


@dry_app.command("list")
def dry_list(
    db: DbOpt = None,
    target: TargetOpt = None,
    limit: Annotated[int, typer.Option(min=1)] = 20,
    fmt: FormatOpt = "table",
) -> None:
    """The newest dry runs with their summary."""
    fmt = check_format(fmt)
    with warehouse(db, target) as a:
        rows = a.fetch_dicts(
            "SELECT s.*, h.run_id, h.run_mode, h.status, h.started_at FROM idr_out.run_history AS h "
            "LEFT JOIN idr_out.dry_run_summary AS s ON s.run_id = h.run_id "
            "WHERE h.dry_run ORDER BY h.started_at DESC LIMIT $n",
            {"n": limit},
        )
    out = [
        {
            "run_id": r["run_id"],
            "mode": r["run_mode"],
            # Every row is a dry run: "COMPLETE" says it in a column a terminal can fit.
            "status": "COMPLETE" if r["status"] == "DRY_RUN_COMPLETE" else r["status"],
            "started_at": r["started_at"],
            "affected_entities": affected_entities(r),
            "total_entities": r.get("total_entities"),
            "merged_clusters": r.get("merged_clusters"),
            "split_clusters": r.get("split_clusters"),
        }
        for r in rows
    ]
    columns = [
        ("run_id", "run id"),
        ("mode", "mode"),
        ("status", "status"),
        ("started_at", "started UTC"),
        ("affected_entities", "affected"),
        ("merged_clusters", "merges"),
        ("split_clusters", "splits"),
    ]
    print_rows(out, columns, fmt, title="dry runs, newest first", keep_whole=("run_id",))
    if fmt == "table" and out:
        console.print("review one: idr dry-runs show|changes|clusters RUN_ID", highlight=False)


@dry_app.command("show")
def dry_show(run_id: str, db: DbOpt = None, target: TargetOpt = None) -> None:
    """Print a dry run's summary in the console format."""
    from app.pipeline.dryrun import get_dry_run, render_summary

    with warehouse(db, target) as a:
        info = get_dry_run(a, run_id)
        fake = RunResult(
            run_id=run_id,
            mode=info.mode,  # type: ignore[arg-type]
            dry_run=True,
            platform=a.platform,
            started_at=info.started_at,
            status=info.status,  # type: ignore[arg-type]
        )
        console.print(render_summary(a, fake), highlight=False)


def _print_page(rows: list[dict[str, Any]], nxt: str | None, columns, fmt: str, title: str, keep: tuple[str, ...]):
    print_rows(rows, columns, fmt, title=title, keep_whole=keep)
    if nxt is not None:
        err.print(f"more rows: add --after '{nxt}' (or --limit 0 for all)", highlight=False, markup=False)
    elif fmt == "table" and not rows:
        console.print("no rows", highlight=False)


@dry_app.command("changes")
def dry_changes(
    run_id: str,
    change_type: TypeOpt = None,
    limit: LimitOpt = 50,
    after: AfterOpt = None,
    fmt: FormatOpt = "table",
    db: DbOpt = None,
    target: TargetOpt = None,
) -> None:
    """Entity-level changes of a dry run, ordered by entity key."""
    from app.pipeline.dryrun import list_changes

    fmt = check_format(fmt)
    types = _types(change_type)
    with warehouse(db, target) as a:
        rows, nxt = list_changes(a, run_id, types, after, limit or None)
    columns = [
        ("entity_key", "entity"),
        ("change_type", "change"),
        ("current_resolved_id", "current id"),
        ("proposed_resolved_id", "proposed id"),
        ("current_cluster_size", "current size"),
        ("proposed_cluster_size", "proposed size"),
    ]
    _print_page(rows, nxt, columns, fmt, f"{run_id}: entity changes ({', '.join(types)})", ("entity_key",))


@dry_app.command("clusters")
def dry_clusters(
    run_id: str,
    change_type: TypeOpt = None,
    limit: LimitOpt = 50,
    after: AfterOpt = None,
    fmt: FormatOpt = "table",
    db: DbOpt = None,
    target: TargetOpt = None,
) -> None:
    """Cluster-level changes: which current cluster's members go to which proposed cluster."""
    from app.pipeline.dryrun import page_cluster_changes

    fmt = check_format(fmt)
    types = _types(change_type)
    with warehouse(db, target) as a:
        rows, nxt = page_cluster_changes(a, run_id, types, after, limit or None)
    columns = [
        ("current_resolved_id", "current id"),
        ("proposed_resolved_id", "proposed id"),
        ("change_type", "change"),
        ("members", "members"),
        ("members_moved", "moved"),
        ("current_cluster_size", "current size"),
        ("proposed_cluster_size", "proposed size"),
    ]
    keep = ("current_resolved_id", "proposed_resolved_id")
    _print_page(rows, nxt, columns, fmt, f"{run_id}: cluster changes ({', '.join(types)})", keep)


@dry_app.command("apply")
def dry_apply(
    run_id: str,
    db: DbOpt = None,
    target: TargetOpt = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
) -> None:
    """Publish exactly the reviewed proposal, unless its inputs changed since (exit 1, nothing written)."""
    from app.cli import _execute_and_report
    from app.pipeline.dryrun import check_applicable

    with warehouse(db, target) as a:
        check_applicable(a, run_id)  # says why a stale or failed dry run cannot be applied
    _execute_and_report(db, target, quiet, mode=None, dry_run=False, apply_of=run_id)


@dry_app.command("delete")
def dry_delete(run_id: str, db: DbOpt = None, target: TargetOpt = None) -> None:
    """Delete one dry run's results (its run_history row stays as the audit trail)."""
    from app.pipeline.dryrun import delete_dry_run

    with warehouse(db, target) as a:
        had = delete_dry_run(a, run_id)
    console.print(f"dry run {run_id}: " + ("results deleted" if had else "nothing left to delete"), highlight=False)


@dry_app.command("cleanup")
def dry_cleanup(db: DbOpt = None, target: TargetOpt = None) -> None:
    """Delete dry-run results older than dry_run_retention_days (keeping dry_run_keep_last)."""
    from app.pipeline.dryrun import cleanup

    with warehouse(db, target) as a:
        removed = cleanup(a)
    console.print(f"removed {len(removed)} expired dry run(s)")
    for rid in removed:
        console.print(f"  {rid}", highlight=False)
