-- name: flows
CREATE TABLE `idr_work`.`wsnap_flows` AS SELECT old_rid, rid AS new_rid, COUNT(*) AS n FROM `idr_work`.`wsnap_membership` GROUP BY old_rid, rid UNION ALL SELECT old_rid, CAST(NULL AS BIGINT), COUNT(*) FROM `idr_work`.`wsnap_removed` GROUP BY old_rid;

-- name: split_old
/* Current clusters whose (still present) members land in more than one proposed cluster. */ CREATE TABLE `idr_work`.`wsnap_split_old` AS SELECT old_rid FROM `idr_work`.`wsnap_flows` WHERE NOT old_rid IS NULL AND NOT new_rid IS NULL GROUP BY old_rid HAVING COUNT(*) > 1;

-- name: merged_new
/* Proposed clusters that combine members of more than one current cluster. */ CREATE TABLE `idr_work`.`wsnap_merged_new` AS SELECT new_rid FROM `idr_work`.`wsnap_flows` WHERE NOT old_rid IS NULL AND NOT new_rid IS NULL GROUP BY new_rid HAVING COUNT(*) > 1;

-- name: full_diff_keys
CREATE VIEW `idr_work`.`wsnap_diff_keys` AS SELECT eid, entity_key FROM `idr_work`.`wsnap_ent_ids` UNION ALL SELECT e.eid, e.entity_key FROM idr_state.entities AS e WHERE e.eid IN (SELECT eid FROM `idr_work`.`wsnap_removed`);

-- name: incr_diff_keys
CREATE VIEW `idr_work`.`wsnap_diff_keys` AS SELECT eid, entity_key FROM `idr_work`.`wsnap_scope_keys` UNION ALL SELECT e.eid, e.entity_key FROM idr_state.entities AS e WHERE e.eid IN (SELECT eid FROM `idr_work`.`wsnap_removed`);

-- name: results_build
/* Built before the diff transaction, so the summary counts read a work table, not rows */ /* the transaction itself wrote (BigQuery scripts cannot read their own writes). */ CREATE TABLE `idr_work`.`wsnap_results` AS SELECT k.entity_key, m.old_rid AS current_rid, m.rid AS proposed_rid, CASE WHEN m.old_rid IS NULL THEN 'NEW' WHEN NOT s.old_rid IS NULL THEN 'SPLIT' WHEN NOT g.new_rid IS NULL THEN 'MERGED' WHEN m.old_rid <> m.rid THEN 'MOVED' ELSE 'UNCHANGED' END AS change_type, c.cluster_size AS current_cluster_size, m.cluster_size AS proposed_cluster_size FROM `idr_work`.`wsnap_membership` AS m JOIN `idr_work`.`wsnap_diff_keys` AS k ON k.eid = m.eid LEFT JOIN `idr_work`.`wsnap_split_old` AS s ON s.old_rid = m.old_rid LEFT JOIN `idr_work`.`wsnap_merged_new` AS g ON g.new_rid = m.rid LEFT JOIN idr_state.clusters AS c ON c.rid = m.old_rid UNION ALL SELECT k.entity_key, r.old_rid, CAST(NULL AS BIGINT), 'REMOVED', c.cluster_size, CAST(NULL AS BIGINT) FROM `idr_work`.`wsnap_removed` AS r JOIN `idr_work`.`wsnap_diff_keys` AS k ON k.eid = r.eid LEFT JOIN idr_state.clusters AS c ON c.rid = r.old_rid;

-- name: results
INSERT INTO idr_out.dry_run_results (run_id, entity_key, current_resolved_id, proposed_resolved_id, change_type, current_cluster_size, proposed_cluster_size, created_at) SELECT :run_id, entity_key, CASE WHEN NOT current_rid IS NULL THEN 'R' || LPAD(CAST(current_rid AS STRING), 11, '0') END, CASE WHEN NOT proposed_rid IS NULL THEN 'R' || LPAD(CAST(proposed_rid AS STRING), 11, '0') END, change_type, current_cluster_size, proposed_cluster_size, :now FROM `idr_work`.`wsnap_results`;

-- name: cluster_changes
/* One row per flow that touches a changed cluster: who goes where, with sizes. Members */ /* that keep their id (old = new) are counted in members, not in members_moved. */ INSERT INTO idr_out.dry_run_cluster_changes (run_id, current_resolved_id, proposed_resolved_id, members, members_moved, current_cluster_size, proposed_cluster_size, change_type, created_at) SELECT :run_id, CASE WHEN NOT f.old_rid IS NULL THEN 'R' || LPAD(CAST(f.old_rid AS STRING), 11, '0') END, CASE WHEN NOT f.new_rid IS NULL THEN 'R' || LPAD(CAST(f.new_rid AS STRING), 11, '0') END, f.n, CASE WHEN f.old_rid = f.new_rid THEN 0 ELSE f.n END, c.cluster_size, p.size, CASE WHEN f.old_rid IS NULL THEN 'NEW' WHEN f.new_rid IS NULL THEN 'REMOVED' WHEN NOT s.old_rid IS NULL THEN 'SPLIT' WHEN NOT g.new_rid IS NULL THEN 'MERGED' WHEN f.old_rid <> f.new_rid THEN 'MOVED' ELSE 'UNCHANGED' END, :now FROM `idr_work`.`wsnap_flows` AS f LEFT JOIN `idr_work`.`wsnap_split_old` AS s ON s.old_rid = f.old_rid LEFT JOIN `idr_work`.`wsnap_merged_new` AS g ON g.new_rid = f.new_rid LEFT JOIN idr_state.clusters AS c ON c.rid = f.old_rid LEFT JOIN `idr_work`.`wsnap_comp_ids` AS p ON p.rid = f.new_rid WHERE f.old_rid IN (SELECT rid FROM `idr_work`.`wsnap_changed_rids`) OR f.new_rid IN (SELECT rid FROM `idr_work`.`wsnap_changed_rids`);

-- name: counts
SELECT COUNT(*), COUNT(*) FILTER(WHERE change_type = 'NEW'), COUNT(*) FILTER(WHERE change_type = 'MOVED'), COUNT(*) FILTER(WHERE change_type = 'MERGED'), COUNT(*) FILTER(WHERE change_type = 'SPLIT'), COUNT(*) FILTER(WHERE change_type = 'REMOVED'), COUNT(*) FILTER(WHERE change_type = 'UNCHANGED') FROM `idr_work`.`wsnap_results`;

-- name: merged_clusters
/* Current clusters absorbed into another: their id does not survive and their members */ /* land in a proposed cluster that combines several current clusters. */ SELECT COUNT(DISTINCT f.old_rid) FROM `idr_work`.`wsnap_flows` AS f JOIN `idr_work`.`wsnap_merged_new` AS g ON g.new_rid = f.new_rid WHERE NOT f.old_rid IN (SELECT rid FROM `idr_work`.`wsnap_comp_ids`);

-- name: largest
SELECT GREATEST(COALESCE((SELECT MAX(size) FROM `idr_work`.`wsnap_comp_ids`), 0), COALESCE((SELECT MAX(c.cluster_size) FROM idr_state.clusters AS c WHERE NOT c.rid IN (SELECT rid FROM `idr_work`.`wsnap_changed_rids`) AND NOT c.rid IN (SELECT rid FROM `idr_work`.`wsnap_comp_ids`)), 0));

-- name: skipped_insert
INSERT INTO idr_out.skipped_identifier_groups (run_id, identifier_type, identifier_value_norm, group_size, max_allowed, sample_entity_keys, reason, skipped_at) SELECT :run_id, identifier_type, value_norm, group_size, max_allowed, sample_entity_keys, 'max_group_size exceeded', :now FROM `idr_work`.`wsnap_skipped`;
