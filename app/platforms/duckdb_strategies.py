"""DuckDB's overrides of the portable strategies (app/platforms/strategies.py): the same
tables, computed the way DuckDB is fastest at (bench/README.md has the figures)."""

from __future__ import annotations

from collections.abc import Sequence

from app.platforms.strategies import (
    MOST_FREQUENT,
    SOURCE_PRIORITY,
    ComponentsEngine,
    GoldenAttr,
    PortableStaging,
    SortedKeyRank,
    StepRunner,
    Strategies,
    lit,
    pivot,
    table_prefixes,
)


class SuffixKeyRank(SortedKeyRank):
    """VARCHAR comparison is bytewise here (no collation), so where each table's keys occupy
    their own range of the key order, the order is (table, key without the prefix all of
    that table's keys share). Entity keys share long prefixes ('shop_orders:ORD-000...')
    and a sort tells strings apart by their first bytes, so sorting suffixes is several
    times faster. Exact: any string between a table's smallest and largest key starts with
    their common prefix."""

    def rank(self, run: StepRunner, key_ranges: Sequence[tuple[str, str, str]]) -> None:
        plan = table_prefixes(key_ranges)
        if not plan:  # overlapping tables (or no record at all): the whole keys
            super().rank(run, key_ranges)
            return
        order = " ".join(f"WHEN {lit(t)} THEN {i}" for i, (t, _) in enumerate(plan))
        start = " ".join(f"WHEN {lit(t)} THEN {n + 1}" for t, n in plan)
        # Materialized first: sorting on the substr expression itself is as slow as the keys.
        run.exec(
            f"CREATE TABLE {run.w('key_sfx')} AS SELECT eid, CASE table_id {order} END AS t, "
            f"substr(entity_key, CASE table_id {start} END) AS sfx FROM {run.w('entities')}"
        )
        run.exec(
            f"CREATE TABLE {run.w('key_rank')} AS SELECT eid, row_number() OVER (ORDER BY t, sfx) AS kr "
            f"FROM {run.w('key_sfx')}"
        )
        run.drop("key_sfx")


class DuckDBStaging(PortableStaging):
    """MATERIALIZED CTEs (else DuckDB copies the canonicalization into the empty-value
    filter, and it runs three times per row); a scratch table's stored ``rowid`` as the
    row number (no sort), read from the raw table itself when the identifiers are a view
    over it."""

    def computed_once(self, name: str, select: str) -> str:
        return f"{name} AS MATERIALIZED ({select})"

    def identifier_rows(self, identifiers: str, raw: str, may_repeat: bool) -> tuple[str, str]:
        return (identifiers if may_repeat else raw), "x.rowid"


# Packed integer sort keys (smallest wins): no strings in the aggregation states, which
# is what keeps a 10M-entity profile in memory. ``kr`` is the record's position in
# entity_key order (< 2^40), so integer ties fall to the smallest entity key exactly.
_KR = 1 << 40
_NULL_NEWEST = (1 << 64) - 1


def _key(at: GoldenAttr) -> str:
    # newest first: -epoch_us shifted to [0, 2^64); an unknown time sorts last
    nz = f"coalesce(-CAST(epoch_us({at.recency}) AS HUGEINT) + {1 << 63}, CAST('{_NULL_NEWEST}' AS HUGEINT))"
    rank = f"CAST({at.rank} AS HUGEINT)"  # a dense source position: < 2^16 (one per source)
    if at.strategy == SOURCE_PRIORITY:
        return f"({rank} * CAST('{1 << 104}' AS HUGEINT) + {nz} * {_KR} + kr)"
    return f"({nz} * CAST('{1 << 56}' AS HUGEINT) + {rank} * {_KR} + kr)"


class PackedKeyGolden:
    """One GROUP BY comp with an integer ``min`` per attribute over a packed HUGEINT key (a
    MOST_FREQUENT attribute first counts its values per cluster, keeping each value's best
    key, and picks with ``arg_min``); the winning records are then picked out of the entity
    rows by one join on comp."""

    def build(self, run: StepRunner, attrs: Sequence[GoldenAttr]) -> None:
        plain, picks, joins = [], [], []
        for at in attrs:
            col = f"a{at.j}"
            if at.strategy == MOST_FREQUENT:
                f = run.w(f"freq{at.j}")
                run.exec(
                    f"CREATE TABLE {f} AS SELECT comp, arg_min(best, row(-n, best)) AS m "
                    f"FROM (SELECT comp, count(*) AS n, min({_key(at)}) AS best "
                    f"FROM {run.w('gsrc')} WHERE {col} IS NOT NULL GROUP BY comp, {col}) AS v "
                    "GROUP BY comp"
                )
                joins.append(f"LEFT JOIN {f} AS f{at.j} ON f{at.j}.comp = c.comp")
                picks.append(f"CAST(f{at.j}.m & {_KR - 1} AS BIGINT) AS k{at.j}")
            else:
                plain.append(f"min(CASE WHEN {col} IS NOT NULL THEN {_key(at)} END) AS m{at.j}")
                picks.append(f"CAST(g.m{at.j} & {_KR - 1} AS BIGINT) AS k{at.j}")
        if plain:
            run.exec(
                f"CREATE TABLE {run.w('golden_wide')} AS SELECT comp, {', '.join(plain)} "
                f"FROM {run.w('gsrc')} GROUP BY comp"
            )
            joins.insert(0, f"JOIN {run.w('golden_wide')} AS g ON g.comp = c.comp")
        run.exec(
            f"CREATE TABLE {run.w('golden_k')} AS SELECT c.comp, c.rid, {', '.join(picks)} "
            f"FROM {run.w('comp_ids')} AS c {' '.join(joins)}"
        )
        ks = ", ".join(f"k.k{at.j}" for at in attrs)
        sql = pivot(
            attrs,
            f"{run.w('gsrc')} AS x JOIN {run.w('golden_k')} AS k ON k.comp = x.comp",
            lambda at: f"x.kr = k.k{at.j}",
            f"x.kr IN ({ks})",
        )
        run.exec(f"CREATE TABLE {run.w('golden_new')} AS {sql}")
        run.drop("golden_wide", "golden_k", *(f"freq{at.j}" for at in attrs))


class InProcessComponents:
    """Union-find in this process: the edge list comes to scipy as numpy arrays (the
    adapter is an ``ArrowExchange``), one pass instead of O(log n) SQL rounds."""

    def engine(self, server_loops: bool) -> ComponentsEngine:
        return "unionfind"


DUCKDB = Strategies(
    golden=PackedKeyGolden(), key_rank=SuffixKeyRank(), staging=DuckDBStaging(), components=InProcessComponents()
)
