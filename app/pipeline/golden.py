"""Golden profile: one value per (cluster, attribute), chosen by survivorship rules.

Strategies (ties always fall through to a deterministic order):
- RECENCY: newest record (``recency_field`` attribute if set, else the source watermark),
  then most trusted source, then smallest value.
- SOURCE_PRIORITY: position in ``source_priority_list`` (else ``source.trust_rank``,
  lower = more trusted), then newest, then smallest value.
- MOST_FREQUENT: the value held by most members, then newest, then smallest value.
"""

from __future__ import annotations

from app.config.model import Strategy
from app.pipeline.context import RunContext


def build_golden(ctx: RunContext) -> int:
    """Fill {w.golden} for every proposed cluster in scope. Returns rows written."""
    a = ctx.adapter
    cfg = ctx.config
    surv = {s.attribute_name: s for s in cfg.survivorship_rules}
    trust = {s.table_id: s.trust_rank for s in cfg.source_trust if s.is_active}
    ctx.exec(f"CREATE TABLE {ctx.w('surv')} (attribute_name VARCHAR, strategy VARCHAR, recency_field VARCHAR)")
    ctx.exec(f"CREATE TABLE {ctx.w('src_rank')} (attribute_name VARCHAR, table_id VARCHAR, src_rank INTEGER)")
    attr_names = sorted({m.attribute_name for m in cfg.attribute_mappings})
    surv_rows, rank_rows = [], []
    for name in attr_names:
        rule = surv.get(name)
        strategy = rule.strategy if rule else Strategy.RECENCY
        surv_rows.append({"a": name, "s": str(strategy), "r": rule.recency_field if rule else None})
        listed = [t.strip() for t in (rule.source_priority_list or "").split(",") if t.strip()] if rule else []
        for src in cfg.sources:
            rank = listed.index(src.table_id) if src.table_id in listed else len(listed) + trust.get(src.table_id, 100)
            rank_rows.append({"a": name, "t": src.table_id, "r": rank})
    a.executemany(f"INSERT INTO {ctx.w('surv')} VALUES ($a, $s, $r)", surv_rows)
    a.executemany(f"INSERT INTO {ctx.w('src_rank')} VALUES ($a, $t, $r)", rank_rows)

    # Attribute values of every entity in scope: the delta's fresh values, stored
    # values for the rest (FULL: the delta is everything).
    if ctx.full:
        ctx.exec(f"CREATE VIEW {ctx.w('attr_scope')} AS SELECT * FROM {ctx.w('attributes')}")
    else:
        ctx.exec(
            f"CREATE TABLE {ctx.w('attr_scope')} AS "
            "SELECT c.entity_key, c.table_id, c.attribute_name, c.attribute_value, c.record_ts "
            "FROM idr_out.entity_attributes_current AS c "
            f"WHERE c.entity_key IN (SELECT entity_key FROM {ctx.w('scope')}) "
            f"AND NOT EXISTS (SELECT 1 FROM {ctx.w('entities')} AS e WHERE e.entity_key = c.entity_key) "
            f"UNION ALL SELECT entity_key, table_id, attribute_name, attribute_value, record_ts "
            f"FROM {ctx.w('attributes')}"
        )
    uses_recency_field = any(s["r"] for s in surv_rows)
    uses_freq = any(s["s"] == Strategy.MOST_FREQUENT for s in surv_rows)
    recency = (
        "CASE WHEN s.recency_field IS NULL THEN x.record_ts ELSE TRY_CAST(rf.attribute_value AS TIMESTAMP) END"
        if uses_recency_field
        else "x.record_ts"
    )
    rf_join = (
        f"LEFT JOIN {ctx.w('attr_scope')} AS rf ON rf.entity_key = x.entity_key AND rf.attribute_name = s.recency_field"
        if uses_recency_field
        else ""
    )
    freq = "count(*) OVER (PARTITION BY comp, attribute_name, attribute_value)" if uses_freq else "1"
    ctx.exec(
        f"""
        CREATE TABLE {ctx.w("golden")} AS
        WITH base AS (
            SELECT m.comp, x.entity_key, x.table_id, x.attribute_name, x.attribute_value,
                   s.strategy, coalesce(r.src_rank, 1000000) AS src_rank, {recency} AS recency
            FROM {ctx.w("attr_scope")} AS x
            JOIN {ctx.w("proposed")} AS m ON m.entity_key = x.entity_key
            JOIN {ctx.w("surv")} AS s ON s.attribute_name = x.attribute_name
            LEFT JOIN {ctx.w("src_rank")} AS r
              ON r.attribute_name = x.attribute_name AND r.table_id = x.table_id
            {rf_join}
        ), ranked AS (
            SELECT *, {freq} AS freq FROM base
        )
        SELECT c.resolved_id, w.attribute_name, w.attribute_value, w.source_entity_key, w.source_table_id,
               w.strategy
        FROM (
          SELECT comp, attribute_name, attribute_value, entity_key AS source_entity_key,
                 table_id AS source_table_id, strategy
          FROM ranked
          QUALIFY row_number() OVER (
            PARTITION BY comp, attribute_name
            ORDER BY CASE WHEN strategy = 'MOST_FREQUENT' THEN -freq ELSE 0 END,
                     CASE WHEN strategy = 'SOURCE_PRIORITY' THEN src_rank ELSE 0 END,
                     recency DESC NULLS LAST, src_rank, attribute_value, entity_key) = 1
        ) AS w
        JOIN {ctx.w("comp_ids")} AS c ON c.comp = w.comp
        """
    )
    return ctx.count(ctx.w("golden"))
