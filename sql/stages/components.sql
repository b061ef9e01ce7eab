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
CREATE TABLE {{w.cc_par}} AS
SELECT (u * CAST($a AS BIGINT) + $b) % $p AS x,
       least((u * CAST($a AS BIGINT) + $b) % $p, min((v * CAST($a AS BIGINT) + $b) % $p)) AS p,
       u AS node
FROM {{w.cc_cur}}
GROUP BY u

-- name: jump
-- Only pointers that do not point at a root move.
CREATE TABLE {{w.cc_par2}} AS
SELECT a.x, b.p, a.node
FROM {{w.cc_par}} AS a
JOIN {{w.cc_par}} AS b ON b.x = a.p

-- name: moving
SELECT count(*) FROM {{w.cc_par}} AS a JOIN {{w.cc_par}} AS b ON b.x = a.p WHERE b.p <> a.p

-- name: contract
CREATE TABLE {{w.cc_next}} AS
SELECT DISTINCT pu.p AS u, pv.p AS v
FROM {{w.cc_cur}} AS e
JOIN {{w.cc_map}} AS pu ON pu.node = e.u
JOIN {{w.cc_map}} AS pv ON pv.node = e.v
WHERE pu.p <> pv.p
