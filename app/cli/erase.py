"""`idr erase`: an erasure request ("forget this person") from the command line."""

from __future__ import annotations

import getpass
from typing import Annotated

import typer

from app.cli.common import DbOpt, TargetOpt, console, fail, warehouse


def erase(
    key: Annotated[
        list[str] | None, typer.Option("--key", help="An entity key ('<table_id>:<key>'); repeat for several.")
    ] = None,
    identifier: Annotated[
        str | None, typer.Option("--identifier", help="TYPE=VALUE, e.g. EMAIL=jane@example.com: every holder.")
    ] = None,
    show: Annotated[str | None, typer.Option("--show", help="Print the state of an erasure request (its id).")] = None,
    db: DbOpt = None,
    target: TargetOpt = None,
) -> None:
    """Erase records: every matching record leaves the identity graph at the next real run
    and stays out while a source still holds it (only salted hashes are stored)."""
    from app.services import erasures

    if show is not None:
        if key or identifier:
            raise fail("--show takes no --key or --identifier")
        with warehouse(db, target) as a:
            _print(erasures.get(a, show))
        return
    if bool(key) == bool(identifier):
        raise fail("give --key K (repeatable) or --identifier TYPE=VALUE")
    itype = ivalue = None
    if identifier:
        itype, sep, ivalue = identifier.partition("=")
        if not sep or not itype.strip() or not ivalue:
            raise fail(f"--identifier takes TYPE=VALUE, not {identifier!r}")
        itype = itype.strip()
    with warehouse(db, target) as a:
        out = erasures.request(
            a, entity_keys=key, identifier_type=itype, identifier_value=ivalue, requested_by=f"cli:{getpass.getuser()}"
        )
    from app.cli.api_keys import state_session
    from app.services import audit

    # The same trail as the API's: the kind asked for, never the keys or the value (a --db
    # file is no service target: no target then).
    diff = {"kind": out["kind"], "identifier_type": out["identifier_type"], "entries": out["entries"]}
    with state_session() as s:
        audit.record(
            s, kind="erasure", action="erasure.request", actor=audit.local_actor(),
            target=None if db else (target or "default"), subject=out["id"], diff=diff,
        )  # fmt: skip
    console.print(f"erasure {out['id']} recorded ({out['entries']} {out['kind'].lower()} hash(es)); ", end="")
    console.print("the next real run applies it: idr run --mode INCR", highlight=False)


def _print(e: dict) -> None:
    when = e["took_effect_at"].isoformat(sep=" ", timespec="seconds") if e["took_effect_at"] else "-"
    console.print(
        f"{e['id']}  {e['kind']}{' ' + e['identifier_type'] if e['identifier_type'] else ''}  {e['status']}  "
        f"took effect: {when} in {e['took_effect_in_run'] or '-'}",
        highlight=False,
    )
    if e.get("lifted_at"):
        lifted = e["lifted_at"].isoformat(sep=" ", timespec="seconds")
        console.print(f"  lifted: {lifted} in {e['lifted_in_run']} (its sources deleted every row)", highlight=False)
    for r in e["runs"]:
        console.print(
            f"  {r['run_id']}: {r['entities_removed']} removed, {r['rows_suppressed']} row(s) kept out", highlight=False
        )
