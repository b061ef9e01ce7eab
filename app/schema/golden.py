"""The golden profile's storage follows the configuration: one row per cluster in
``idr_state.golden`` with a value column ``v<k>`` and a record column ``e<k>`` per
attribute (``idr_state.golden_columns`` maps names to ``k``; a column is added when an
attribute first appears and never renamed), and two views over it:

- ``idr_out.golden_profile_current``: one row per (cluster, attribute), the long form
  users of the predecessor query;
- ``idr_out.golden_profile_wide``: one row per cluster, a column per attribute (and
  ``<attribute>_source_entity_key``), for BI tools.

``sync_golden`` adds columns and re-creates both views when the configured attributes
or their strategies change: at ``idr init``, after a configuration change, and before a
run (a no-op when nothing changed).
"""

from __future__ import annotations

import hashlib
import re

from sqlglot import exp

from app.config.model import IdrConfig, Strategy
from app.platforms.base import Adapter

RID = "'R' || lpad(CAST({c} AS VARCHAR), 11, '0')"
_INFO_KEY = "golden_views"


def _lit(v: str) -> str:
    return exp.Literal.string(v).sql(dialect="duckdb")


def golden_columns(adapter: Adapter) -> dict[str, int]:
    return {
        str(n): int(k) for n, k in adapter.fetchall("SELECT attribute_name, column_no FROM idr_state.golden_columns")
    }


def wide_column_names(names: list[str]) -> dict[str, str]:
    """Attribute name -> column name in the wide view: letters, digits and underscores
    (what every platform accepts unquoted-equivalent), unique, not starting with a digit."""
    out: dict[str, str] = {}
    used = {"resolved_id", "updated_ts"}
    for n in names:
        base = re.sub(r"[^A-Za-z0-9_]", "_", n).lower() or "attr"
        if base[0].isdigit():
            base = f"a_{base}"
        col, i = base, 2
        while col in used or f"{col}_source_entity_key" in used:
            col, i = f"{base}_{i}", i + 1
        used |= {col, f"{col}_source_entity_key"}
        out[n] = col
    return out


def view_sql(adapter: Adapter, config: IdrConfig, columns: dict[str, int]) -> tuple[str, str]:
    """(long view, wide view) for the configured attributes, canonical SQL."""
    names = sorted({m.attribute_name for m in config.attribute_mappings})
    strategies = {s.attribute_name: str(Strategy(s.strategy)) for s in config.survivorship_rules}
    parts = []
    for n in names:
        k = columns[n]
        parts.append(
            f"SELECT {RID.format(c='g.rid')} AS resolved_id, {_lit(n)} AS attribute_name, g.v{k} AS attribute_value, "
            "e.entity_key AS source_entity_key, split_part(e.entity_key, ':', 1) AS source_table_id, "
            f"{_lit(strategies.get(n, str(Strategy.RECENCY)))} AS strategy, g.updated_ts "
            f"FROM idr_state.golden AS g JOIN idr_state.entities AS e ON e.eid = g.e{k}"
        )
    if not parts:
        parts.append(
            "SELECT CAST(NULL AS VARCHAR) AS resolved_id, CAST(NULL AS VARCHAR) AS attribute_name, "
            "CAST(NULL AS VARCHAR) AS attribute_value, CAST(NULL AS VARCHAR) AS source_entity_key, "
            "CAST(NULL AS VARCHAR) AS source_table_id, CAST(NULL AS VARCHAR) AS strategy, "
            "CAST(NULL AS TIMESTAMP) AS updated_ts FROM idr_state.golden AS g WHERE 1 = 0"
        )
    long = "CREATE OR REPLACE VIEW idr_out.golden_profile_current AS " + " UNION ALL ".join(parts)
    wide_cols = wide_column_names(names)
    sel = [f"{RID.format(c='g.rid')} AS resolved_id"]
    joins = []
    for i, n in enumerate(names):
        k = columns[n]
        col = adapter.ident(wide_cols[n])
        src = adapter.ident(f"{wide_cols[n]}_source_entity_key")
        sel += [f"g.v{k} AS {col}", f"s{i}.entity_key AS {src}"]
        joins.append(f"LEFT JOIN idr_state.entities AS s{i} ON s{i}.eid = g.e{k}")
    sel.append("g.updated_ts")
    wide = (
        f"CREATE OR REPLACE VIEW idr_out.golden_profile_wide AS SELECT {', '.join(sel)} "
        f"FROM idr_state.golden AS g {' '.join(joins)}"
    )
    return long, wide


def _columns_and_digest(adapter: Adapter) -> tuple[dict[str, int], str | None]:
    """golden_columns and the recorded views digest in one read (a round trip each on a
    warehouse)."""
    rows = adapter.fetchall(
        "SELECT attribute_name, column_no, CAST(NULL AS VARCHAR) AS digest FROM idr_state.golden_columns "
        "UNION ALL SELECT CAST(NULL AS VARCHAR), CAST(NULL AS INTEGER), info_value FROM idr_state.schema_info "
        "WHERE info_key = $k",
        {"k": _INFO_KEY},
    )
    columns = {str(n): int(k) for n, k, _ in rows if n is not None}
    return columns, next((str(d) for n, _, d in rows if n is None and d is not None), None)


def ensure_columns(
    adapter: Adapter, config: IdrConfig, columns: dict[str, int] | None = None
) -> tuple[dict[str, int], bool]:
    """Give every configured attribute its columns in idr_state.golden. Returns (the
    mapping, whether columns were added); ``columns``: the mapping if already read."""
    columns = golden_columns(adapter) if columns is None else dict(columns)
    names = sorted({m.attribute_name for m in config.attribute_mappings})
    missing = [n for n in names if n not in columns]
    if missing:
        # Columns first, then their mapping rows: a retry after a failure in between finds
        # the columns and only adds the mapping.
        have = set(adapter.columns("idr_state", "golden"))
        nxt = max(columns.values(), default=-1) + 1
        for n in missing:
            columns[n] = nxt
            nxt += 1
            for col, typ in ((f"v{columns[n]}", "VARCHAR"), (f"e{columns[n]}", "BIGINT")):
                if col not in have:
                    adapter.execute(f"ALTER TABLE idr_state.golden ADD COLUMN {col} {typ}")
        for n in missing:
            adapter.execute(
                "INSERT INTO idr_state.golden_columns (attribute_name, column_no) VALUES ($n, $k)",
                {"n": n, "k": columns[n]},
            )
    return columns, bool(missing)


def sync_golden(adapter: Adapter, config: IdrConfig, force: bool = False) -> bool:
    """Make the golden table's columns and both views match ``config``. Returns True
    when something changed. The views are re-created when their definition differs from
    the one recorded in idr_state.schema_info (or with ``force``: `idr init`), so runs do
    not replace them needlessly while others read them. DDL: run it outside a transaction."""
    return sync_golden_columns(adapter, config, force)[0]


def sync_golden_columns(adapter: Adapter, config: IdrConfig, force: bool = False) -> tuple[bool, dict[str, int]]:
    """``sync_golden``, also returning the attribute -> column number mapping it ensured:
    a run keeps it for its publish (a number, once given, never changes)."""
    stored, current = _columns_and_digest(adapter)
    columns, added = ensure_columns(adapter, config, stored)
    names = sorted({m.attribute_name for m in config.attribute_mappings})
    long, wide = view_sql(adapter, config, columns)
    digest = hashlib.sha256((long + wide).encode()).hexdigest()
    views = {n for n, is_view in adapter.list_relations("idr_out", "golden_profile_") if is_view}
    views_exist = {"golden_profile_current", "golden_profile_wide"} <= views
    if current == digest and views_exist and not added and not force:
        return False, columns
    adapter.execute(long)
    adapter.execute(wide)
    strategies = {s.attribute_name: str(Strategy(s.strategy)) for s in config.survivorship_rules}
    adapter.execute("UPDATE idr_state.golden_columns SET active = FALSE WHERE active")
    adapter.executemany(
        "UPDATE idr_state.golden_columns SET active = TRUE, strategy = $s WHERE attribute_name = $n",
        [{"n": n, "s": strategies.get(n, str(Strategy.RECENCY))} for n in names],
    )
    adapter.execute("DELETE FROM idr_state.schema_info WHERE info_key = $k", {"k": _INFO_KEY})
    adapter.execute(
        "INSERT INTO idr_state.schema_info (info_key, info_value) VALUES ($k, $v)", {"k": _INFO_KEY, "v": digest}
    )
    return True, columns
