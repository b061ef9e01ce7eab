"""Upgrade in place of a database written by engine v1, whose public tables
(membership, clusters, edges, identifiers, golden profile) were its state, as strings.

``idr init`` converts that state into idr_state (every key and value once, integers
everywhere else) and keeps the v1 tables, renamed ``<name>_v1``, until the user drops them;
the public names become views over idr_state. Membership and resolved ids are carried
over exactly, so the next run (INCR or FULL) continues from the same prior state. The
conversion is one transaction where the platform has transactional DDL (DuckDB); else
it is idempotent: the state tables are rebuilt from the v1 tables on every attempt until
the renames at the end succeed.
"""

from __future__ import annotations

from app.config.model import IdrConfig
from app.platforms.base import Adapter
from app.schema import entity_lookup
from app.schema.golden import ensure_columns

V1_TABLES: tuple[str, ...] = (
    "identity_resolved_membership_current",
    "identity_clusters_current",
    "identity_edges_current",
    "identifiers_current",
    "golden_profile_current",
)


def v1_tables(adapter: Adapter) -> list[str]:
    """The v1 state tables present as tables (not views) in idr_out."""
    tables = set(adapter.list_tables("idr_out"))
    return [t for t in V1_TABLES if t in tables]


def _rid(col: str) -> str:
    return f"CAST(substr({col}, 2) AS BIGINT)"


_STATE = ("entities", "identifier_values", "value_holders", "clusters", "golden")


def upgrade_v1(adapter: Adapter, config: IdrConfig) -> list[str]:
    present = v1_tables(adapter)
    if "identity_resolved_membership_current" not in present:
        return []
    has = set(present)
    ids = "idr_out.identifiers_current" if "identifiers_current" in has else None
    edges = "idr_out.identity_edges_current" if "identity_edges_current" in has else None
    with adapter.transaction() if adapter.platform == "duckdb" else _nothing():
        for t in (*_STATE, "identifier_types", "entity_lookup"):
            adapter.execute(f"DELETE FROM idr_state.{t}")
        adapter.execute("DELETE FROM idr_state.counters")
        # Entities: every key of the membership (and, defensively, of the stored identifiers).
        keys = ["SELECT entity_key FROM idr_out.identity_resolved_membership_current"]
        if ids:
            keys.append(f"SELECT entity_key FROM {ids}")
        if edges:
            keys += [f"SELECT left_entity_key FROM {edges}", f"SELECT right_entity_key FROM {edges}"]
        adapter.execute(
            "INSERT INTO idr_state.entities (eid, entity_key, rid, updated_ts) "
            f"SELECT k.eid, k.entity_key, {_rid('m.resolved_id')}, coalesce(m.updated_ts, CURRENT_TIMESTAMP) "
            "FROM (SELECT entity_key, row_number() OVER (ORDER BY entity_key) - 1 AS eid "
            f"      FROM ({' UNION '.join(keys)}) AS u) AS k "
            "LEFT JOIN idr_out.identity_resolved_membership_current AS m ON m.entity_key = k.entity_key"
        )
        entity_lookup.forget(adapter)  # init rebuilds it from the new dictionary
        # Holders of every stored value: identifiers rows, and both ends of every edge.
        holders = []
        if ids:
            holders.append(
                "SELECT entity_key, identifier_type, identifier_value_norm, CAST(NULL AS VARCHAR) AS rule_id, "
                f"CAST(NULL AS TIMESTAMP) AS first_seen_ts, updated_ts AS seen_ts FROM {ids}"
            )
        if edges:
            holders += [
                "SELECT left_entity_key, identifier_type, identifier_value_norm, rule_id, CAST(NULL AS TIMESTAMP), "
                f"last_seen_ts FROM {edges}",
                "SELECT right_entity_key, identifier_type, identifier_value_norm, rule_id, first_seen_ts, "
                f"last_seen_ts FROM {edges}",
            ]
        if holders:
            adapter.execute(
                "CREATE TABLE idr_state.v1_holders AS "
                "SELECT e.eid, h.entity_key, h.identifier_type, h.identifier_value_norm, max(h.rule_id) AS rule_id, "
                "max(h.first_seen_ts) AS first_seen_ts, max(h.seen_ts) AS seen_ts "
                f"FROM ({' UNION ALL '.join(holders)}) AS h "
                "JOIN idr_state.entities AS e ON e.entity_key = h.entity_key "
                "GROUP BY e.eid, h.entity_key, h.identifier_type, h.identifier_value_norm"
            )
            adapter.execute(
                "CREATE TABLE idr_state.v1_values AS "
                "SELECT row_number() OVER (ORDER BY identifier_type, identifier_value_norm) - 1 AS vid, "
                "identifier_type, identifier_value_norm, count(*) AS holders, min(entity_key) AS anchor_key, "
                "max(rule_id) AS rule_id, max(seen_ts) AS updated_ts "
                "FROM idr_state.v1_holders GROUP BY identifier_type, identifier_value_norm"
            )
            # Types numbered in name order; each keeps the rule its edges name (else the
            # active rule of that type).
            adapter.execute(
                "INSERT INTO idr_state.identifier_types (type_no, identifier_type, rule_id) "
                "SELECT row_number() OVER (ORDER BY t.identifier_type) - 1, t.identifier_type, "
                "coalesce(t.rule_id, r.rule_id) "
                "FROM (SELECT identifier_type, max(rule_id) AS rule_id FROM idr_state.v1_values "
                "      GROUP BY identifier_type) AS t "
                "LEFT JOIN (SELECT identifier_type, max(rule_id) AS rule_id FROM idr_meta.rule WHERE is_active "
                "           GROUP BY identifier_type) AS r ON r.identifier_type = t.identifier_type"
            )
            adapter.execute(
                "INSERT INTO idr_state.identifier_values "
                "(vid, type_no, value_norm, holders, anchor_eid, linked, updated_ts) "
                "SELECT v.vid, t.type_no, v.identifier_value_norm, v.holders, e.eid, v.rule_id IS NOT NULL, "
                "v.updated_ts "
                "FROM idr_state.v1_values AS v JOIN idr_state.entities AS e ON e.entity_key = v.anchor_key "
                "JOIN idr_state.identifier_types AS t ON t.identifier_type = v.identifier_type"
            )
            adapter.execute(
                "INSERT INTO idr_state.value_holders (vid, eid, first_seen_ts) "
                "SELECT v.vid, h.eid, h.first_seen_ts FROM idr_state.v1_holders AS h "
                "JOIN idr_state.v1_values AS v ON v.identifier_type = h.identifier_type "
                "AND v.identifier_value_norm = h.identifier_value_norm WHERE v.holders >= 2"
            )
            adapter.execute("DROP TABLE idr_state.v1_holders")
            adapter.execute("DROP TABLE idr_state.v1_values")
        # Clusters, with the confidence figures v1 did not have.
        adapter.execute(
            "INSERT INTO idr_state.clusters (rid, cluster_size, edge_count, edge_diversity, match_density, "
            "confidence_score, primary_reason, updated_ts) "
            f"SELECT {_rid('c.resolved_id')}, c.cluster_size, coalesce(l.edges, 0), coalesce(l.diversity, 0), "
            "CASE WHEN c.cluster_size > 1 THEN least(1.0, coalesce(l.edges, 0) / (c.cluster_size - 1.0)) ELSE 0 END, "
            "CASE WHEN c.cluster_size = 1 THEN 1.0 ELSE round(0.5 * least(1.0, coalesce(l.diversity, 0) / $rules) "
            "+ 0.35 * least(1.0, coalesce(l.edges, 0) / (c.cluster_size - 1.0)) + 0.15, 4) END, "
            "CASE WHEN c.cluster_size = 1 THEN 'SINGLETON_NO_MATCH_REQUIRED' ELSE "
            "CAST(coalesce(l.diversity, 0) AS VARCHAR) || CASE WHEN coalesce(l.diversity, 0) = 1 "
            "THEN ' identifier type, ' ELSE ' identifier types, ' END || CASE WHEN least(1.0, coalesce(l.edges, 0) "
            "/ (c.cluster_size - 1.0)) >= 0.8 THEN 'high density' WHEN least(1.0, coalesce(l.edges, 0) / "
            "(c.cluster_size - 1.0)) >= 0.5 THEN 'medium density' ELSE 'low density' END END, c.updated_ts "
            "FROM idr_out.identity_clusters_current AS c "
            "LEFT JOIN (SELECT e.rid, sum(v.holders - 1) AS edges, count(DISTINCT v.type_no) AS diversity "
            "           FROM idr_state.identifier_values AS v JOIN idr_state.entities AS e ON e.eid = v.anchor_eid "
            "           WHERE v.linked GROUP BY e.rid) AS l "
            f"ON l.rid = {_rid('c.resolved_id')}",
            {"rules": float(max(1, len([r for r in config.rules if r.is_active])))},
        )
        # The golden profile: long rows pivoted into one row per cluster.
        cols, _ = ensure_columns(adapter, config)
        if "golden_profile_current" in has:
            names = sorted({m.attribute_name for m in config.attribute_mappings})
            if names:
                from sqlglot import exp

                name = {n: exp.Literal.string(n).sql("duckdb") for n in names}
                sel = ", ".join(
                    f"max(CASE WHEN g.attribute_name = {name[n]} THEN g.attribute_value END) AS v{cols[n]}, "
                    f"max(CASE WHEN g.attribute_name = {name[n]} THEN e.eid END) AS e{cols[n]}"
                    for n in names
                )
                target = ", ".join(f"v{cols[n]}, e{cols[n]}" for n in names)
                adapter.execute(
                    f"INSERT INTO idr_state.golden (rid, updated_ts, {target}) "
                    f"SELECT {_rid('g.resolved_id')}, max(g.updated_ts), {sel} "
                    "FROM idr_out.golden_profile_current AS g "
                    "LEFT JOIN idr_state.entities AS e ON e.entity_key = g.source_entity_key "
                    "GROUP BY g.resolved_id"
                )
        adapter.execute(
            "INSERT INTO idr_state.counters (counter_name, next_value) "
            "SELECT 'eid', coalesce(max(eid), -1) + 1 FROM idr_state.entities"
        )
        adapter.execute(
            "INSERT INTO idr_state.counters (counter_name, next_value) "
            "SELECT 'vid', coalesce(max(vid), -1) + 1 FROM idr_state.identifier_values"
        )
        for t in present:
            adapter.execute(f"ALTER TABLE idr_out.{t} RENAME TO {adapter.ident(t + '_v1')}")
    return [f"upgraded the v1 state ({', '.join(present)}) to idr_state; the old tables are kept as <name>_v1"]


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None
