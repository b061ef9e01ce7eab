"""The write floor: how long DuckDB takes to write a FULL run's state tables, and nothing else.

    python bench/run.py --records 1000000 --delta 0 --keep --db /tmp/b1m.duckdb   # a FULL run's state
    python bench/write_floor.py /tmp/b1m.duckdb [--repeat 3]

Copies the production state tables a FULL run writes (golden profile, edges, stored
identifiers, membership, clusters) into memory, then times writing each into a new
database file (created beside the input and deleted afterwards; the input is only read),
checkpoint included. No run can publish faster than this on the same machine with the
same DuckDB and the same tables, so it bounds the FULL targets from below.

    python bench/write_floor.py /tmp/b1m.duckdb --layout integer-keys

measures what a different storage layout would cost to write, from the same state: every
entity key stored once (an entity dictionary) and the other tables on integer ids
(entity ids; resolved ids numbered as integers). Values, names and timestamps stay as
they are. ``--layout integer-keys-wide`` also stores the golden profile as one row per
cluster (a value and a source entity id per attribute) instead of one per attribute.
These are measurements for the decision whether to change what the product stores, not
layouts the product uses.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import duckdb

TABLES = (
    "golden_profile_current",
    "identity_edges_current",
    "identifiers_current",
    "identity_resolved_membership_current",
    "identity_clusters_current",
)


def _remove(path: Path) -> None:
    for p in (path, path.with_name(path.name + ".wal")):
        p.unlink(missing_ok=True)


LAYOUTS = ("current", "integer-keys", "integer-keys-wide")

# The same facts keyed by integers. {keys}: every entity key of the state, numbered;
# {rids}: every resolved id, numbered (the product would store these as integers).
_KEYS = """CREATE TABLE memory.main.keys AS SELECT CAST(row_number() OVER () AS BIGINT) AS eid, entity_key
FROM (SELECT entity_key FROM src.idr_out.identity_resolved_membership_current
      UNION SELECT entity_key FROM src.idr_out.identifiers_current
      UNION SELECT left_entity_key FROM src.idr_out.identity_edges_current
      UNION SELECT right_entity_key FROM src.idr_out.identity_edges_current
      UNION SELECT source_entity_key FROM src.idr_out.golden_profile_current WHERE source_entity_key IS NOT NULL)"""
_RIDS = """CREATE TABLE memory.main.rids AS SELECT CAST(row_number() OVER () AS BIGINT) AS rid, resolved_id
FROM (SELECT resolved_id FROM src.idr_out.identity_clusters_current
      UNION SELECT resolved_id FROM src.idr_out.identity_resolved_membership_current
      UNION SELECT resolved_id FROM src.idr_out.golden_profile_current)"""
INTEGER_KEYS = {
    "entity_keys": "SELECT eid, entity_key FROM memory.main.keys",
    "golden_profile_current": "SELECT r.rid AS resolved_id, g.attribute_name, g.attribute_value, "
    "k.eid AS source_eid, g.source_table_id, g.strategy, g.updated_ts FROM src.idr_out.golden_profile_current AS g "
    "JOIN memory.main.rids AS r ON r.resolved_id = g.resolved_id "
    "LEFT JOIN memory.main.keys AS k ON k.entity_key = g.source_entity_key",
    "identity_edges_current": "SELECT e.rule_id, l.eid AS left_eid, r.eid AS right_eid, e.identifier_type, "
    "e.identifier_value_norm, e.first_seen_ts, e.last_seen_ts FROM src.idr_out.identity_edges_current AS e "
    "JOIN memory.main.keys AS l ON l.entity_key = e.left_entity_key "
    "JOIN memory.main.keys AS r ON r.entity_key = e.right_entity_key",
    "identifiers_current": "SELECT k.eid, c.identifier_type, c.identifier_value_norm, c.updated_ts "
    "FROM src.idr_out.identifiers_current AS c JOIN memory.main.keys AS k ON k.entity_key = c.entity_key",
    "identity_resolved_membership_current": "SELECT k.eid, r.rid AS resolved_id, m.updated_ts "
    "FROM src.idr_out.identity_resolved_membership_current AS m "
    "JOIN memory.main.keys AS k ON k.entity_key = m.entity_key "
    "JOIN memory.main.rids AS r ON r.resolved_id = m.resolved_id",
    "identity_clusters_current": "SELECT r.rid AS resolved_id, c.cluster_size, c.updated_ts "
    "FROM src.idr_out.identity_clusters_current AS c JOIN memory.main.rids AS r ON r.resolved_id = c.resolved_id",
}


# integer-keys-wide: the golden profile as one row per cluster, a value and a source
# entity id per attribute (columns named by DuckDB's PIVOT, e.g. email_v, email_eid).
WIDE_GOLDEN = (
    "PIVOT (SELECT r.rid AS resolved_id, g.attribute_name, g.attribute_value, k.eid AS source_eid, g.updated_ts "
    "FROM src.idr_out.golden_profile_current AS g JOIN memory.main.rids AS r ON r.resolved_id = g.resolved_id "
    "LEFT JOIN memory.main.keys AS k ON k.entity_key = g.source_entity_key) "
    "ON attribute_name USING first(attribute_value) AS v, first(source_eid) AS eid GROUP BY resolved_id, updated_ts"
)


def _copies(layout: str) -> dict[str, str]:
    """Table name -> the SELECT (over ``src``) that fills its in-memory copy."""
    if layout == "integer-keys":
        return INTEGER_KEYS
    if layout == "integer-keys-wide":
        return {**INTEGER_KEYS, "golden_profile_current": WIDE_GOLDEN}
    return {t: f'SELECT * FROM src.idr_out."{t}"' for t in TABLES}


def measure(db: Path, repeat: int, layout: str = "current") -> dict[str, list[float]]:
    """Seconds per table per repetition."""
    return _measure(db, repeat, layout)[1]


def _measure(db: Path, repeat: int, layout: str) -> tuple[dict[str, int], dict[str, list[float]]]:
    """Rows and seconds per repetition of each table written."""
    out_path = db.with_name(db.stem + ".write_floor.duckdb")
    _remove(out_path)
    conn = duckdb.connect()  # in memory: the copies live here
    conn.execute("SET preserve_insertion_order = false")  # as the pipeline's connections
    try:
        conn.execute("ATTACH $p AS src (READ_ONLY)", {"p": str(db)})
        copies = _copies(layout)
        if layout.startswith("integer-keys"):
            conn.execute(_KEYS)
            conn.execute(_RIDS)
        for t, select in copies.items():
            conn.execute(f'CREATE TABLE memory.main."{t}" AS {select}')
        conn.execute("DETACH src")
        rows = {t: int(conn.execute(f'SELECT count(*) FROM memory.main."{t}"').fetchone()[0]) for t in copies}
        times: dict[str, list[float]] = {t: [] for t in copies}
        for _ in range(repeat):
            conn.execute("ATTACH $p AS out", {"p": str(out_path)})
            for t in copies:
                start = time.perf_counter()
                conn.execute(f'CREATE TABLE out.main."{t}" AS SELECT * FROM memory.main."{t}"')
                conn.execute("CHECKPOINT out")
                times[t].append(time.perf_counter() - start)
            conn.execute("DETACH out")
            _remove(out_path)
        return rows, times
    finally:
        conn.close()
        _remove(out_path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("db", type=Path, help="DuckDB file holding a FULL run's idr_out tables")
    ap.add_argument("--repeat", type=int, default=3, help="repetitions; the median is reported (default 3)")
    ap.add_argument(
        "--layout",
        choices=LAYOUTS,
        default="current",
        help="current: the tables as stored; integer-keys: the same facts with entity keys stored once; "
        "integer-keys-wide: and the golden profile as one row per cluster",
    )
    args = ap.parse_args(argv)
    if not args.db.exists():
        print(f"error: {args.db} does not exist (make one with bench/run.py --keep --db PATH)", file=sys.stderr)
        return 2
    if args.repeat < 1:
        print("error: --repeat must be at least 1", file=sys.stderr)
        return 2
    try:
        rows, times = _measure(args.db, args.repeat, args.layout)
    except duckdb.CatalogException as e:
        print(f"error: {args.db} holds no FULL run's state ({e})", file=sys.stderr)
        return 2
    print(f"write floor of {args.db}, layout {args.layout} (median of {args.repeat}, checkpoint included)")
    print(f"  {'table':40s} {'rows':>12s} {'seconds':>8s}")
    total = 0.0
    for t in times:
        med = statistics.median(times[t])
        total += med
        print(f"  {t:40s} {rows[t]:12,} {med:8.2f}")
    print(f"  {'total':40s} {sum(rows.values()):12,} {total:8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
