-- name: identifiers_distinct
/* Two mappings of one source with the same type can yield the same (entity, type, value). */ CREATE TABLE `idr_work`.`wsnap_identifiers` AS SELECT DISTINCT eid, type_no, value_norm FROM `idr_work`.`wsnap_ident_raw`;

-- name: identifiers_view
CREATE VIEW `idr_work`.`wsnap_identifiers` AS SELECT eid, type_no, value_norm FROM `idr_work`.`wsnap_ident_raw` /* ------------------------------------------------------------------------------- FULL */;

-- name: fresh_values
/* A first run: every value is new (vid from tvid), kr is the eid itself. */ CREATE TABLE `idr_work`.`wsnap_values_new` AS SELECT @next_vid + g.tvid AS vid, g.tvid, g.type_no, g.value_norm, g.n AS holders, g.eid AS anchor_eid, (g.n >= 2 AND g.n <= r.max_group_size) AS linked, r.rule_id, r.max_group_size, FALSE AS existed FROM `idr_work`.`wsnap_grp_rows` AS g JOIN `idr_work`.`wsnap_rules` AS r ON r.type_no = g.type_no WHERE g.eid = g.anchor_kr;

-- name: fresh_holders
CREATE TABLE `idr_work`.`wsnap_holders_new` AS SELECT @next_vid + tvid AS vid, eid FROM `idr_work`.`wsnap_grp_rows` WHERE n >= 2;

-- name: fresh_edges_new
CREATE TABLE `idr_work`.`wsnap_edges_new` AS SELECT @next_vid + g.tvid AS vid, r.rule_id, g.anchor_kr AS left_eid, g.eid AS right_eid, CAST(NULL AS DATETIME) AS first_seen_ts, FALSE AS existed FROM `idr_work`.`wsnap_grp_rows` AS g JOIN `idr_work`.`wsnap_rules` AS r ON r.type_no = g.type_no WHERE g.n >= 2 AND g.n <= r.max_group_size AND g.eid <> g.anchor_kr;

-- name: full_values
/* One row per value: the anchor's row. A value stored before keeps its vid (FULL over */ /* a stored state), so its edges keep their first_seen_ts. */ CREATE TABLE `idr_work`.`wsnap_values_new` AS SELECT COALESCE(o.vid, @next_vid + g.tvid) AS vid, g.tvid, g.type_no, g.value_norm, g.n AS holders, g.eid AS anchor_eid, (g.n >= 2 AND g.n <= r.max_group_size) AS linked, r.rule_id, r.max_group_size, NOT o.vid IS NULL AS existed FROM `idr_work`.`wsnap_grp_rows` AS g JOIN `idr_work`.`wsnap_rules` AS r ON r.type_no = g.type_no LEFT JOIN idr_state.identifier_values AS o ON o.type_no = g.type_no AND o.value_norm = g.value_norm WHERE g.kr = g.anchor_kr;

-- name: full_holders
/* Every holder of a value held by two or more entities (its anchor included). */ CREATE TABLE `idr_work`.`wsnap_holders_new` AS SELECT v.vid, g.eid FROM `idr_work`.`wsnap_grp_rows` AS g JOIN `idr_work`.`wsnap_values_new` AS v ON v.tvid = g.tvid WHERE g.n >= 2 /* ------------------------------------------------------------------------------- INCR */;

-- name: incr_delta_values
/* The delta's values with their vid; a value seen for the first time gets a new one. */ CREATE TABLE `idr_work`.`wsnap_delta_values` AS SELECT COALESCE(o.vid, @next_vid - 1 + ROW_NUMBER() OVER (PARTITION BY o.vid IS NULL ORDER BY d.type_no NULLS LAST, d.value_norm NULLS LAST)) AS vid, d.type_no, d.value_norm, o.vid IS NULL AS is_new FROM (SELECT DISTINCT type_no, value_norm FROM `idr_work`.`wsnap_identifiers`) AS d LEFT JOIN idr_state.identifier_values AS o ON o.type_no = d.type_no AND o.value_norm = d.value_norm;

-- name: incr_dropped
/* Stored members this run removes (the keys in "idr_work"."wsnap_gone"), each with its cluster and why */ /* (the smallest reason number: erasure, soft delete, reconciliation). They lose every */ /* stored identifier, their clusters may split, and they leave the membership. */ CREATE TABLE `idr_work`.`wsnap_dropped` AS SELECT e.eid, e.rid AS old_rid, g.reason_no FROM (SELECT entity_key, MIN(reason_no) AS reason_no FROM `idr_work`.`wsnap_gone` GROUP BY entity_key) AS g JOIN idr_state.entities AS e ON e.entity_key = g.entity_key WHERE NOT e.rid IS NULL;

-- name: incr_new_ident
CREATE TABLE `idr_work`.`wsnap_new_ident` AS SELECT DISTINCT i.eid, v.vid FROM `idr_work`.`wsnap_identifiers` AS i JOIN `idr_work`.`wsnap_delta_values` AS v ON v.type_no = i.type_no AND v.value_norm = i.value_norm;

-- name: incr_old_ident
/* The stored identifiers of the delta's entities: a single holder is its value's anchor, */ /* every holder of a shared value is in value_holders. */ CREATE TABLE `idr_work`.`wsnap_old_ident` AS SELECT v.anchor_eid AS eid, v.vid FROM idr_state.identifier_values AS v WHERE v.holders = 1 AND v.anchor_eid IN (SELECT eid FROM `idr_work`.`wsnap_ent_ids` WHERE NOT is_new UNION ALL SELECT eid FROM `idr_work`.`wsnap_dropped`) UNION ALL SELECT h.eid, h.vid FROM idr_state.value_holders AS h WHERE h.eid IN (SELECT eid FROM `idr_work`.`wsnap_ent_ids` WHERE NOT is_new UNION ALL SELECT eid FROM `idr_work`.`wsnap_dropped`);

-- name: incr_lost
CREATE TABLE `idr_work`.`wsnap_lost` AS SELECT eid, vid FROM `idr_work`.`wsnap_old_ident` EXCEPT DISTINCT SELECT eid, vid FROM `idr_work`.`wsnap_new_ident`;

-- name: incr_gained
CREATE TABLE `idr_work`.`wsnap_gained` AS SELECT eid, vid FROM `idr_work`.`wsnap_new_ident` EXCEPT DISTINCT SELECT eid, vid FROM `idr_work`.`wsnap_old_ident`;

-- name: incr_vals
/* The values whose group changes: they are re-derived, every other value stays as stored. */ CREATE TABLE `idr_work`.`wsnap_vals` AS SELECT DISTINCT vid FROM (SELECT vid FROM `idr_work`.`wsnap_lost` UNION ALL SELECT vid FROM `idr_work`.`wsnap_gained`) AS t;

-- name: incr_values_old
/* The stored rows of the re-derived values (their group before this run). */ CREATE TABLE `idr_work`.`wsnap_values_old` AS SELECT v.* FROM idr_state.identifier_values AS v WHERE v.vid IN (SELECT vid FROM `idr_work`.`wsnap_vals`);

-- name: incr_members_old
/* Every stored holder of a re-derived value. */ CREATE TABLE `idr_work`.`wsnap_members_old` AS SELECT anchor_eid AS eid, vid FROM `idr_work`.`wsnap_values_old` WHERE holders = 1 UNION ALL SELECT h.eid, h.vid FROM idr_state.value_holders AS h WHERE h.vid IN (SELECT vid FROM `idr_work`.`wsnap_values_old` WHERE holders >= 2);

-- name: incr_members
CREATE TABLE `idr_work`.`wsnap_members` AS SELECT * FROM (SELECT eid, vid FROM `idr_work`.`wsnap_members_old` EXCEPT DISTINCT SELECT eid, vid FROM `idr_work`.`wsnap_lost`) AS kept UNION ALL SELECT eid, vid FROM `idr_work`.`wsnap_gained`;

-- name: incr_values
/* The re-derived values as they will be stored (a value no entity holds any more is gone). */ CREATE TABLE `idr_work`.`wsnap_values_new` AS SELECT g.vid, COALESCE(o.type_no, d.type_no) AS type_no, COALESCE(o.value_norm, d.value_norm) AS value_norm, g.n AS holders, k.eid AS anchor_eid, (g.n >= 2 AND g.n <= r.max_group_size) AS linked, r.rule_id, r.max_group_size, NOT o.vid IS NULL AS existed FROM (SELECT m.vid, COUNT(*) AS n, MIN(k.kr) AS anchor_kr FROM `idr_work`.`wsnap_members` AS m JOIN `idr_work`.`wsnap_scope_keys` AS k ON k.eid = m.eid GROUP BY m.vid) AS g JOIN `idr_work`.`wsnap_scope_keys` AS k ON k.kr = g.anchor_kr LEFT JOIN `idr_work`.`wsnap_values_old` AS o ON o.vid = g.vid LEFT JOIN `idr_work`.`wsnap_delta_values` AS d ON d.vid = g.vid JOIN `idr_work`.`wsnap_rules` AS r ON r.type_no = COALESCE(o.type_no, d.type_no);

-- name: incr_holders
CREATE TABLE `idr_work`.`wsnap_holders_new` AS SELECT m.vid, m.eid FROM `idr_work`.`wsnap_members` AS m JOIN `idr_work`.`wsnap_values_new` AS v ON v.vid = m.vid WHERE v.holders >= 2 /* ------------------------------------------------------------------------------- both */;

-- name: skipped_members
/* Members of the groups over max_group_size (audited, with the five smallest keys). */ CREATE TABLE `idr_work`.`wsnap_skipped_members` AS SELECT r.identifier_type, v.value_norm, v.holders AS group_size, v.max_group_size AS max_allowed, h.eid FROM `idr_work`.`wsnap_values_new` AS v JOIN `idr_work`.`wsnap_rules` AS r ON r.type_no = v.type_no JOIN `idr_work`.`wsnap_holders_new` AS h ON h.vid = v.vid WHERE v.holders > v.max_group_size;

-- name: skipped
/* Written with row_number + an ordered string_agg because list slicing does not */ /* transpile (platforms without ordered aggregates get a sorted array from their adapter). */ CREATE TABLE `idr_work`.`wsnap_skipped` AS SELECT identifier_type, value_norm, group_size, max_allowed, STRING_AGG(entity_key, ',' ORDER BY entity_key) AS sample_entity_keys FROM (SELECT s.identifier_type, s.value_norm, s.group_size, s.max_allowed, e.entity_key, ROW_NUMBER() OVER (PARTITION BY s.identifier_type, s.value_norm ORDER BY e.entity_key NULLS LAST) AS rn FROM `idr_work`.`wsnap_skipped_members` AS s JOIN `idr_work`.`wsnap_keys` AS e ON e.eid = s.eid) AS t WHERE rn <= 5 GROUP BY identifier_type, value_norm, group_size, max_allowed;

-- name: full_edges_new
/* Star edges of the linked values: every other holder links to the anchor. An edge */ /* stored before (same value, same two ends) keeps its first_seen_ts. */ CREATE TABLE `idr_work`.`wsnap_edges_new` AS SELECT v.vid, v.rule_id, v.anchor_eid AS left_eid, h.eid AS right_eid, o.first_seen_ts, (NOT o.eid IS NULL) AS existed FROM `idr_work`.`wsnap_holders_new` AS h JOIN `idr_work`.`wsnap_values_new` AS v ON v.vid = h.vid AND v.linked AND h.eid <> v.anchor_eid LEFT JOIN (SELECT sh.vid, sh.eid, sh.first_seen_ts, sv.anchor_eid FROM idr_state.value_holders AS sh JOIN idr_state.identifier_values AS sv ON sv.vid = sh.vid AND sv.linked AND sh.eid <> sv.anchor_eid) AS o ON o.vid = v.vid AND o.eid = h.eid AND o.anchor_eid = v.anchor_eid;

-- name: incr_edges_new
CREATE TABLE `idr_work`.`wsnap_edges_new` AS SELECT v.vid, v.rule_id, v.anchor_eid AS left_eid, h.eid AS right_eid, o.first_seen_ts, (NOT o.eid IS NULL) AS existed FROM `idr_work`.`wsnap_holders_new` AS h JOIN `idr_work`.`wsnap_values_new` AS v ON v.vid = h.vid AND v.linked AND h.eid <> v.anchor_eid LEFT JOIN (SELECT sh.vid, sh.eid, sh.first_seen_ts, sv.anchor_eid FROM idr_state.value_holders AS sh JOIN `idr_work`.`wsnap_values_old` AS sv ON sv.vid = sh.vid AND sv.linked AND sh.eid <> sv.anchor_eid) AS o ON o.vid = v.vid AND o.eid = h.eid AND o.anchor_eid = v.anchor_eid;

-- name: incr_edges_old
/* The stored edges of the re-derived values, per rule (the created/removed counts). */ SELECT r.rule_id, COUNT(*) AS n FROM idr_state.value_holders AS h JOIN `idr_work`.`wsnap_values_old` AS v ON v.vid = h.vid AND v.linked AND h.eid <> v.anchor_eid JOIN `idr_work`.`wsnap_rules` AS r ON r.type_no = v.type_no GROUP BY r.rule_id /* ------------------------------------------------------------------------------- components */;

-- name: full_cc_edges
/* FULL: every entity is a node and its eid is the node id (a view: no copy). */ CREATE VIEW `idr_work`.`wsnap_cc_edges` AS SELECT left_eid AS u, right_eid AS v FROM `idr_work`.`wsnap_edges_new`;

-- name: incr_touched
/* Current membership of every stored entity the delta or a re-derived value touches. */ CREATE TABLE `idr_work`.`wsnap_touched` AS SELECT e.eid, e.rid FROM idr_state.entities AS e WHERE NOT e.rid IS NULL AND e.eid IN (SELECT eid FROM `idr_work`.`wsnap_members_old` UNION ALL SELECT eid FROM `idr_work`.`wsnap_ent_ids` WHERE NOT is_new UNION ALL SELECT eid FROM `idr_work`.`wsnap_dropped`);

-- name: incr_broken
/* Current clusters that may split: a member lost a value or is removed, or a linking */ /* value's group outgrew max_group_size. Every other impacted cluster only gains links and is */ /* contracted to one node. */ CREATE TABLE `idr_work`.`wsnap_broken` AS SELECT DISTINCT t.rid FROM `idr_work`.`wsnap_touched` AS t WHERE t.eid IN (SELECT l.eid FROM `idr_work`.`wsnap_lost` AS l) OR t.eid IN (SELECT d.eid FROM `idr_work`.`wsnap_dropped` AS d) OR t.eid IN (SELECT mo.eid FROM `idr_work`.`wsnap_members_old` AS mo JOIN `idr_work`.`wsnap_values_old` AS vo ON vo.vid = mo.vid AND vo.linked JOIN `idr_work`.`wsnap_values_new` AS vn ON vn.vid = mo.vid AND NOT vn.linked);

-- name: incr_scope
/* Every member of an impacted cluster but those removed, plus the delta's entities */ /* without a cluster, with its key and rank in entity_key order (one read of the */ /* dictionary's keys per run). */ CREATE TABLE `idr_work`.`wsnap_scope_keys` AS SELECT s.eid, s.entity_key, s.old_rid, s.old_ts, ROW_NUMBER() OVER (ORDER BY s.entity_key NULLS LAST) AS kr FROM (SELECT e.eid, e.entity_key, e.rid AS old_rid, e.updated_ts AS old_ts FROM idr_state.entities AS e WHERE e.rid IN (SELECT rid FROM `idr_work`.`wsnap_touched`) AND NOT e.eid IN (SELECT eid FROM `idr_work`.`wsnap_dropped`) UNION ALL SELECT i.eid, i.entity_key, CAST(NULL AS INT64), i.old_ts FROM `idr_work`.`wsnap_ent_ids` AS i WHERE i.old_rid IS NULL) AS s;

-- name: incr_nodes
/* Clusters that cannot split become one node each; the rest (and new entities) stay */ /* per entity. Dense node ids (the union-find indexes an array with them). */ CREATE TABLE `idr_work`.`wsnap_nodes` AS SELECT eid, broken, CAST(DENSE_RANK() OVER (ORDER BY nkey NULLS LAST) - 1 AS INT64) AS node FROM (SELECT s.eid, (s.old_rid IS NULL OR NOT b.rid IS NULL) AS broken, CASE WHEN s.old_rid IS NULL OR NOT b.rid IS NULL THEN 2 * s.eid ELSE 2 * s.old_rid + 1 END AS nkey FROM `idr_work`.`wsnap_scope_keys` AS s LEFT JOIN `idr_work`.`wsnap_broken` AS b ON b.rid = s.old_rid) AS t;

-- name: incr_cc_edges
CREATE TABLE `idr_work`.`wsnap_cc_edges` AS SELECT a.node AS u, b.node AS v FROM `idr_work`.`wsnap_edges_new` AS e JOIN `idr_work`.`wsnap_nodes` AS a ON a.eid = e.left_eid JOIN `idr_work`.`wsnap_nodes` AS b ON b.eid = e.right_eid WHERE a.node <> b.node;

-- name: incr_cc_edges_kept
/* Links of the clusters that may split, but for the values being re-derived. */ INSERT INTO `idr_work`.`wsnap_cc_edges` SELECT a.node, b.node FROM idr_state.value_holders AS h JOIN idr_state.identifier_values AS v ON v.vid = h.vid AND v.linked AND h.eid <> v.anchor_eid JOIN `idr_work`.`wsnap_nodes` AS b ON b.eid = h.eid AND b.broken JOIN `idr_work`.`wsnap_nodes` AS a ON a.eid = v.anchor_eid WHERE a.node <> b.node AND NOT v.vid IN (SELECT vid FROM `idr_work`.`wsnap_vals`);
