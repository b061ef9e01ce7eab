-- name: flows
CREATE TABLE temp.main."wsnap_flows" AS
SELECT old_rid, rid AS new_rid, count(*) AS n
FROM temp.main."wsnap_membership"
GROUP BY old_rid, rid
UNION ALL
SELECT old_rid, CAST(NULL AS BIGINT), count(*) FROM temp.main."wsnap_removed" GROUP BY old_rid;

-- name: split_old
-- Current clusters whose (still present) members land in more than one proposed cluster.
CREATE TABLE temp.main."wsnap_split_old" AS
SELECT old_rid FROM temp.main."wsnap_flows"
WHERE old_rid IS NOT NULL AND new_rid IS NOT NULL
GROUP BY old_rid HAVING count(*) > 1;

-- name: merged_new
-- Proposed clusters that combine members of more than one current cluster.
CREATE TABLE temp.main."wsnap_merged_new" AS
SELECT new_rid FROM temp.main."wsnap_flows"
WHERE old_rid IS NOT NULL AND new_rid IS NOT NULL
GROUP BY new_rid HAVING count(*) > 1;

-- name: full_diff_keys
CREATE VIEW temp.main."wsnap_diff_keys" AS
SELECT eid, entity_key FROM temp.main."wsnap_ent_ids"
UNION ALL
SELECT e.eid, e.entity_key FROM idr_state.entities AS e WHERE e.eid IN (SELECT eid FROM temp.main."wsnap_removed");

-- name: incr_diff_keys
CREATE VIEW temp.main."wsnap_diff_keys" AS
SELECT eid, entity_key FROM temp.main."wsnap_scope_keys"
UNION ALL
SELECT e.eid, e.entity_key FROM idr_state.entities AS e WHERE e.eid IN (SELECT eid FROM temp.main."wsnap_removed");

-- name: results_build
-- Built before the diff transaction, so the summary counts read a work table, not rows
-- the transaction itself wrote (BigQuery scripts cannot read their own writes).
CREATE TABLE temp.main."wsnap_results" AS
SELECT k.entity_key, m.old_rid AS current_rid, m.rid AS proposed_rid,
       CASE WHEN m.old_rid IS NULL THEN 'NEW'
            WHEN s.old_rid IS NOT NULL THEN 'SPLIT'
            WHEN g.new_rid IS NOT NULL THEN 'MERGED'
            WHEN m.old_rid <> m.rid THEN 'MOVED'
            ELSE 'UNCHANGED' END AS change_type,
       c.cluster_size AS current_cluster_size, m.cluster_size AS proposed_cluster_size
FROM temp.main."wsnap_membership" AS m
JOIN temp.main."wsnap_diff_keys" AS k ON k.eid = m.eid
LEFT JOIN temp.main."wsnap_split_old" AS s ON s.old_rid = m.old_rid
LEFT JOIN temp.main."wsnap_merged_new" AS g ON g.new_rid = m.rid
LEFT JOIN idr_state.clusters AS c ON c.rid = m.old_rid
UNION ALL
SELECT k.entity_key, r.old_rid, CAST(NULL AS BIGINT), 'REMOVED', c.cluster_size, CAST(NULL AS BIGINT)
FROM temp.main."wsnap_removed" AS r
JOIN temp.main."wsnap_diff_keys" AS k ON k.eid = r.eid
LEFT JOIN idr_state.clusters AS c ON c.rid = r.old_rid;

-- name: results
INSERT INTO idr_out.dry_run_results
    (run_id, entity_key, current_resolved_id, proposed_resolved_id, change_type,
     current_cluster_size, proposed_cluster_size, created_at)
SELECT $run_id, entity_key,
       CASE WHEN current_rid IS NOT NULL THEN 'R' || lpad(CAST(current_rid AS VARCHAR), 11, '0') END,
       CASE WHEN proposed_rid IS NOT NULL THEN 'R' || lpad(CAST(proposed_rid AS VARCHAR), 11, '0') END,
       change_type, current_cluster_size, proposed_cluster_size, $now
FROM temp.main."wsnap_results";

-- name: cluster_changes
-- One row per flow that touches a changed cluster: who goes where, with sizes. Members
-- that keep their id (old = new) are counted in members, not in members_moved.
INSERT INTO idr_out.dry_run_cluster_changes
    (run_id, current_resolved_id, proposed_resolved_id, members, members_moved, current_cluster_size,
     proposed_cluster_size, change_type, created_at)
SELECT $run_id,
       CASE WHEN f.old_rid IS NOT NULL THEN 'R' || lpad(CAST(f.old_rid AS VARCHAR), 11, '0') END,
       CASE WHEN f.new_rid IS NOT NULL THEN 'R' || lpad(CAST(f.new_rid AS VARCHAR), 11, '0') END,
       f.n, CASE WHEN f.old_rid = f.new_rid THEN 0 ELSE f.n END, c.cluster_size, p.size,
       CASE WHEN f.old_rid IS NULL THEN 'NEW'
            WHEN f.new_rid IS NULL THEN 'REMOVED'
            WHEN s.old_rid IS NOT NULL THEN 'SPLIT'
            WHEN g.new_rid IS NOT NULL THEN 'MERGED'
            WHEN f.old_rid <> f.new_rid THEN 'MOVED'
            ELSE 'UNCHANGED' END,
       $now
FROM temp.main."wsnap_flows" AS f
LEFT JOIN temp.main."wsnap_split_old" AS s ON s.old_rid = f.old_rid
LEFT JOIN temp.main."wsnap_merged_new" AS g ON g.new_rid = f.new_rid
LEFT JOIN idr_state.clusters AS c ON c.rid = f.old_rid
LEFT JOIN temp.main."wsnap_comp_ids" AS p ON p.rid = f.new_rid
WHERE f.old_rid IN (SELECT rid FROM temp.main."wsnap_changed_rids")
   OR f.new_rid IN (SELECT rid FROM temp.main."wsnap_changed_rids");

-- name: counts
SELECT count(*),
       count(*) FILTER (WHERE change_type = 'NEW'),
       count(*) FILTER (WHERE change_type = 'MOVED'),
       count(*) FILTER (WHERE change_type = 'MERGED'),
       count(*) FILTER (WHERE change_type = 'SPLIT'),
       count(*) FILTER (WHERE change_type = 'REMOVED'),
       count(*) FILTER (WHERE change_type = 'UNCHANGED')
FROM temp.main."wsnap_results";

-- name: merged_clusters
-- Current clusters absorbed into another: their id does not survive and their members
-- land in a proposed cluster that combines several current clusters.
SELECT count(DISTINCT f.old_rid)
FROM temp.main."wsnap_flows" AS f
JOIN temp.main."wsnap_merged_new" AS g ON g.new_rid = f.new_rid
WHERE f.old_rid NOT IN (SELECT rid FROM temp.main."wsnap_comp_ids");

-- name: largest
SELECT greatest(
    coalesce((SELECT max(size) FROM temp.main."wsnap_comp_ids"), 0),
    coalesce((SELECT max(c.cluster_size) FROM idr_state.clusters AS c
              WHERE c.rid NOT IN (SELECT rid FROM temp.main."wsnap_changed_rids")
                AND c.rid NOT IN (SELECT rid FROM temp.main."wsnap_comp_ids")), 0));

-- name: skipped_insert
INSERT INTO idr_out.skipped_identifier_groups
    (run_id, identifier_type, identifier_value_norm, group_size, max_allowed, sample_entity_keys, reason, skipped_at)
SELECT $run_id, identifier_type, value_norm, group_size, max_allowed, sample_entity_keys,
       'max_group_size exceeded', $now
FROM temp.main."wsnap_skipped";
