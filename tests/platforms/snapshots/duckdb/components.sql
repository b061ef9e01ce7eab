-- name: init
CREATE TABLE temp.main."wsnap_cc_e0" AS
SELECT DISTINCT u, v FROM (
    SELECT u, v FROM temp.main."wsnap_cc_edges" WHERE u <> v
    UNION ALL
    SELECT v, u FROM temp.main."wsnap_cc_edges" WHERE u <> v) AS t;

-- name: hook
-- temp.main."wsnap_cc_cur": this round's edges (both directions); temp.main."wsnap_cc_par": node -> smallest key
-- among itself and its neighbours (x: the node's own key).
CREATE TABLE temp.main."wsnap_cc_par" AS
SELECT (u * CAST($a AS BIGINT) + $b) % $p AS x,
       least((u * CAST($a AS BIGINT) + $b) % $p, min((v * CAST($a AS BIGINT) + $b) % $p)) AS p,
       u AS node
FROM temp.main."wsnap_cc_cur"
GROUP BY u;

-- name: jump
-- Two pointer-jumping passes in one statement (p -> p(p(p(p)))): hook trees are shallow
-- (random keys), so this usually reaches the roots; ``moving`` says when it did not.
CREATE TABLE temp.main."wsnap_cc_map" AS
SELECT a.node, a.x, d.p
FROM temp.main."wsnap_cc_par" AS a
JOIN temp.main."wsnap_cc_par" AS b ON b.x = a.p
JOIN temp.main."wsnap_cc_par" AS c ON c.x = b.p
JOIN temp.main."wsnap_cc_par" AS d ON d.x = c.p;

-- name: jump_more
-- One more pass over the map itself (p -> p(p)), for the rare deeper tree.
CREATE TABLE temp.main."wsnap_cc_map2" AS
SELECT a.node, a.x, b.p
FROM temp.main."wsnap_cc_map" AS a
JOIN temp.main."wsnap_cc_map" AS b ON b.x = a.p;

-- name: progress
-- One read per round: edges left in this round, and pointers not yet at a root.
SELECT (SELECT count(*) FROM temp.main."wsnap_cc_cur") AS edges,
       (SELECT count(*) FROM temp.main."wsnap_cc_map" AS a JOIN temp.main."wsnap_cc_map" AS b ON b.x = a.p WHERE b.p <> a.p) AS moving;

-- name: moving
SELECT count(*) FROM temp.main."wsnap_cc_map" AS a JOIN temp.main."wsnap_cc_map" AS b ON b.x = a.p WHERE b.p <> a.p;

-- name: contract
CREATE TABLE temp.main."wsnap_cc_next" AS
SELECT DISTINCT pu.p AS u, pv.p AS v
FROM temp.main."wsnap_cc_cur" AS e
JOIN temp.main."wsnap_cc_map" AS pu ON pu.node = e.u
JOIN temp.main."wsnap_cc_map" AS pv ON pv.node = e.v
WHERE pu.p <> pv.p;
