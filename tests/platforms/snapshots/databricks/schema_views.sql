-- name: identity_resolved_membership_current
CREATE OR REPLACE VIEW idr_out.identity_resolved_membership_current AS SELECT e.entity_key, 'R' || LPAD(CAST(e.rid AS STRING), 11, '0') AS resolved_id, e.updated_ts FROM idr_state.entities AS e WHERE NOT e.rid IS NULL;

-- name: identity_clusters_current
CREATE OR REPLACE VIEW idr_out.identity_clusters_current AS SELECT 'R' || LPAD(CAST(c.rid AS STRING), 11, '0') AS resolved_id, c.cluster_size, c.updated_ts, c.confidence_score, c.edge_diversity, c.match_density, c.primary_reason FROM idr_state.clusters AS c;

-- name: identity_edges_current
/* A linked value's star: every other holder linked to the anchor (smallest entity_key). */ CREATE OR REPLACE VIEW idr_out.identity_edges_current AS SELECT t.rule_id, a.entity_key AS left_entity_key, e.entity_key AS right_entity_key, t.identifier_type, v.value_norm AS identifier_value_norm, h.first_seen_ts, v.updated_ts AS last_seen_ts FROM idr_state.value_holders AS h JOIN idr_state.identifier_values AS v ON v.vid = h.vid JOIN idr_state.identifier_types AS t ON t.type_no = v.type_no JOIN idr_state.entities AS a ON a.eid = v.anchor_eid JOIN idr_state.entities AS e ON e.eid = h.eid WHERE v.linked AND h.eid <> v.anchor_eid;

-- name: identifiers_current
/* The values no edge links (held by one record, or by a group over max_group_size); a */ /* linked value's holders are the ends of its edges. */ CREATE OR REPLACE VIEW idr_out.identifiers_current AS SELECT a.entity_key, t.identifier_type, v.value_norm AS identifier_value_norm, v.updated_ts FROM idr_state.identifier_values AS v JOIN idr_state.identifier_types AS t ON t.type_no = v.type_no JOIN idr_state.entities AS a ON a.eid = v.anchor_eid WHERE v.holders = 1 UNION ALL SELECT e.entity_key, t.identifier_type, v.value_norm AS identifier_value_norm, v.updated_ts FROM idr_state.value_holders AS h JOIN idr_state.identifier_values AS v ON v.vid = h.vid JOIN idr_state.identifier_types AS t ON t.type_no = v.type_no JOIN idr_state.entities AS e ON e.eid = h.eid WHERE NOT v.linked;
