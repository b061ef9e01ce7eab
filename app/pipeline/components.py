"""Connected components of an integer edge list, exact, in O(log n) rounds.

Three solvers, chosen by ``solver_for`` from the setting cc_engine or, when it is ``auto``,
the adapter's strategy (``Adapter.strategies.components``): ``SQLRounds``, the portable
default, runs in the warehouse (every platform), one request per round; ``ServerLoop`` runs
the same rounds as one script where the platform has scripting with loops (BigQuery,
Spark 4 / Databricks: no round trip per round); ``UnionFind`` is DuckDB's override (an
``ArrowExchange`` hands the edges to scipy as numpy arrays). Both write
``{w.cc_labels}(node, label)`` for every node that has an edge; the partition they give
is identical (tests check), labels are arbitrary.
"""

from __future__ import annotations

import random
from typing import Protocol

import numpy as np

from app.core.errors import ComponentCapExceeded, PipelineError
from app.pipeline.context import RunContext
from app.platforms.base import Adapter, ArrowExchange, Assign, Script, While

P = 2_147_483_647  # prime (2^31 - 1); node ids stay below it
STAGE = "components"


def _round_key(round_no: int) -> tuple[int, int]:
    rng = random.Random(7919 * round_no + 17)  # deterministic per round
    return rng.randrange(1, P), rng.randrange(0, P)


def sql_components(ctx: RunContext, max_rounds: int) -> int:
    """Returns the number of contraction rounds.

    A round is hook, jump, one read (edges left, pointers still moving), contract and two
    drops; each round's tables have their own names, so nothing is renamed, and the
    round's read is the only one (held statements travel with it where the platform
    batches them: one round trip per round)."""
    a = ctx.adapter
    ctx.run("components.init")

    def round_tables(r: int, cur: str) -> dict[str, str]:
        return {"cc_cur": cur, "cc_par": f"cc_par{r}", "cc_map": f"cc_map{r}", "cc_next": f"cc_e{r}"}

    def start(r: int, cur: str) -> dict[str, str]:
        t = round_tables(r, cur)
        ka, kb = _round_key(r)
        ctx.run("components.hook", {"a": ka, "b": kb, "p": P}, t)
        ctx.run("components.jump", tables=t)
        return t

    rounds = 0
    t = start(1, "cc_e0")
    while True:
        n_edges, moving = a.fetchone(ctx.stmt("components.progress", t)) or (0, 0)
        if int(n_edges or 0) == 0:
            break
        if rounds >= max_rounds:
            raise ComponentCapExceeded(
                f"connected components did not converge within max_cc_rounds={max_rounds} "
                f"({n_edges} edges left); raise max_cc_rounds — no partial result was written",
                stage=STAGE,
            )
        rounds += 1
        while int(moving or 0) > 0:
            more = {**t, "cc_map2": f"cc_map{rounds}_more"}
            ctx.run("components.jump_more", tables=more)
            a.drop_table(ctx.w(t["cc_map"]))
            renamed = a.ident(f"{ctx.tag}_{t['cc_map']}")
            a.execute(f"ALTER TABLE {ctx.w(more['cc_map2'])} RENAME TO {renamed}")
            moving = a.scalar(ctx.stmt("components.moving", t))
        ctx.run("components.contract", tables=t)
        a.drop_table(ctx.w(t["cc_par"]))
        a.drop_table(ctx.w(t["cc_cur"]))
        t = start(rounds + 1, t["cc_next"])
    # The last round found no edges: its tables are empty.
    for name in (t["cc_par"], t["cc_map"], t["cc_cur"]):
        a.drop_table(ctx.w(name))
    # A node's final label is where its supernode ended up when its component stopped
    # contracting: follow the round maps from the first round on; the deepest round the
    # chain reaches names it. Keys restart every round, so a label is (round, key): unique.
    a.drop_table(ctx.w("cc_labels"))
    if rounds == 0:
        ctx.exec(f"CREATE TABLE {ctx.w('cc_labels')} (node BIGINT, label BIGINT)")
    else:
        joins = "".join(
            f" LEFT JOIN {ctx.w(f'cc_map{r}')} AS m{r} ON m{r}.node = m{r - 1}.p" for r in range(2, rounds + 1)
        )
        label = " ".join(
            f"WHEN m{r}.node IS NOT NULL THEN CAST({r} AS BIGINT) * {P} + m{r}.p" for r in range(rounds, 1, -1)
        )
        first = f"CAST(1 AS BIGINT) * {P} + m1.p"
        label = f"CASE {label} ELSE {first} END" if rounds > 1 else first
        ctx.exec(
            f"CREATE TABLE {ctx.w('cc_labels')} AS SELECT m1.node, {label} AS label "
            f"FROM {ctx.w('cc_map1')} AS m1{joins}"
        )
    for r in range(1, rounds + 1):
        a.drop_table(ctx.w(f"cc_map{r}"))
    a.drop_table(ctx.w("cc_e0"))
    return rounds


def script_components(ctx: RunContext, max_rounds: int) -> int:
    """``sql_components``' rounds as one server-side script: the loop turns in the
    warehouse, so the rounds cost no round trip (the script is sent with the statements
    held before it, as one request). Returns the number of contraction rounds."""
    a = ctx.adapter
    ren = {"cc_e0": "cc_cur", "cc_next": "cc_next"}

    def stmt(ref: str) -> str:
        return ctx.stmt(f"components.{ref}", ren)

    def rename(src: str, dst: str) -> list[str]:
        new = a.ident(f"{ctx.tag}_{dst}")
        return [f"DROP TABLE IF EXISTS {ctx.w(dst)}", f"ALTER TABLE {ctx.w(src)} RENAME TO {new}"]

    keys = " UNION ALL ".join(
        f"SELECT CAST({r} AS BIGINT) AS r, CAST({ka} AS BIGINT) AS a, CAST({kb} AS BIGINT) AS b"
        for r, (ka, kb) in ((r, _round_key(r)) for r in range(1, max_rounds + 1))
    )
    a.drop_table(ctx.w("cc_labels"))
    ctx.run("components.init", tables=ren)
    ctx.exec(f"CREATE TABLE {ctx.w('cc_keys')} AS {keys or 'SELECT 1 AS r, 1 AS a, 0 AS b WHERE FALSE'}")
    ctx.run("components.lab_init")
    key = f"(SELECT {{}} FROM {ctx.w('cc_keys')} WHERE r = idr_r)"
    moving = f"({stmt('moving')}) > 0"
    body = (
        Assign("idr_ka", key.format("a")),
        Assign("idr_kb", key.format("b")),
        stmt("hook_var"),
        stmt("jump"),
        f"DROP TABLE {ctx.w('cc_par')}",
        While(moving, (stmt("jump_more"), *rename("cc_map2", "cc_map"))),
        stmt("contract"),
        stmt("lab_next"),
        *rename("cc_lab2", "cc_lab"),
        f"DROP TABLE {ctx.w('cc_map')}",
        *rename("cc_next", "cc_cur"),
        Assign("idr_r", "idr_r + 1"),
    )
    script = Script(
        variables=(("idr_r", 1), ("idr_ka", 0), ("idr_kb", 0)),
        steps=(
            While(f"idr_r <= {int(max_rounds)} AND (SELECT count(*) FROM {ctx.w('cc_cur')}) > 0", body),
            stmt("labels"),
        ),
        result=f"SELECT idr_r - 1 AS rounds, (SELECT count(*) FROM {ctx.w('cc_cur')}) AS edges_left",
        params={"p": P},
    )
    rounds, left = a.fetch_script(script) or (0, 0)
    if int(left or 0):
        raise ComponentCapExceeded(
            f"connected components did not converge within max_cc_rounds={max_rounds} "
            f"({left} edges left); raise max_cc_rounds — no partial result was written",
            stage=STAGE,
        )
    for name in ("cc_cur", "cc_lab", "cc_keys"):
        a.drop_table(ctx.w(name))
    return int(rounds or 0)


def preload() -> None:
    """Import scipy's graph code in the background: a run's first union-find otherwise
    waits for it, while extraction leaves a core idle."""
    import threading

    def load() -> None:
        import scipy.sparse.csgraph  # noqa: F401

    threading.Thread(target=load, name="idr-preload-scipy", daemon=True).start()


class ComponentsSolver(Protocol):
    name: str

    def solve(self, ctx: RunContext, max_rounds: int) -> int:
        """Write {w.cc_labels}; return the rounds it took."""
        ...


class SQLRounds:
    """Portable default: contraction rounds in the warehouse's SQL."""

    name = "sql"

    def solve(self, ctx: RunContext, max_rounds: int) -> int:
        return sql_components(ctx, max_rounds)


class ServerLoop:
    """Override where the warehouse has scripting with loops: the rounds in one script."""

    name = "script"

    def solve(self, ctx: RunContext, max_rounds: int) -> int:
        return script_components(ctx, max_rounds)


class UnionFind:
    """In-process override: union-find over the edge list as numpy arrays."""

    name = "unionfind"

    def __init__(self, exchange: ArrowExchange) -> None:
        self.exchange = exchange

    def solve(self, ctx: RunContext, max_rounds: int) -> int:
        return unionfind_components(ctx, self.exchange)


def solver_for(adapter: Adapter, engine: str = "auto") -> ComponentsSolver:
    """``engine`` (setting cc_engine): sql, script, unionfind, or auto: the one the adapter's
    strategy names (``Adapter.strategies.components``)."""
    if engine == "auto":
        engine = adapter.strategies.components.engine(adapter.server_loops)
    if engine == "sql":
        return SQLRounds()
    if engine == "script":
        if not adapter.server_loops:
            raise PipelineError(f"cc_engine=script needs a warehouse with server-side loops, not {adapter.platform}")
        return ServerLoop()
    if engine == "unionfind":
        if not isinstance(adapter, ArrowExchange):  # what union-find needs of the adapter
            raise PipelineError(f"cc_engine=unionfind needs an in-process warehouse, not {adapter.platform}")
        return UnionFind(adapter)
    raise PipelineError(f"unknown cc_engine {engine!r} (auto, sql, script, unionfind)")


def unionfind_components(ctx: RunContext, exchange: ArrowExchange) -> int:
    """Embedded fast path: the integer edge list goes to scipy as numpy arrays (no
    Python objects per edge) and the labels come back through Arrow. Exact; returns 1
    "round"."""
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import connected_components

    edges = exchange.numpy(f"SELECT u, v FROM {ctx.w('cc_edges')}")
    u, v = edges["u"].astype(np.int64, copy=False), edges["v"].astype(np.int64, copy=False)
    if len(u) == 0:
        ctx.exec(f"CREATE TABLE {ctx.w('cc_labels')} (node BIGINT, label BIGINT)")
        return 0
    # Node ids are run-local and dense (FULL: eids, INCR: ranks), so they index the
    # matrix directly; isolated ids cost a bit each and are dropped from the labels.
    size = int(max(u.max(), v.max())) + 1
    present = np.zeros(size, dtype=bool)
    present[u] = True
    present[v] = True
    nodes = np.flatnonzero(present)
    # bool data: parallel edges sum to True, never overflow to an explicit zero
    graph = csr_matrix((np.ones(len(u), dtype=bool), (u, v)), shape=(size, size))
    n_comp, labels = connected_components(graph, directed=True, connection="weak")
    labels = labels[nodes]
    # Components among nodes that have edges (every other id in range is its own).
    ctx.state.linked = (len(nodes), int(n_comp) - (size - len(nodes)))
    # Numpy columns, scanned by DuckDB in place: building a pyarrow table would import pandas
    # (pyarrow looks for it), most of a second of a small run.
    table = {"node": nodes.astype(np.int64, copy=False), "label": labels.astype(np.int64)}
    name = f"{ctx.tag}_cc_arrow"
    exchange.register_arrow(name, table)
    try:
        ctx.exec(f"CREATE TABLE {ctx.w('cc_labels')} AS SELECT node, label FROM {ctx.adapter.ident(name)}")
    finally:
        exchange.unregister(name)
    return 1
