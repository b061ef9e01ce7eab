-- name: full_proposed
/* Entities no edge links are components of their own (negative labels: union-find and */ /* SQL labels are never negative). */ CREATE TABLE `idr_work`.`wsnap_proposed` AS SELECT i.eid, COALESCE(l.label, -1 - i.eid) AS comp, k.kr, i.old_rid, i.old_ts FROM `idr_work`.`wsnap_ent_ids` AS i JOIN `idr_work`.`wsnap_key_rank` AS k ON k.eid = i.eid LEFT JOIN `idr_work`.`wsnap_cc_labels` AS l ON l.node = i.eid;

-- name: fresh_proposed
/* A first run: eid order is entity_key order, so the eid is the rank. */ CREATE TABLE `idr_work`.`wsnap_proposed` AS SELECT i.eid, COALESCE(l.label, -1 - i.eid) AS comp, i.eid AS kr, CAST(NULL AS INT64) AS old_rid, CAST(NULL AS DATETIME) AS old_ts FROM `idr_work`.`wsnap_ent_ids` AS i LEFT JOIN `idr_work`.`wsnap_cc_labels` AS l ON l.node = i.eid;

-- name: incr_proposed
CREATE TABLE `idr_work`.`wsnap_proposed` AS SELECT s.eid, COALESCE(l.label, -1 - n.node) AS comp, s.kr, s.old_rid, s.old_ts FROM `idr_work`.`wsnap_scope_keys` AS s JOIN `idr_work`.`wsnap_nodes` AS n ON n.eid = s.eid LEFT JOIN `idr_work`.`wsnap_cc_labels` AS l ON l.node = n.node;

-- name: comps
CREATE TABLE `idr_work`.`wsnap_comps` AS SELECT comp, MIN(kr) AS min_kr, COUNT(*) AS size FROM `idr_work`.`wsnap_proposed` GROUP BY comp;

-- name: overlap
CREATE TABLE `idr_work`.`wsnap_overlap` AS SELECT comp, old_rid, COUNT(*) AS n FROM `idr_work`.`wsnap_proposed` WHERE NOT old_rid IS NULL GROUP BY comp, old_rid;

-- name: keep
/* A current cluster's id goes to the proposed cluster holding most of its members */ /* (ties: the one with the smallest member key). A proposed cluster that inherits */ /* several ids keeps the one of the largest current cluster (ties: smallest id). */ CREATE TABLE `idr_work`.`wsnap_keep` AS WITH heir AS (SELECT o.old_rid, o.comp FROM `idr_work`.`wsnap_overlap` AS o JOIN `idr_work`.`wsnap_comps` AS c ON c.comp = o.comp QUALIFY ROW_NUMBER() OVER (PARTITION BY o.old_rid ORDER BY o.n DESC, c.min_kr NULLS LAST) = 1) SELECT h.comp, h.old_rid AS rid FROM heir AS h JOIN idr_state.clusters AS cc ON cc.rid = h.old_rid QUALIFY ROW_NUMBER() OVER (PARTITION BY h.comp ORDER BY cc.cluster_size DESC, h.old_rid NULLS LAST) = 1;

-- name: comp_ids
/* New ids: numbered from the sequence in order of each cluster's smallest member key, */ /* so the same input always gets the same ids. */ CREATE TABLE `idr_work`.`wsnap_comp_ids` AS SELECT c.comp, c.size, c.min_kr, COALESCE(k.rid, @next - 1 + ROW_NUMBER() OVER (PARTITION BY k.rid IS NULL ORDER BY c.min_kr NULLS LAST)) AS rid, k.rid IS NULL AS is_new FROM `idr_work`.`wsnap_comps` AS c LEFT JOIN `idr_work`.`wsnap_keep` AS k ON k.comp = c.comp;

-- name: membership
/* Proposed membership of the scope, with the current id beside it. */ CREATE TABLE `idr_work`.`wsnap_membership` AS SELECT p.eid, c.rid, p.old_rid, p.old_ts, c.size AS cluster_size FROM `idr_work`.`wsnap_proposed` AS p JOIN `idr_work`.`wsnap_comp_ids` AS c ON c.comp = p.comp;

-- name: full_removed
/* FULL only: current members no active source holds any more. */ /* Why: a key the run saw flagged or erased ("idr_work"."wsnap_gone"), else gone from its source. */ CREATE TABLE `idr_work`.`wsnap_removed` AS SELECT e.eid, e.rid AS old_rid, COALESCE(g.reason_no, 2) AS reason_no FROM idr_state.entities AS e LEFT JOIN (SELECT entity_key, MIN(reason_no) AS reason_no FROM `idr_work`.`wsnap_gone` GROUP BY entity_key) AS g ON g.entity_key = e.entity_key WHERE NOT e.rid IS NULL AND NOT e.eid IN (SELECT eid FROM `idr_work`.`wsnap_ent_ids`);

-- name: incr_removed
/* INCR: the members the run removes (soft deletes, erasures, reconciliation). */ CREATE TABLE `idr_work`.`wsnap_removed` AS SELECT eid, old_rid, reason_no FROM `idr_work`.`wsnap_dropped`;

-- name: changed_rids
/* Every id whose member set changes: the old and new id of each moved entity, and */ /* the old id of each removed entity. */ CREATE TABLE `idr_work`.`wsnap_changed_rids` AS SELECT DISTINCT rid FROM (SELECT old_rid AS rid FROM `idr_work`.`wsnap_membership` WHERE old_rid IS DISTINCT FROM rid UNION ALL SELECT rid FROM `idr_work`.`wsnap_membership` WHERE old_rid IS DISTINCT FROM rid UNION ALL SELECT old_rid FROM `idr_work`.`wsnap_removed`) AS t WHERE NOT rid IS NULL;

-- name: full_cluster_links
/* Per component: the edges of its linked values (a star: holders - 1 each) and how many */ /* identifier types they span. Every holder of a value is in one cluster: its anchor's. */ CREATE TABLE `idr_work`.`wsnap_cluster_links` AS SELECT p.comp, SUM(v.holders - 1) AS edges, COUNT(DISTINCT v.type_no) AS diversity FROM `idr_work`.`wsnap_values_new` AS v JOIN `idr_work`.`wsnap_proposed` AS p ON p.eid = v.anchor_eid WHERE v.linked GROUP BY p.comp;

-- name: incr_cluster_links
/* The same over the scope: the re-derived values and the stored ones anchored in it. */ CREATE TABLE `idr_work`.`wsnap_cluster_links` AS SELECT p.comp, SUM(v.holders - 1) AS edges, COUNT(DISTINCT v.type_no) AS diversity FROM (SELECT vid, anchor_eid, holders, type_no FROM `idr_work`.`wsnap_values_new` WHERE linked UNION ALL SELECT s.vid, s.anchor_eid, s.holders, s.type_no FROM idr_state.identifier_values AS s WHERE s.linked AND s.anchor_eid IN (SELECT eid FROM `idr_work`.`wsnap_proposed`) AND NOT s.vid IN (SELECT vid FROM `idr_work`.`wsnap_vals`)) AS v JOIN `idr_work`.`wsnap_proposed` AS p ON p.eid = v.anchor_eid GROUP BY p.comp;

-- name: clusters_new
/* Cluster confidence (the predecessor's weighting): 0.5 x the share of the active rules' */ /* identifier types among the cluster's edges + 0.35 x edge density (edges / (size - 1), */ /* capped at 1) + 0.15 for linking at all; a record alone scores 1. */ CREATE TABLE `idr_work`.`wsnap_clusters_new` AS SELECT c.rid, c.size AS cluster_size, COALESCE(l.edges, 0) AS edge_count, CAST(COALESCE(l.diversity, 0) AS INT64) AS edge_diversity, CASE WHEN c.size > 1 THEN LEAST(1.0, COALESCE(l.edges, 0) / (c.size - 1.0)) ELSE 0.0 END AS match_density, CASE WHEN c.size = 1 THEN 1.0 ELSE ROUND(0.5 * LEAST(1.0, COALESCE(l.diversity, 0) / @rules) + 0.35 * LEAST(1.0, COALESCE(l.edges, 0) / (c.size - 1.0)) + 0.15, 4) END AS confidence_score, CASE WHEN c.size = 1 THEN 'SINGLETON_NO_MATCH_REQUIRED' ELSE CAST(COALESCE(l.diversity, 0) AS STRING) || CASE WHEN COALESCE(l.diversity, 0) = 1 THEN ' identifier type, ' ELSE ' identifier types, ' END || CASE WHEN LEAST(1.0, COALESCE(l.edges, 0) / (c.size - 1.0)) >= 0.8 THEN 'high density' WHEN LEAST(1.0, COALESCE(l.edges, 0) / (c.size - 1.0)) >= 0.5 THEN 'medium density' ELSE 'low density' END END AS primary_reason FROM `idr_work`.`wsnap_comp_ids` AS c LEFT JOIN `idr_work`.`wsnap_cluster_links` AS l ON l.comp = c.comp;
