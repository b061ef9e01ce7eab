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
