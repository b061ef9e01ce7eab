-- Identifier graph stages. Canonical dialect: DuckDB. {{w.x}} = run-scoped scratch table.
-- FULL runs: {{w.members}} is every identifier row of the new state.
-- INCR runs: {{w.members}} is the new membership of the values the delta touched.

-- name: exclusions_exact
CREATE TABLE {{w.excl_exact}} AS
SELECT DISTINCT identifier_type, v FROM {{w.excl_norm}} WHERE match_type = 'EXACT'

-- name: incr_edges_touched
-- Stored edges with an end among the delta's entities (one scan of the edge table).
CREATE TABLE {{w.edges_touched}} AS
SELECT e.left_entity_key, e.right_entity_key, e.identifier_type, e.identifier_value_norm
FROM idr_out.identity_edges_current AS e
WHERE e.left_entity_key IN (SELECT entity_key FROM {{w.entities}})
   OR e.right_entity_key IN (SELECT entity_key FROM {{w.entities}})

-- name: incr_old_ident
-- The delta's entities' stored identifiers: identifiers_current holds only the values
-- no edge links (held by one record, or in a skipped group); a linked value is read
-- from the edges, whose ends are its holders. UNION: rows are unique either way, and
-- state written before that split (every row in identifiers_current) stays readable.
CREATE TABLE {{w.old_ident}} AS
SELECT c.entity_key, c.identifier_type, c.identifier_value_norm
FROM idr_out.identifiers_current AS c
WHERE c.entity_key IN (SELECT entity_key FROM {{w.entities}})
UNION
SELECT t.left_entity_key, t.identifier_type, t.identifier_value_norm
FROM {{w.edges_touched}} AS t
WHERE t.left_entity_key IN (SELECT entity_key FROM {{w.entities}})
UNION
SELECT t.right_entity_key, t.identifier_type, t.identifier_value_norm
FROM {{w.edges_touched}} AS t
WHERE t.right_entity_key IN (SELECT entity_key FROM {{w.entities}})

-- name: incr_lost
CREATE TABLE {{w.lost}} AS
SELECT entity_key, identifier_type, identifier_value_norm FROM {{w.old_ident}}
EXCEPT
SELECT entity_key, identifier_type, identifier_value_norm FROM {{w.identifiers}}

-- name: incr_gained
CREATE TABLE {{w.gained}} AS
SELECT entity_key, identifier_type, identifier_value_norm FROM {{w.identifiers}}
EXCEPT
SELECT entity_key, identifier_type, identifier_value_norm FROM {{w.old_ident}}

-- name: incr_values
CREATE TABLE {{w.vals}} AS
SELECT DISTINCT identifier_type, identifier_value_norm FROM (
    SELECT identifier_type, identifier_value_norm FROM {{w.lost}}
    UNION ALL
    SELECT identifier_type, identifier_value_norm FROM {{w.gained}}) AS t

-- name: incr_members_old
-- Every stored holder of a value whose group changes: unlinked values from
-- identifiers_current, linked ones from both ends of their edges ({{w.edges_old}}).
CREATE TABLE {{w.members_old}} AS
SELECT c.entity_key, c.identifier_type, c.identifier_value_norm
FROM idr_out.identifiers_current AS c
JOIN {{w.vals}} AS v
  ON v.identifier_type = c.identifier_type AND v.identifier_value_norm = c.identifier_value_norm
UNION
SELECT left_entity_key, identifier_type, identifier_value_norm FROM {{w.edges_old}}
UNION
SELECT right_entity_key, identifier_type, identifier_value_norm FROM {{w.edges_old}}

-- name: incr_members
CREATE TABLE {{w.members}} AS
SELECT * FROM (
    SELECT entity_key, identifier_type, identifier_value_norm FROM {{w.members_old}}
    EXCEPT
    SELECT entity_key, identifier_type, identifier_value_norm FROM {{w.lost}}) AS kept
UNION ALL
SELECT entity_key, identifier_type, identifier_value_norm FROM {{w.gained}}

-- name: groups
CREATE TABLE {{w.groups}} AS
SELECT g.identifier_type, g.identifier_value_norm, g.n, g.anchor, r.rule_id, r.max_group_size
FROM (SELECT identifier_type, identifier_value_norm, count(*) AS n, min(entity_key) AS anchor
      FROM {{w.members}}
      GROUP BY identifier_type, identifier_value_norm) AS g
JOIN {{w.rules}} AS r ON r.identifier_type = g.identifier_type

-- name: full_groups
-- FULL runs also keep the anchor's run-local integer id, so the component stage reads
-- integer edges straight from {{w.edges_new}} instead of joining keys back to nodes.
CREATE TABLE {{w.groups}} AS
SELECT g.identifier_type, g.identifier_value_norm, g.n, g.anchor, g.anchor_eid, r.rule_id, r.max_group_size
FROM (SELECT identifier_type, identifier_value_norm, count(*) AS n, min(entity_key) AS anchor,
             arg_min(eid, entity_key) AS anchor_eid
      FROM {{w.members}}
      GROUP BY identifier_type, identifier_value_norm) AS g
JOIN {{w.rules}} AS r ON r.identifier_type = g.identifier_type

-- name: groups_old
CREATE TABLE {{w.groups_old}} AS
SELECT m.identifier_type, m.identifier_value_norm, count(*) AS n, r.rule_id, r.max_group_size
FROM {{w.members_old}} AS m
JOIN {{w.rules}} AS r ON r.identifier_type = m.identifier_type
GROUP BY m.identifier_type, m.identifier_value_norm, r.rule_id, r.max_group_size

-- name: edges_new
-- Star edges: every member links to the group's smallest key, so edges grow
-- linearly with group size; oversized groups (max_group_size) link nothing. Each edge
-- is matched once with the stored edges of the re-derived values ({{w.edges_old}}):
-- `existed` feeds the created/updated counts, first_seen_ts the publish.
CREATE TABLE {{w.edges_new}} AS
SELECT s.*, o.first_seen_ts, (o.left_entity_key IS NOT NULL) AS existed
FROM (
    SELECT g.rule_id, g.anchor AS left_entity_key, m.entity_key AS right_entity_key,
           m.identifier_type, m.identifier_value_norm
    FROM {{w.members}} AS m
    JOIN {{w.groups}} AS g
      ON g.identifier_type = m.identifier_type AND g.identifier_value_norm = m.identifier_value_norm
    WHERE g.n >= 2 AND g.n <= g.max_group_size AND m.entity_key <> g.anchor) AS s
LEFT JOIN {{w.edges_old}} AS o
  ON o.identifier_type = s.identifier_type AND o.identifier_value_norm = s.identifier_value_norm
 AND o.left_entity_key = s.left_entity_key AND o.right_entity_key = s.right_entity_key

-- name: full_edges_new
-- As edges_new, matched with every stored edge (FULL re-derives them all).
CREATE TABLE {{w.edges_new}} AS
SELECT s.*, o.first_seen_ts, (o.left_entity_key IS NOT NULL) AS existed
FROM (
    SELECT g.rule_id, g.anchor AS left_entity_key, m.entity_key AS right_entity_key,
           m.identifier_type, m.identifier_value_norm, g.anchor_eid AS left_eid, m.eid AS right_eid
    FROM {{w.members}} AS m
    JOIN {{w.groups}} AS g
      ON g.identifier_type = m.identifier_type AND g.identifier_value_norm = m.identifier_value_norm
    WHERE g.n >= 2 AND g.n <= g.max_group_size AND m.eid <> g.anchor_eid) AS s
LEFT JOIN idr_out.identity_edges_current AS o
  ON o.identifier_type = s.identifier_type AND o.identifier_value_norm = s.identifier_value_norm
 AND o.left_entity_key = s.left_entity_key AND o.right_entity_key = s.right_entity_key

-- name: skipped_members
-- Members of the groups over max_group_size: audited below, and stored in
-- identifiers_current at publish (no edge records them).
CREATE TABLE {{w.skipped_members}} AS
SELECT m.entity_key, m.identifier_type, m.identifier_value_norm, g.n AS group_size, g.max_group_size AS max_allowed
FROM {{w.groups}} AS g
JOIN {{w.members}} AS m
  ON g.identifier_type = m.identifier_type AND g.identifier_value_norm = m.identifier_value_norm
WHERE g.n > g.max_group_size

-- name: skipped
-- The sample is the five smallest member keys. Written with row_number + an ordered
-- string_agg because list slicing does not transpile (platforms without ordered
-- aggregates get a sorted array from their adapter).
CREATE TABLE {{w.skipped}} AS
SELECT identifier_type, identifier_value_norm, group_size, max_allowed,
       string_agg(entity_key, ',' ORDER BY entity_key) AS sample_entity_keys
FROM (
    SELECT identifier_type, identifier_value_norm, group_size, max_allowed, entity_key,
           row_number() OVER (PARTITION BY identifier_type, identifier_value_norm ORDER BY entity_key) AS rn
    FROM {{w.skipped_members}}) AS t
WHERE rn <= 5
GROUP BY identifier_type, identifier_value_norm, group_size, max_allowed

-- name: incr_old_edges
CREATE TABLE {{w.edges_old}} AS
SELECT e.* FROM idr_out.identity_edges_current AS e
JOIN {{w.vals}} AS v
  ON v.identifier_type = e.identifier_type AND v.identifier_value_norm = e.identifier_value_norm

-- name: incr_touched
-- Current membership of every entity the delta or a re-derived value touches: one scan
-- of the membership table that the three statements below share.
CREATE TABLE {{w.touched}} AS
SELECT m.entity_key, m.resolved_id
FROM idr_out.identity_resolved_membership_current AS m
WHERE m.entity_key IN (
    SELECT entity_key FROM {{w.members_old}}
    UNION ALL
    SELECT entity_key FROM {{w.entities}})

-- name: incr_broken
-- Current clusters that may split: a member lost a value, or a linking value's group
-- outgrew max_group_size. Every other impacted cluster only gains links and is
-- contracted to one node. (Both kinds of member are touched: lost rows belong to the
-- delta's entities, outgrown groups' members to members_old.)
CREATE TABLE {{w.broken}} AS
SELECT DISTINCT t.resolved_id
FROM {{w.touched}} AS t
WHERE t.entity_key IN (SELECT entity_key FROM {{w.lost}})
   OR t.entity_key IN (
        SELECT mo.entity_key
        FROM {{w.members_old}} AS mo
        JOIN {{w.groups_old}} AS go
          ON go.identifier_type = mo.identifier_type AND go.identifier_value_norm = mo.identifier_value_norm
        JOIN {{w.groups}} AS gn
          ON gn.identifier_type = mo.identifier_type AND gn.identifier_value_norm = mo.identifier_value_norm
        WHERE go.n >= 2 AND go.n <= go.max_group_size AND gn.n > gn.max_group_size)

-- name: incr_impacted
CREATE TABLE {{w.impacted}} AS
SELECT DISTINCT resolved_id FROM {{w.touched}}

-- name: incr_scope
-- Every member of an impacted cluster, plus the delta's entities that have no cluster yet.
CREATE TABLE {{w.scope}} AS
SELECT m.entity_key, m.resolved_id AS old_id, m.updated_ts AS old_ts,
       (b.resolved_id IS NOT NULL) AS broken
FROM idr_out.identity_resolved_membership_current AS m
JOIN {{w.impacted}} AS i ON i.resolved_id = m.resolved_id
LEFT JOIN {{w.broken}} AS b ON b.resolved_id = m.resolved_id
UNION ALL
SELECT e.entity_key, CAST(NULL AS VARCHAR), CAST(NULL AS TIMESTAMP), TRUE
FROM {{w.entities}} AS e
WHERE NOT EXISTS (SELECT 1 FROM {{w.touched}} AS t WHERE t.entity_key = e.entity_key)

-- name: incr_nodes
-- Untouched-by-removal clusters become one node each; the rest stay per entity.
CREATE TABLE {{w.nodes}} AS
SELECT entity_key, CAST(dense_rank() OVER (ORDER BY nkey) - 1 AS BIGINT) AS node
FROM (SELECT entity_key,
             CASE WHEN broken THEN 'e' || entity_key ELSE 'c' || old_id END AS nkey
      FROM {{w.scope}}) AS t

-- name: full_cc_edges
-- FULL: every entity is a node and its run-local eid is the node id (a view: no copy).
CREATE VIEW {{w.cc_edges}} AS
SELECT left_eid AS u, right_eid AS v FROM {{w.edges_new}}

-- name: full_proposed
-- table_id: the key rank (resolve_ids) reads this table rather than the entity rows, so
-- the rank carries each entity's component.
CREATE TABLE {{w.proposed}} AS
SELECT e.entity_key, coalesce(l.label, -1 - e.eid) AS comp, e.eid, e.table_id
FROM {{w.entities}} AS e
LEFT JOIN {{w.cc_labels}} AS l ON l.node = e.eid

-- name: cc_edges
CREATE TABLE {{w.cc_edges}} AS
SELECT a.node AS u, b.node AS v
FROM {{w.edges_new}} AS e
JOIN {{w.nodes}} AS a ON a.entity_key = e.left_entity_key
JOIN {{w.nodes}} AS b ON b.entity_key = e.right_entity_key
WHERE a.node <> b.node

-- name: incr_cc_edges_kept
-- Links of clusters that may split, minus the values being re-derived.
INSERT INTO {{w.cc_edges}}
SELECT a.node, b.node
FROM idr_out.identity_edges_current AS e
JOIN {{w.scope}} AS s ON s.entity_key = e.left_entity_key AND s.broken
JOIN {{w.nodes}} AS a ON a.entity_key = e.left_entity_key
JOIN {{w.nodes}} AS b ON b.entity_key = e.right_entity_key
WHERE a.node <> b.node
  AND NOT EXISTS (
    SELECT 1 FROM {{w.vals}} AS v
    WHERE v.identifier_type = e.identifier_type AND v.identifier_value_norm = e.identifier_value_norm)

-- name: proposed
CREATE TABLE {{w.proposed}} AS
SELECT n.entity_key, coalesce(l.label, -1 - n.node) AS comp
FROM {{w.nodes}} AS n
LEFT JOIN {{w.cc_labels}} AS l ON l.node = n.node
