-- Stable resolved ids, membership and cluster proposal, change detection.

-- name: full_scope
-- FULL: every current member, with its entity's eid; eid is NULL where no active source
-- holds the entity any more (gone_key keeps those keys for full_removed). One join where
-- matching and then anti-matching the sources cost two (10M records: 0.8-1.3 s against
-- 2.0-2.7 s).
CREATE TABLE {{w.scope}} AS
SELECT e.eid, m.resolved_id AS old_id, m.updated_ts AS old_ts,
       CASE WHEN e.eid IS NULL THEN m.entity_key END AS gone_key
FROM idr_out.identity_resolved_membership_current AS m
LEFT JOIN {{w.entities}} AS e ON e.entity_key = m.entity_key

-- name: full_key_rank
-- Each entity's position in entity_key order: later stages compare these integers
-- where they would compare keys (smallest member, tie-breaks). Only the keys are
-- sorted; carrying the wide rows through the sort would cost several times more.
CREATE TABLE {{w.key_rank}} AS
SELECT eid, comp, row_number() OVER (ORDER BY entity_key) AS kr FROM {{w.proposed}}

-- name: overlap
CREATE TABLE {{w.overlap}} AS
SELECT p.comp, s.old_id, count(*) AS n
FROM {{w.proposed}} AS p
JOIN {{w.scope}} AS s ON s.entity_key = p.entity_key
WHERE s.old_id IS NOT NULL
GROUP BY p.comp, s.old_id

-- name: full_overlap
CREATE TABLE {{w.overlap}} AS
SELECT p.comp, s.old_id, count(*) AS n
FROM {{w.proposed}} AS p
JOIN {{w.scope}} AS s ON s.eid = p.eid
WHERE s.old_id IS NOT NULL
GROUP BY p.comp, s.old_id

-- name: comps
CREATE TABLE {{w.comps}} AS
SELECT comp, min(entity_key) AS min_key, count(*) AS size
FROM {{w.proposed}}
GROUP BY comp

-- name: full_comps
-- min_key is the smallest member's kr: the same order as its entity_key. The rank
-- carries the component, so no join.
CREATE TABLE {{w.comps}} AS
SELECT comp, min(kr) AS min_key, count(*) AS size
FROM {{w.key_rank}}
GROUP BY comp

-- name: keep
-- A current cluster's id goes to the proposed cluster holding most of its members
-- (ties: the one with the smallest member key). A proposed cluster that inherits
-- several ids keeps the one of the largest current cluster (ties: smallest id).
CREATE TABLE {{w.keep}} AS
WITH heir AS (
    SELECT o.old_id, o.comp
    FROM {{w.overlap}} AS o
    JOIN {{w.comps}} AS c ON c.comp = o.comp
    QUALIFY row_number() OVER (PARTITION BY o.old_id ORDER BY o.n DESC, c.min_key) = 1
)
SELECT h.comp, h.old_id AS resolved_id
FROM heir AS h
JOIN idr_out.identity_clusters_current AS cc ON cc.resolved_id = h.old_id
QUALIFY row_number() OVER (PARTITION BY h.comp ORDER BY cc.cluster_size DESC, h.old_id) = 1

-- name: comp_ids
-- New ids: numbered from the sequence in order of each cluster's smallest member key,
-- so the same input always gets the same ids (written in one pass: an UPDATE of the
-- new ids afterwards cost more than the whole numbering).
CREATE TABLE {{w.comp_ids}} AS
SELECT comp, size, coalesce(kept_id, 'R' || lpad(CAST(new_no AS VARCHAR), 11, '0')) AS resolved_id, new_no
FROM (
    SELECT c.comp, c.size, k.resolved_id AS kept_id,
           CASE WHEN k.resolved_id IS NULL
                THEN $next + row_number() OVER (PARTITION BY k.resolved_id IS NULL ORDER BY c.min_key) - 1
           END AS new_no
    FROM {{w.comps}} AS c
    LEFT JOIN {{w.keep}} AS k ON k.comp = c.comp) AS t

-- name: new_membership
-- Proposed membership of the scope, with the current id beside it.
CREATE TABLE {{w.membership}} AS
SELECT p.entity_key, c.resolved_id, s.old_id, s.old_ts, c.size AS cluster_size
FROM {{w.proposed}} AS p
JOIN {{w.comp_ids}} AS c ON c.comp = p.comp
JOIN {{w.scope}} AS s ON s.entity_key = p.entity_key

-- name: full_new_membership
CREATE TABLE {{w.membership}} AS
SELECT p.entity_key, c.resolved_id, s.old_id, s.old_ts, c.size AS cluster_size
FROM {{w.proposed}} AS p
JOIN {{w.comp_ids}} AS c ON c.comp = p.comp
LEFT JOIN {{w.scope}} AS s ON s.eid = p.eid

-- name: full_removed
-- FULL only: current members no longer present in any active source.
CREATE TABLE {{w.removed}} AS
SELECT gone_key AS entity_key, old_id FROM {{w.scope}} WHERE eid IS NULL

-- name: removed_empty
CREATE TABLE {{w.removed}} (entity_key VARCHAR, old_id VARCHAR)

-- name: changed_ids
-- Every id whose member set changes: the old and new id of each moved entity, and
-- the old id of each removed entity.
CREATE TABLE {{w.changed_ids}} AS
SELECT DISTINCT resolved_id FROM (
    SELECT old_id AS resolved_id FROM {{w.membership}} WHERE old_id IS DISTINCT FROM resolved_id
    UNION ALL
    SELECT resolved_id FROM {{w.membership}} WHERE old_id IS DISTINCT FROM resolved_id
    UNION ALL
    SELECT old_id FROM {{w.removed}}) AS t
WHERE resolved_id IS NOT NULL
