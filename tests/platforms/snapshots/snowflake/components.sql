-- name: init
CREATE TABLE "IDR_WORK"."WSNAP_CC_E0" AS SELECT DISTINCT "U", "V" FROM (SELECT "U", "V" FROM "IDR_WORK"."WSNAP_CC_EDGES" WHERE "U" <> "V" UNION ALL SELECT "V", "U" FROM "IDR_WORK"."WSNAP_CC_EDGES" WHERE "U" <> "V") AS "T";

-- name: hook
/* "idr_work"."wsnap_cc_cur": this round's edges (both directions); "idr_work"."wsnap_cc_par": node -> smallest key */ /* among itself and its neighbours (x: the node's own key). */ CREATE TABLE "IDR_WORK"."WSNAP_CC_PAR" AS SELECT ("U" * CAST(? AS BIGINT) + ?) % ? AS "X", LEAST_IGNORE_NULLS(("U" * CAST(? AS BIGINT) + ?) % ?, MIN(("V" * CAST(? AS BIGINT) + ?) % ?)) AS "P", "U" AS "NODE" FROM "IDR_WORK"."WSNAP_CC_CUR" GROUP BY "U";

-- name: jump
/* Two pointer-jumping passes in one statement (p -> p(p(p(p)))): hook trees are shallow */ /* (random keys), so this usually reaches the roots; ``moving`` says when it did not. */ CREATE TABLE "IDR_WORK"."WSNAP_CC_MAP" AS SELECT "A"."NODE", "A"."X", "D"."P" FROM "IDR_WORK"."WSNAP_CC_PAR" AS "A" JOIN "IDR_WORK"."WSNAP_CC_PAR" AS "B" ON "B"."X" = "A"."P" JOIN "IDR_WORK"."WSNAP_CC_PAR" AS "C" ON "C"."X" = "B"."P" JOIN "IDR_WORK"."WSNAP_CC_PAR" AS "D" ON "D"."X" = "C"."P";

-- name: jump_more
/* One more pass over the map itself (p -> p(p)), for the rare deeper tree. */ CREATE TABLE "IDR_WORK"."WSNAP_CC_MAP2" AS SELECT "A"."NODE", "A"."X", "B"."P" FROM "IDR_WORK"."WSNAP_CC_MAP" AS "A" JOIN "IDR_WORK"."WSNAP_CC_MAP" AS "B" ON "B"."X" = "A"."P";

-- name: progress
/* One read per round: edges left in this round, and pointers not yet at a root. */ SELECT (SELECT COUNT(*) FROM "IDR_WORK"."WSNAP_CC_CUR") AS "EDGES", (SELECT COUNT(*) FROM "IDR_WORK"."WSNAP_CC_MAP" AS "A" JOIN "IDR_WORK"."WSNAP_CC_MAP" AS "B" ON "B"."X" = "A"."P" WHERE "B"."P" <> "A"."P") AS "MOVING";

-- name: moving
SELECT COUNT(*) FROM "IDR_WORK"."WSNAP_CC_MAP" AS "A" JOIN "IDR_WORK"."WSNAP_CC_MAP" AS "B" ON "B"."X" = "A"."P" WHERE "B"."P" <> "A"."P";

-- name: contract
CREATE TABLE "IDR_WORK"."WSNAP_CC_NEXT" AS SELECT DISTINCT "PU"."P" AS "U", "PV"."P" AS "V" FROM "IDR_WORK"."WSNAP_CC_CUR" AS "E" JOIN "IDR_WORK"."WSNAP_CC_MAP" AS "PU" ON "PU"."NODE" = "E"."U" JOIN "IDR_WORK"."WSNAP_CC_MAP" AS "PV" ON "PV"."NODE" = "E"."V" WHERE "PU"."P" <> "PV"."P";

-- name: lab_init
/* Server-side loop (app.pipeline.components.script_components): the same rounds as one */ /* script, with fixed table names, each round's keys in variables idr_ka / idr_kb and */ /* cc_lab(node, rnd, rep): where every original node's supernode is, as (round space, */ /* id), in place of the per-round maps the portable path joins at the end. */ CREATE TABLE "IDR_WORK"."WSNAP_CC_LAB" AS SELECT DISTINCT "U" AS "NODE", CAST(1 AS BIGINT) AS "RND", "U" AS "REP" FROM "IDR_WORK"."WSNAP_CC_CUR";

-- name: hook_var
CREATE TABLE "IDR_WORK"."WSNAP_CC_PAR" AS SELECT ("U" * "IDR_KA" + "IDR_KB") % ? AS "X", LEAST_IGNORE_NULLS(("U" * "IDR_KA" + "IDR_KB") % ?, MIN(("V" * "IDR_KA" + "IDR_KB") % ?)) AS "P", "U" AS "NODE" FROM "IDR_WORK"."WSNAP_CC_CUR" GROUP BY "U";

-- name: lab_next
/* Nodes still in this round's space follow the map into the next round's; the others */ /* (their supernode had no edge left) keep where they ended. */ CREATE TABLE "IDR_WORK"."WSNAP_CC_LAB2" AS SELECT "L"."NODE", CASE WHEN "M"."NODE" IS NULL THEN "L"."RND" ELSE "L"."RND" + 1 END AS "RND", COALESCE("M"."P", "L"."REP") AS "REP" FROM "IDR_WORK"."WSNAP_CC_LAB" AS "L" LEFT JOIN "IDR_WORK"."WSNAP_CC_MAP" AS "M" ON "M"."NODE" = "L"."REP" AND "L"."RND" = "IDR_R";

-- name: labels
CREATE TABLE "IDR_WORK"."WSNAP_CC_LABELS" AS SELECT "NODE", "RND" * ? + "REP" AS "LABEL" FROM "IDR_WORK"."WSNAP_CC_LAB";
