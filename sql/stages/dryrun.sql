-- Dry-run diff: proposal (work tables) vs production, per entity and per cluster.
-- flow(O -> C) counts the members of current cluster O that land in proposed cluster C.

-- name: flows
CREATE TABLE {{w.flows}} AS
SELECT old_id, resolved_id AS new_id, count(*) AS n
FROM {{w.membership}}
GROUP BY old_id, resolved_id
UNION ALL
SELECT old_id, CAST(NULL AS VARCHAR), count(*) FROM {{w.removed}} GROUP BY old_id

-- name: split_old
-- Current clusters whose (still present) members land in more than one proposed cluster.
CREATE TABLE {{w.split_old}} AS
SELECT old_id FROM {{w.flows}}
WHERE old_id IS NOT NULL AND new_id IS NOT NULL
GROUP BY old_id HAVING count(*) > 1

-- name: merged_new
-- Proposed clusters that combine members of more than one current cluster.
CREATE TABLE {{w.merged_new}} AS
SELECT new_id FROM {{w.flows}}
WHERE old_id IS NOT NULL AND new_id IS NOT NULL
GROUP BY new_id HAVING count(*) > 1

-- name: results_build
-- Built before the diff transaction, so the summary counts read a work table, not rows
-- the transaction itself wrote (BigQuery scripts cannot read their own writes).
CREATE TABLE {{w.results}} AS
SELECT m.entity_key, m.old_id AS current_resolved_id, m.resolved_id AS proposed_resolved_id,
       CASE WHEN m.old_id IS NULL THEN 'NEW'
            WHEN s.old_id IS NOT NULL THEN 'SPLIT'
            WHEN g.new_id IS NOT NULL THEN 'MERGED'
            WHEN m.old_id <> m.resolved_id THEN 'MOVED'
            ELSE 'UNCHANGED' END AS change_type,
       c.cluster_size AS current_cluster_size, m.cluster_size AS proposed_cluster_size
FROM {{w.membership}} AS m
LEFT JOIN {{w.split_old}} AS s ON s.old_id = m.old_id
LEFT JOIN {{w.merged_new}} AS g ON g.new_id = m.resolved_id
LEFT JOIN idr_out.identity_clusters_current AS c ON c.resolved_id = m.old_id
UNION ALL
SELECT r.entity_key, r.old_id, CAST(NULL AS VARCHAR), 'REMOVED', c.cluster_size, CAST(NULL AS INTEGER)
FROM {{w.removed}} AS r
LEFT JOIN idr_out.identity_clusters_current AS c ON c.resolved_id = r.old_id

-- name: results
INSERT INTO idr_out.dry_run_results
    (run_id, entity_key, current_resolved_id, proposed_resolved_id, change_type,
     current_cluster_size, proposed_cluster_size, created_at)
SELECT $run_id, entity_key, current_resolved_id, proposed_resolved_id, change_type,
       current_cluster_size, proposed_cluster_size, $now
FROM {{w.results}}

-- name: cluster_changes
-- One row per flow that touches a changed cluster: who goes where, with sizes. Members
-- that keep their id (old = new) are counted in members, not in members_moved.
INSERT INTO idr_out.dry_run_cluster_changes
    (run_id, current_resolved_id, proposed_resolved_id, members, members_moved, current_cluster_size,
     proposed_cluster_size, change_type, created_at)
SELECT $run_id, f.old_id, f.new_id, f.n,
       CASE WHEN f.old_id = f.new_id THEN 0 ELSE f.n END, c.cluster_size, p.size,
       CASE WHEN f.old_id IS NULL THEN 'NEW'
            WHEN f.new_id IS NULL THEN 'REMOVED'
            WHEN s.old_id IS NOT NULL THEN 'SPLIT'
            WHEN g.new_id IS NOT NULL THEN 'MERGED'
            WHEN f.old_id <> f.new_id THEN 'MOVED'
            ELSE 'UNCHANGED' END,
       $now
FROM {{w.flows}} AS f
LEFT JOIN {{w.split_old}} AS s ON s.old_id = f.old_id
LEFT JOIN {{w.merged_new}} AS g ON g.new_id = f.new_id
LEFT JOIN idr_out.identity_clusters_current AS c ON c.resolved_id = f.old_id
LEFT JOIN {{w.comp_ids}} AS p ON p.resolved_id = f.new_id
WHERE f.old_id IN (SELECT resolved_id FROM {{w.changed_ids}})
   OR f.new_id IN (SELECT resolved_id FROM {{w.changed_ids}})

-- name: counts
SELECT count(*),
       count(*) FILTER (WHERE change_type = 'NEW'),
       count(*) FILTER (WHERE change_type = 'MOVED'),
       count(*) FILTER (WHERE change_type = 'MERGED'),
       count(*) FILTER (WHERE change_type = 'SPLIT'),
       count(*) FILTER (WHERE change_type = 'REMOVED'),
       count(*) FILTER (WHERE change_type = 'UNCHANGED')
FROM {{w.results}}

-- name: merged_clusters
-- Current clusters absorbed into another: their id does not survive and their members
-- land in a proposed cluster that combines several current clusters.
SELECT count(DISTINCT f.old_id)
FROM {{w.flows}} AS f
JOIN {{w.merged_new}} AS g ON g.new_id = f.new_id
WHERE f.old_id NOT IN (SELECT resolved_id FROM {{w.comp_ids}})

-- name: largest
SELECT greatest(
    coalesce((SELECT max(size) FROM {{w.comp_ids}}), 0),
    coalesce((SELECT max(c.cluster_size) FROM idr_out.identity_clusters_current AS c
              WHERE c.resolved_id NOT IN (SELECT resolved_id FROM {{w.changed_ids}})
                AND c.resolved_id NOT IN (SELECT resolved_id FROM {{w.comp_ids}})), 0))

-- name: skipped_insert
INSERT INTO idr_out.skipped_identifier_groups
    (run_id, identifier_type, identifier_value_norm, group_size, max_allowed, sample_entity_keys, reason, skipped_at)
SELECT $run_id, identifier_type, identifier_value_norm, group_size, max_allowed, sample_entity_keys,
       'max_group_size exceeded', $now
FROM {{w.skipped}}
