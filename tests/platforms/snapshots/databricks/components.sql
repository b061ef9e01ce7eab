-- name: init
CREATE TABLE `idr_work`.`wsnap_cc_e0` AS SELECT DISTINCT u, v FROM (SELECT u, v FROM `idr_work`.`wsnap_cc_edges` WHERE u <> v UNION ALL SELECT v, u FROM `idr_work`.`wsnap_cc_edges` WHERE u <> v) AS t;

-- name: hook
/* "idr_work"."wsnap_cc_cur": this round's edges (both directions); "idr_work"."wsnap_cc_par": node -> smallest key */ /* among itself and its neighbours (x: the node's own key). */ CREATE TABLE `idr_work`.`wsnap_cc_par` AS SELECT (u * CAST(:a AS BIGINT) + :b) % :p AS x, LEAST((u * CAST(:a AS BIGINT) + :b) % :p, MIN((v * CAST(:a AS BIGINT) + :b) % :p)) AS p, u AS node FROM `idr_work`.`wsnap_cc_cur` GROUP BY u;

-- name: jump
/* Two pointer-jumping passes in one statement (p -> p(p(p(p)))): hook trees are shallow */ /* (random keys), so this usually reaches the roots; ``moving`` says when it did not. */ CREATE TABLE `idr_work`.`wsnap_cc_map` AS SELECT a.node, a.x, d.p FROM `idr_work`.`wsnap_cc_par` AS a JOIN `idr_work`.`wsnap_cc_par` AS b ON b.x = a.p JOIN `idr_work`.`wsnap_cc_par` AS c ON c.x = b.p JOIN `idr_work`.`wsnap_cc_par` AS d ON d.x = c.p;

-- name: jump_more
/* One more pass over the map itself (p -> p(p)), for the rare deeper tree. */ CREATE TABLE `idr_work`.`wsnap_cc_map2` AS SELECT a.node, a.x, b.p FROM `idr_work`.`wsnap_cc_map` AS a JOIN `idr_work`.`wsnap_cc_map` AS b ON b.x = a.p;

-- name: progress
/* One read per round: edges left in this round, and pointers not yet at a root. */ SELECT (SELECT COUNT(*) FROM `idr_work`.`wsnap_cc_cur`) AS edges, (SELECT COUNT(*) FROM `idr_work`.`wsnap_cc_map` AS a JOIN `idr_work`.`wsnap_cc_map` AS b ON b.x = a.p WHERE b.p <> a.p) AS moving;

-- name: moving
SELECT COUNT(*) FROM `idr_work`.`wsnap_cc_map` AS a JOIN `idr_work`.`wsnap_cc_map` AS b ON b.x = a.p WHERE b.p <> a.p;

-- name: contract
CREATE TABLE `idr_work`.`wsnap_cc_next` AS SELECT DISTINCT pu.p AS u, pv.p AS v FROM `idr_work`.`wsnap_cc_cur` AS e JOIN `idr_work`.`wsnap_cc_map` AS pu ON pu.node = e.u JOIN `idr_work`.`wsnap_cc_map` AS pv ON pv.node = e.v WHERE pu.p <> pv.p;

-- name: lab_init
/* Server-side loop (app.pipeline.components.script_components): the same rounds as one */ /* script, with fixed table names, each round's keys in variables idr_ka / idr_kb and */ /* cc_lab(node, rnd, rep): where every original node's supernode is, as (round space, */ /* id), in place of the per-round maps the portable path joins at the end. */ CREATE TABLE `idr_work`.`wsnap_cc_lab` AS SELECT DISTINCT u AS node, CAST(1 AS BIGINT) AS rnd, u AS rep FROM `idr_work`.`wsnap_cc_cur`;

-- name: hook_var
CREATE TABLE `idr_work`.`wsnap_cc_par` AS SELECT (u * idr_ka + idr_kb) % :p AS x, LEAST((u * idr_ka + idr_kb) % :p, MIN((v * idr_ka + idr_kb) % :p)) AS p, u AS node FROM `idr_work`.`wsnap_cc_cur` GROUP BY u;

-- name: lab_next
/* Nodes still in this round's space follow the map into the next round's; the others */ /* (their supernode had no edge left) keep where they ended. */ CREATE TABLE `idr_work`.`wsnap_cc_lab2` AS SELECT l.node, CASE WHEN m.node IS NULL THEN l.rnd ELSE l.rnd + 1 END AS rnd, COALESCE(m.p, l.rep) AS rep FROM `idr_work`.`wsnap_cc_lab` AS l LEFT JOIN `idr_work`.`wsnap_cc_map` AS m ON m.node = l.rep AND l.rnd = idr_r;

-- name: labels
CREATE TABLE `idr_work`.`wsnap_cc_labels` AS SELECT node, rnd * :p + rep AS label FROM `idr_work`.`wsnap_cc_lab`;
