-- Exact connected components by randomized hooking + pointer jumping + contraction.
-- Each round relabels nodes with a fresh random bijection key(x) = (x*A + B) mod P
-- (P prime > every node id), hooks every node to the smallest key among itself and its
-- neighbours, collapses each hook tree to its root by pointer jumping, and contracts the
-- edge list onto the roots. A node is a local minimum with probability <= 1/2, so the
-- node count roughly halves per round: O(log n) rounds. Components that have collapsed
-- to one node lose all their edges and leave the loop.

-- name: init
CREATE TABLE {{w.cc_e0}} AS
SELECT DISTINCT u, v FROM (
    SELECT u, v FROM {{w.cc_edges}} WHERE u <> v
    UNION ALL
    SELECT v, u FROM {{w.cc_edges}} WHERE u <> v) AS t

-- name: hook
-- {{w.cc_cur}}: this round's edges (both directions); {{w.cc_par}}: node -> smallest key
-- among itself and its neighbours (x: the node's own key).
CREATE TABLE {{w.cc_par}} AS
SELECT (u * CAST($a AS BIGINT) + $b) % $p AS x,
       least((u * CAST($a AS BIGINT) + $b) % $p, min((v * CAST($a AS BIGINT) + $b) % $p)) AS p,
       u AS node
FROM {{w.cc_cur}}
GROUP BY u

-- name: jump
-- Two pointer-jumping passes in one statement (p -> p(p(p(p)))): hook trees are shallow
-- (random keys), so this usually reaches the roots; ``moving`` says when it did not.
CREATE TABLE {{w.cc_map}} AS
SELECT a.node, a.x, d.p
FROM {{w.cc_par}} AS a
JOIN {{w.cc_par}} AS b ON b.x = a.p
JOIN {{w.cc_par}} AS c ON c.x = b.p
JOIN {{w.cc_par}} AS d ON d.x = c.p

-- name: jump_more
-- One more pass over the map itself (p -> p(p)), for the rare deeper tree.
CREATE TABLE {{w.cc_map2}} AS
SELECT a.node, a.x, b.p
FROM {{w.cc_map}} AS a
JOIN {{w.cc_map}} AS b ON b.x = a.p

-- name: progress
-- One read per round: edges left in this round, and pointers not yet at a root.
SELECT (SELECT count(*) FROM {{w.cc_cur}}) AS edges,
       (SELECT count(*) FROM {{w.cc_map}} AS a JOIN {{w.cc_map}} AS b ON b.x = a.p WHERE b.p <> a.p) AS moving

-- name: moving
SELECT count(*) FROM {{w.cc_map}} AS a JOIN {{w.cc_map}} AS b ON b.x = a.p WHERE b.p <> a.p

-- name: contract
CREATE TABLE {{w.cc_next}} AS
SELECT DISTINCT pu.p AS u, pv.p AS v
FROM {{w.cc_cur}} AS e
JOIN {{w.cc_map}} AS pu ON pu.node = e.u
JOIN {{w.cc_map}} AS pv ON pv.node = e.v
WHERE pu.p <> pv.p
