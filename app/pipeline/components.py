"""Connected components of an integer edge list, exact, in O(log n) rounds.

``sql_components`` runs in the warehouse (every platform); ``unionfind_components``
is the embedded fast path (DuckDB hands the edges to scipy as numpy arrays). Both write
``{w.cc_labels}(node, label)`` for every node that has an edge; the partition they give
is identical (tests check), labels are arbitrary.
"""

from __future__ import annotations

import random

import numpy as np

from app.core.errors import ComponentCapExceeded
from app.pipeline.context import RunContext

P = 2_147_483_647  # prime (2^31 - 1); node ids stay below it
STAGE = "components"


def _round_key(round_no: int) -> tuple[int, int]:
    rng = random.Random(7919 * round_no + 17)  # deterministic per round
    return rng.randrange(1, P), rng.randrange(0, P)


def sql_components(ctx: RunContext, max_rounds: int) -> int:
    """Returns the number of contraction rounds."""
    a = ctx.adapter
    ctx.run("components.init")
    cur = "cc_e0"
    maps: list[str] = []
    rounds = 0
    while True:
        n_edges = ctx.count(ctx.w(cur))
        if n_edges == 0:
            break
        if rounds >= max_rounds:
            raise ComponentCapExceeded(
                f"connected components did not converge within max_cc_rounds={max_rounds} "
                f"({n_edges} edges left); raise max_cc_rounds — no partial result was written",
                stage=STAGE,
            )
        rounds += 1
        ka, kb = _round_key(rounds)
        a.execute(f"DROP TABLE IF EXISTS {ctx.w('cc_cur')}")
        a.execute(f"ALTER TABLE {ctx.w(cur)} RENAME TO {a.ident(f'{ctx.tag}_cc_cur')}")
        ctx.run("components.hook", {"a": ka, "b": kb, "p": P})
        # Pointer jumping: hook trees are shallow (random keys), a few passes suffice.
        while int(a.scalar(ctx.stmt("components.moving")) or 0) > 0:
            ctx.run("components.jump")
            a.drop_table(ctx.w("cc_par"))
            a.execute(f"ALTER TABLE {ctx.w('cc_par2')} RENAME TO {a.ident(f'{ctx.tag}_cc_par')}")
        map_name = f"cc_map{rounds}"
        ctx.exec(f"CREATE TABLE {ctx.w(map_name)} AS SELECT node, p FROM {ctx.w('cc_par')}")
        maps.append(map_name)
        a.execute(f"DROP TABLE IF EXISTS {ctx.w('cc_map')}")
        ctx.exec(f"CREATE VIEW {ctx.w('cc_map')} AS SELECT node, p FROM {ctx.w(map_name)}")
        a.drop_table(ctx.w("cc_next"))
        ctx.run("components.contract")
        a.execute(f"DROP VIEW IF EXISTS {ctx.w('cc_map')}")
        a.drop_table(ctx.w("cc_par"))
        a.drop_table(ctx.w("cc_cur"))
        cur = "cc_next"
    # Compose the round maps from the last round back to the first: a node's final
    # label is where its supernode ended up when its component stopped contracting.
    # Keys restart every round, so a label is (round it settled in, key): unique.
    final = None
    for r, map_name in reversed(list(enumerate(maps, start=1))):
        out = f"{map_name}_f"
        if final is None:
            ctx.exec(
                f"CREATE TABLE {ctx.w(out)} AS SELECT node, CAST({r} AS BIGINT) * {P} + p AS label "
                f"FROM {ctx.w(map_name)}"
            )
        else:
            ctx.exec(
                f"CREATE TABLE {ctx.w(out)} AS SELECT m.node, "
                f"coalesce(f.label, CAST({r} AS BIGINT) * {P} + m.p) AS label "
                f"FROM {ctx.w(map_name)} AS m LEFT JOIN {ctx.w(final)} AS f ON f.node = m.p"
            )
            a.drop_table(ctx.w(final))
        a.drop_table(ctx.w(map_name))
        final = out
    a.drop_table(ctx.w("cc_labels"))
    if final is None:
        ctx.exec(f"CREATE TABLE {ctx.w('cc_labels')} (node BIGINT, label BIGINT)")
    else:
        a.execute(f"ALTER TABLE {ctx.w(final)} RENAME TO {a.ident(f'{ctx.tag}_cc_labels')}")
    a.drop_table(ctx.w(cur))
    a.drop_table(ctx.w("cc_e0"))
    return rounds


def preload() -> None:
    """Import scipy's graph code in the background: a run's first union-find otherwise
    waits for it, while extraction leaves a core idle."""
    import threading

    def load() -> None:
        import scipy.sparse.csgraph  # noqa: F401

    threading.Thread(target=load, name="idr-preload-scipy", daemon=True).start()


def unionfind_components(ctx: RunContext) -> int:
    """Embedded fast path: the integer edge list goes to scipy as numpy arrays (no
    Python objects per edge) and the labels come back through Arrow. Exact; returns 1
    "round"."""
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import connected_components

    a = ctx.adapter
    edges = a.numpy(f"SELECT u, v FROM {ctx.w('cc_edges')}")  # type: ignore[attr-defined]
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
    a.register_arrow(name, table)  # type: ignore[attr-defined]
    try:
        ctx.exec(f"CREATE TABLE {ctx.w('cc_labels')} AS SELECT node, label FROM {a.ident(name)}")
    finally:
        a.unregister(name)  # type: ignore[attr-defined]
    return 1
