-- name: full_proposed
-- Entities no edge links are components of their own (negative labels: union-find and
-- SQL labels are never negative).
CREATE TABLE temp.main."wsnap_proposed" AS
SELECT i.eid, coalesce(l.label, -1 - i.eid) AS comp, k.kr, i.old_rid, i.old_ts
FROM temp.main."wsnap_ent_ids" AS i
JOIN temp.main."wsnap_key_rank" AS k ON k.eid = i.eid
LEFT JOIN temp.main."wsnap_cc_labels" AS l ON l.node = i.eid;

-- name: fresh_proposed
-- A first run: eid order is entity_key order, so the eid is the rank.
CREATE TABLE temp.main."wsnap_proposed" AS
SELECT i.eid, coalesce(l.label, -1 - i.eid) AS comp, i.eid AS kr, CAST(NULL AS BIGINT) AS old_rid,
       CAST(NULL AS TIMESTAMP) AS old_ts
FROM temp.main."wsnap_ent_ids" AS i
LEFT JOIN temp.main."wsnap_cc_labels" AS l ON l.node = i.eid;

-- name: incr_proposed
CREATE TABLE temp.main."wsnap_proposed" AS
SELECT s.eid, coalesce(l.label, -1 - n.node) AS comp, s.kr, s.old_rid, s.old_ts
FROM temp.main."wsnap_scope_keys" AS s
JOIN temp.main."wsnap_nodes" AS n ON n.eid = s.eid
LEFT JOIN temp.main."wsnap_cc_labels" AS l ON l.node = n.node;

-- name: comps
CREATE TABLE temp.main."wsnap_comps" AS
SELECT comp, min(kr) AS min_kr, count(*) AS size
FROM temp.main."wsnap_proposed"
GROUP BY comp;

-- name: overlap
CREATE TABLE temp.main."wsnap_overlap" AS
SELECT comp, old_rid, count(*) AS n
FROM temp.main."wsnap_proposed"
WHERE old_rid IS NOT NULL
GROUP BY comp, old_rid;

-- name: keep
-- A current cluster's id goes to the proposed cluster holding most of its members
-- (ties: the one with the smallest member key). A proposed cluster that inherits
-- several ids keeps the one of the largest current cluster (ties: smallest id).
CREATE TABLE temp.main."wsnap_keep" AS
WITH heir AS (
    SELECT o.old_rid, o.comp
    FROM temp.main."wsnap_overlap" AS o
    JOIN temp.main."wsnap_comps" AS c ON c.comp = o.comp
    QUALIFY row_number() OVER (PARTITION BY o.old_rid ORDER BY o.n DESC, c.min_kr) = 1
)
SELECT h.comp, h.old_rid AS rid
FROM heir AS h
JOIN idr_state.clusters AS cc ON cc.rid = h.old_rid
QUALIFY row_number() OVER (PARTITION BY h.comp ORDER BY cc.cluster_size DESC, h.old_rid) = 1;

-- name: comp_ids
-- New ids: numbered from the sequence in order of each cluster's smallest member key,
-- so the same input always gets the same ids.
CREATE TABLE temp.main."wsnap_comp_ids" AS
SELECT c.comp, c.size, c.min_kr,
       coalesce(k.rid, $next - 1 + row_number() OVER (PARTITION BY k.rid IS NULL ORDER BY c.min_kr)) AS rid,
       k.rid IS NULL AS is_new
FROM temp.main."wsnap_comps" AS c
LEFT JOIN temp.main."wsnap_keep" AS k ON k.comp = c.comp;

-- name: membership
-- Proposed membership of the scope, with the current id beside it.
CREATE TABLE temp.main."wsnap_membership" AS
SELECT p.eid, c.rid, p.old_rid, p.old_ts, c.size AS cluster_size
FROM temp.main."wsnap_proposed" AS p
JOIN temp.main."wsnap_comp_ids" AS c ON c.comp = p.comp;

-- name: full_removed
-- FULL only: current members no active source holds any more.
-- Why: a key the run saw flagged or erased (temp.main."wsnap_gone"), else gone from its source.
CREATE TABLE temp.main."wsnap_removed" AS
SELECT e.eid, e.rid AS old_rid, coalesce(g.reason_no, 2) AS reason_no
FROM idr_state.entities AS e
LEFT JOIN (SELECT entity_key, min(reason_no) AS reason_no FROM temp.main."wsnap_gone" GROUP BY entity_key) AS g
  ON g.entity_key = e.entity_key
WHERE e.rid IS NOT NULL AND e.eid NOT IN (SELECT eid FROM temp.main."wsnap_ent_ids");

-- name: incr_removed
-- INCR: the members the run removes (soft deletes, erasures, reconciliation).
CREATE TABLE temp.main."wsnap_removed" AS
SELECT eid, old_rid, reason_no FROM temp.main."wsnap_dropped";

-- name: changed_rids
-- Every id whose member set changes: the old and new id of each moved entity, and
-- the old id of each removed entity.
CREATE TABLE temp.main."wsnap_changed_rids" AS
SELECT DISTINCT rid FROM (
    SELECT old_rid AS rid FROM temp.main."wsnap_membership" WHERE old_rid IS DISTINCT FROM rid
    UNION ALL
    SELECT rid FROM temp.main."wsnap_membership" WHERE old_rid IS DISTINCT FROM rid
    UNION ALL
    SELECT old_rid FROM temp.main."wsnap_removed") AS t
WHERE rid IS NOT NULL;

-- name: full_cluster_links
-- Per component: the edges of its linked values (a star: holders - 1 each) and how many
-- identifier types they span. Every holder of a value is in one cluster: its anchor's.
CREATE TABLE temp.main."wsnap_cluster_links" AS
SELECT p.comp, sum(v.holders - 1) AS edges, count(DISTINCT v.type_no) AS diversity
FROM temp.main."wsnap_values_new" AS v
JOIN temp.main."wsnap_proposed" AS p ON p.eid = v.anchor_eid
WHERE v.linked
GROUP BY p.comp;

-- name: incr_cluster_links
-- The same over the scope: the re-derived values and the stored ones anchored in it.
CREATE TABLE temp.main."wsnap_cluster_links" AS
SELECT p.comp, sum(v.holders - 1) AS edges, count(DISTINCT v.type_no) AS diversity
FROM (
    SELECT vid, anchor_eid, holders, type_no FROM temp.main."wsnap_values_new" WHERE linked
    UNION ALL
    SELECT s.vid, s.anchor_eid, s.holders, s.type_no
    FROM idr_state.identifier_values AS s
    WHERE s.linked AND s.anchor_eid IN (SELECT eid FROM temp.main."wsnap_proposed")
      AND s.vid NOT IN (SELECT vid FROM temp.main."wsnap_vals")) AS v
JOIN temp.main."wsnap_proposed" AS p ON p.eid = v.anchor_eid
GROUP BY p.comp;

-- name: clusters_new
-- Cluster confidence (the predecessor's weighting): 0.5 x the share of the active rules'
-- identifier types among the cluster's edges + 0.35 x edge density (edges / (size - 1),
-- capped at 1) + 0.15 for linking at all; a record alone scores 1.
CREATE TABLE temp.main."wsnap_clusters_new" AS
SELECT c.rid, c.size AS cluster_size, coalesce(l.edges, 0) AS edge_count,
       CAST(coalesce(l.diversity, 0) AS INTEGER) AS edge_diversity,
       CASE WHEN c.size > 1 THEN least(1.0, coalesce(l.edges, 0) / (c.size - 1.0)) ELSE 0.0 END AS match_density,
       CASE WHEN c.size = 1 THEN 1.0
            ELSE round(0.5 * least(1.0, coalesce(l.diversity, 0) / $rules)
                       + 0.35 * least(1.0, coalesce(l.edges, 0) / (c.size - 1.0)) + 0.15, 4) END AS confidence_score,
       CASE WHEN c.size = 1 THEN 'SINGLETON_NO_MATCH_REQUIRED'
            ELSE CAST(coalesce(l.diversity, 0) AS VARCHAR)
                 || CASE WHEN coalesce(l.diversity, 0) = 1 THEN ' identifier type, ' ELSE ' identifier types, ' END
                 || CASE WHEN least(1.0, coalesce(l.edges, 0) / (c.size - 1.0)) >= 0.8 THEN 'high density'
                         WHEN least(1.0, coalesce(l.edges, 0) / (c.size - 1.0)) >= 0.5 THEN 'medium density'
                         ELSE 'low density' END END AS primary_reason
FROM temp.main."wsnap_comp_ids" AS c
LEFT JOIN temp.main."wsnap_cluster_links" AS l ON l.comp = c.comp;
