-- name: full_entity_changes
/* is_new: a key the dictionary does not hold yet (every stored row has an updated_ts). */ /* A removed key keeps its row (its eid is never reused), without a cluster. */ CREATE TABLE `idr_work`.`wsnap_entity_changes` AS SELECT m.eid, i.entity_key, m.rid, (m.old_rid IS NULL AND m.old_ts IS NULL) AS is_new FROM `idr_work`.`wsnap_membership` AS m JOIN `idr_work`.`wsnap_ent_ids` AS i ON i.eid = m.eid WHERE m.old_rid IS DISTINCT FROM m.rid UNION ALL SELECT e.eid, e.entity_key, CAST(NULL AS BIGINT), FALSE FROM idr_state.entities AS e WHERE e.eid IN (SELECT eid FROM `idr_work`.`wsnap_removed`);

-- name: incr_entity_changes
/* A removed key keeps its row (its eid is never reused), without a cluster. */ CREATE TABLE `idr_work`.`wsnap_entity_changes` AS SELECT m.eid, k.entity_key, m.rid, (m.old_rid IS NULL AND m.old_ts IS NULL) AS is_new FROM `idr_work`.`wsnap_membership` AS m JOIN `idr_work`.`wsnap_scope_keys` AS k ON k.eid = m.eid WHERE m.old_rid IS DISTINCT FROM m.rid UNION ALL SELECT e.eid, e.entity_key, CAST(NULL AS BIGINT), FALSE FROM idr_state.entities AS e WHERE e.eid IN (SELECT eid FROM `idr_work`.`wsnap_removed`);

-- name: entities_delete
DELETE FROM idr_state.entities WHERE eid IN (SELECT eid FROM `idr_work`.`wsnap_entity_changes` WHERE NOT is_new);

-- name: entities_insert
INSERT INTO idr_state.entities (eid, entity_key, rid, updated_ts) SELECT eid, entity_key, rid, :now FROM `idr_work`.`wsnap_entity_changes`;

-- name: fresh_entities_insert
/* A first FULL run: every record is new, written straight from its source row. */ INSERT INTO idr_state.entities (eid, entity_key, rid, updated_ts) SELECT e.eid, e.entity_key, m.rid, :now FROM `idr_work`.`wsnap_entities` AS e JOIN `idr_work`.`wsnap_membership` AS m ON m.eid = e.eid;

-- name: values_delete_full
DELETE FROM idr_state.identifier_values;

-- name: values_delete_incr
DELETE FROM idr_state.identifier_values WHERE vid IN (SELECT vid FROM `idr_work`.`wsnap_vals`);

-- name: values_insert
INSERT INTO idr_state.identifier_values (vid, type_no, value_norm, holders, anchor_eid, linked, updated_ts) SELECT vid, type_no, value_norm, holders, anchor_eid, linked, :now FROM `idr_work`.`wsnap_values_new`;

-- name: types_delete
DELETE FROM idr_state.identifier_types WHERE type_no IN (SELECT type_no FROM `idr_work`.`wsnap_rules`);

-- name: types_insert
INSERT INTO idr_state.identifier_types (type_no, identifier_type, rule_id) SELECT type_no, identifier_type, rule_id FROM `idr_work`.`wsnap_rules`;

-- name: holders_delete_full
DELETE FROM idr_state.value_holders;

-- name: holders_delete_incr
DELETE FROM idr_state.value_holders WHERE vid IN (SELECT vid FROM `idr_work`.`wsnap_vals`);

-- name: fresh_holders_insert
INSERT INTO idr_state.value_holders (vid, eid, first_seen_ts) SELECT vid, eid, :now FROM `idr_work`.`wsnap_holders_new`;

-- name: holders_insert
/* An edge stored before keeps its first_seen_ts. */ INSERT INTO idr_state.value_holders (vid, eid, first_seen_ts) SELECT h.vid, h.eid, COALESCE(e.first_seen_ts, :now) FROM `idr_work`.`wsnap_holders_new` AS h LEFT JOIN `idr_work`.`wsnap_edges_new` AS e ON e.vid = h.vid AND e.right_eid = h.eid;

-- name: clusters_delete_full
DELETE FROM idr_state.clusters;

-- name: clusters_delete_incr
DELETE FROM idr_state.clusters WHERE rid IN (SELECT rid FROM `idr_work`.`wsnap_comp_ids` UNION ALL SELECT rid FROM `idr_work`.`wsnap_changed_rids`);

-- name: clusters_insert
INSERT INTO idr_state.clusters (rid, cluster_size, edge_count, edge_diversity, match_density, confidence_score, primary_reason, updated_ts) SELECT rid, cluster_size, edge_count, edge_diversity, match_density, confidence_score, primary_reason, :now FROM `idr_work`.`wsnap_clusters_new`;

-- name: golden_delete_full
DELETE FROM idr_state.golden;

-- name: golden_delete_incr
DELETE FROM idr_state.golden WHERE rid IN (SELECT rid FROM `idr_work`.`wsnap_comp_ids` UNION ALL SELECT rid FROM `idr_work`.`wsnap_changed_rids`);

-- name: skipped_insert
INSERT INTO idr_out.skipped_identifier_groups (run_id, identifier_type, identifier_value_norm, group_size, max_allowed, sample_entity_keys, reason, skipped_at) SELECT :run_id, identifier_type, value_norm, group_size, max_allowed, sample_entity_keys, 'max_group_size exceeded', :now FROM `idr_work`.`wsnap_skipped`;

-- name: sequence_update
UPDATE idr_meta.resolved_id_sequence SET next_value = :next WHERE sequence_name = 'resolved_id';

-- name: counters_delete
DELETE FROM idr_state.counters WHERE counter_name IN ('eid', 'vid');

-- name: counters_insert
INSERT INTO idr_state.counters (counter_name, next_value) VALUES ('eid', :eid), ('vid', :vid);
