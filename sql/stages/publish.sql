-- Atomic publish of a real run. Everything here runs in ONE transaction; the inputs are
-- work tables prepared before it, so a failure anywhere earlier leaves production as is.

-- name: membership_delete
DELETE FROM idr_out.identity_resolved_membership_current
WHERE entity_key IN (
    SELECT entity_key FROM {{w.membership}} WHERE old_id IS DISTINCT FROM resolved_id
    UNION ALL
    SELECT entity_key FROM {{w.removed}})

-- name: membership_insert
INSERT INTO idr_out.identity_resolved_membership_current (entity_key, resolved_id, updated_ts)
SELECT entity_key, resolved_id, $now FROM {{w.membership}} WHERE old_id IS DISTINCT FROM resolved_id

-- name: clusters_delete
DELETE FROM idr_out.identity_clusters_current
WHERE resolved_id IN (SELECT resolved_id FROM {{w.changed_ids}})

-- name: clusters_insert
INSERT INTO idr_out.identity_clusters_current (resolved_id, cluster_size, updated_ts)
SELECT c.resolved_id, c.size, $now
FROM {{w.comp_ids}} AS c
WHERE c.resolved_id IN (SELECT resolved_id FROM {{w.changed_ids}})

-- name: golden_delete_incr
DELETE FROM idr_out.golden_profile_current
WHERE resolved_id IN (SELECT resolved_id FROM {{w.comp_ids}} UNION ALL SELECT resolved_id FROM {{w.changed_ids}})

-- name: golden_delete_full
DELETE FROM idr_out.golden_profile_current

-- name: golden_insert
INSERT INTO idr_out.golden_profile_current
    (resolved_id, attribute_name, attribute_value, source_entity_key, source_table_id, strategy, updated_ts)
SELECT resolved_id, attribute_name, attribute_value, source_entity_key, source_table_id, strategy, $now
FROM {{w.golden}}

-- name: edges_delete_full
DELETE FROM idr_out.identity_edges_current

-- name: edges_delete_incr
DELETE FROM idr_out.identity_edges_current AS e
WHERE EXISTS (
    SELECT 1 FROM {{w.vals}} AS v
    WHERE v.identifier_type = e.identifier_type AND v.identifier_value_norm = e.identifier_value_norm)

-- name: edges_insert
INSERT INTO idr_out.identity_edges_current
    (rule_id, left_entity_key, right_entity_key, identifier_type, identifier_value_norm, first_seen_ts, last_seen_ts)
SELECT rule_id, left_entity_key, right_entity_key, identifier_type, identifier_value_norm,
       coalesce(first_seen_ts, $now), CAST($now AS TIMESTAMP)
FROM {{w.edges_new}}

-- name: identifiers_delete_full
DELETE FROM idr_out.identifiers_current

-- name: identifiers_delete_incr
-- Every stored row of a value whose group was re-derived goes (a lost value is one of
-- them), and what the new group stores comes back (identifiers_insert).
DELETE FROM idr_out.identifiers_current AS c
WHERE EXISTS (
    SELECT 1 FROM {{w.vals}} AS v
    WHERE v.identifier_type = c.identifier_type AND v.identifier_value_norm = c.identifier_value_norm)

-- name: identifiers_insert
-- What identifiers_current stores for this run's groups: the values no edge links, i.e.
-- held by one record (the group's anchor), or in a skipped group. A linked value's
-- holders are the ends of its edges, so storing them again would double the largest
-- state table.
INSERT INTO idr_out.identifiers_current (entity_key, identifier_type, identifier_value_norm, updated_ts)
SELECT anchor, identifier_type, identifier_value_norm, $now FROM {{w.groups}} WHERE n = 1
UNION ALL
SELECT entity_key, identifier_type, identifier_value_norm, $now FROM {{w.skipped_members}}

-- name: skipped_insert
INSERT INTO idr_out.skipped_identifier_groups
    (run_id, identifier_type, identifier_value_norm, group_size, max_allowed, sample_entity_keys, reason, skipped_at)
SELECT $run_id, identifier_type, identifier_value_norm, group_size, max_allowed, sample_entity_keys,
       'max_group_size exceeded', $now
FROM {{w.skipped}}

-- name: sequence_update
UPDATE idr_meta.resolved_id_sequence SET next_value = $next WHERE sequence_name = 'resolved_id'

-- name: run_state_delete
DELETE FROM idr_meta.run_state WHERE table_id = $table_id

-- name: run_state_insert
INSERT INTO idr_meta.run_state (table_id, last_watermark_value, last_run_id, last_run_ts)
VALUES ($table_id, CAST($wm AS TIMESTAMP), $run_id, $now)
