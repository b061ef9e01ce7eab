-- name: full_proposed
/* Entities no edge links are components of their own (negative labels: union-find and */ /* SQL labels are never negative). */ CREATE TABLE "IDR_WORK"."WSNAP_PROPOSED" AS SELECT "I"."EID", COALESCE("L"."LABEL", -1 - "I"."EID") AS "COMP", "K"."KR", "I"."OLD_RID", "I"."OLD_TS" FROM "IDR_WORK"."WSNAP_ENT_IDS" AS "I" JOIN "IDR_WORK"."WSNAP_KEY_RANK" AS "K" ON "K"."EID" = "I"."EID" LEFT JOIN "IDR_WORK"."WSNAP_CC_LABELS" AS "L" ON "L"."NODE" = "I"."EID";

-- name: fresh_proposed
/* A first run: eid order is entity_key order, so the eid is the rank. */ CREATE TABLE "IDR_WORK"."WSNAP_PROPOSED" AS SELECT "I"."EID", COALESCE("L"."LABEL", -1 - "I"."EID") AS "COMP", "I"."EID" AS "KR", CAST(NULL AS BIGINT) AS "OLD_RID", CAST(NULL AS TIMESTAMPNTZ) AS "OLD_TS" FROM "IDR_WORK"."WSNAP_ENT_IDS" AS "I" LEFT JOIN "IDR_WORK"."WSNAP_CC_LABELS" AS "L" ON "L"."NODE" = "I"."EID";

-- name: incr_proposed
CREATE TABLE "IDR_WORK"."WSNAP_PROPOSED" AS SELECT "S"."EID", COALESCE("L"."LABEL", -1 - "N"."NODE") AS "COMP", "S"."KR", "S"."OLD_RID", "S"."OLD_TS" FROM "IDR_WORK"."WSNAP_SCOPE_KEYS" AS "S" JOIN "IDR_WORK"."WSNAP_NODES" AS "N" ON "N"."EID" = "S"."EID" LEFT JOIN "IDR_WORK"."WSNAP_CC_LABELS" AS "L" ON "L"."NODE" = "N"."NODE";

-- name: comps
CREATE TABLE "IDR_WORK"."WSNAP_COMPS" AS SELECT "COMP", MIN("KR") AS "MIN_KR", COUNT(*) AS "SIZE" FROM "IDR_WORK"."WSNAP_PROPOSED" GROUP BY "COMP";

-- name: overlap
CREATE TABLE "IDR_WORK"."WSNAP_OVERLAP" AS SELECT "COMP", "OLD_RID", COUNT(*) AS "N" FROM "IDR_WORK"."WSNAP_PROPOSED" WHERE NOT "OLD_RID" IS NULL GROUP BY "COMP", "OLD_RID";

-- name: keep
/* A current cluster's id goes to the proposed cluster holding most of its members */ /* (ties: the one with the smallest member key). A proposed cluster that inherits */ /* several ids keeps the one of the largest current cluster (ties: smallest id). */ CREATE TABLE "IDR_WORK"."WSNAP_KEEP" AS WITH "HEIR" AS (SELECT "O"."OLD_RID", "O"."COMP" FROM "IDR_WORK"."WSNAP_OVERLAP" AS "O" JOIN "IDR_WORK"."WSNAP_COMPS" AS "C" ON "C"."COMP" = "O"."COMP" QUALIFY ROW_NUMBER() OVER (PARTITION BY "O"."OLD_RID" ORDER BY "O"."N" DESC NULLS LAST, "C"."MIN_KR") = 1) SELECT "H"."COMP", "H"."OLD_RID" AS "RID" FROM "HEIR" AS "H" JOIN "IDR_STATE"."CLUSTERS" AS "CC" ON "CC"."RID" = "H"."OLD_RID" QUALIFY ROW_NUMBER() OVER (PARTITION BY "H"."COMP" ORDER BY "CC"."CLUSTER_SIZE" DESC NULLS LAST, "H"."OLD_RID") = 1;

-- name: comp_ids
/* New ids: numbered from the sequence in order of each cluster's smallest member key, */ /* so the same input always gets the same ids. */ CREATE TABLE "IDR_WORK"."WSNAP_COMP_IDS" AS SELECT "C"."COMP", "C"."SIZE", "C"."MIN_KR", COALESCE("K"."RID", ? - 1 + ROW_NUMBER() OVER (PARTITION BY "K"."RID" IS NULL ORDER BY "C"."MIN_KR")) AS "RID", "K"."RID" IS NULL AS "IS_NEW" FROM "IDR_WORK"."WSNAP_COMPS" AS "C" LEFT JOIN "IDR_WORK"."WSNAP_KEEP" AS "K" ON "K"."COMP" = "C"."COMP";

-- name: membership
/* Proposed membership of the scope, with the current id beside it. */ CREATE TABLE "IDR_WORK"."WSNAP_MEMBERSHIP" AS SELECT "P"."EID", "C"."RID", "P"."OLD_RID", "P"."OLD_TS", "C"."SIZE" AS "CLUSTER_SIZE" FROM "IDR_WORK"."WSNAP_PROPOSED" AS "P" JOIN "IDR_WORK"."WSNAP_COMP_IDS" AS "C" ON "C"."COMP" = "P"."COMP";

-- name: full_removed
/* FULL only: current members no active source holds any more. */ /* Why: a key the run saw flagged or erased ("idr_work"."wsnap_gone"), else gone from its source. */ CREATE TABLE "IDR_WORK"."WSNAP_REMOVED" AS SELECT "E"."EID", "E"."RID" AS "OLD_RID", COALESCE("G"."REASON_NO", 2) AS "REASON_NO" FROM "IDR_STATE"."ENTITIES" AS "E" LEFT JOIN (SELECT "ENTITY_KEY", MIN("REASON_NO") AS "REASON_NO" FROM "IDR_WORK"."WSNAP_GONE" GROUP BY "ENTITY_KEY") AS "G" ON "G"."ENTITY_KEY" = "E"."ENTITY_KEY" WHERE NOT "E"."RID" IS NULL AND NOT "E"."EID" IN (SELECT "EID" FROM "IDR_WORK"."WSNAP_ENT_IDS");

-- name: incr_removed
/* INCR: the members the run removes (soft deletes, erasures, reconciliation). */ CREATE TABLE "IDR_WORK"."WSNAP_REMOVED" AS SELECT "EID", "OLD_RID", "REASON_NO" FROM "IDR_WORK"."WSNAP_DROPPED";

-- name: changed_rids
/* Every id whose member set changes: the old and new id of each moved entity, and */ /* the old id of each removed entity. */ CREATE TABLE "IDR_WORK"."WSNAP_CHANGED_RIDS" AS SELECT DISTINCT "RID" FROM (SELECT "OLD_RID" AS "RID" FROM "IDR_WORK"."WSNAP_MEMBERSHIP" WHERE "OLD_RID" IS DISTINCT FROM "RID" UNION ALL SELECT "RID" FROM "IDR_WORK"."WSNAP_MEMBERSHIP" WHERE "OLD_RID" IS DISTINCT FROM "RID" UNION ALL SELECT "OLD_RID" FROM "IDR_WORK"."WSNAP_REMOVED") AS "T" WHERE NOT "RID" IS NULL;

-- name: full_cluster_links
/* Per component: the edges of its linked values (a star: holders - 1 each) and how many */ /* identifier types they span. Every holder of a value is in one cluster: its anchor's. */ CREATE TABLE "IDR_WORK"."WSNAP_CLUSTER_LINKS" AS SELECT "P"."COMP", SUM("V"."HOLDERS" - 1) AS "EDGES", COUNT(DISTINCT "V"."TYPE_NO") AS "DIVERSITY" FROM "IDR_WORK"."WSNAP_VALUES_NEW" AS "V" JOIN "IDR_WORK"."WSNAP_PROPOSED" AS "P" ON "P"."EID" = "V"."ANCHOR_EID" WHERE "V"."LINKED" GROUP BY "P"."COMP";

-- name: incr_cluster_links
/* The same over the scope: the re-derived values and the stored ones anchored in it. */ CREATE TABLE "IDR_WORK"."WSNAP_CLUSTER_LINKS" AS SELECT "P"."COMP", SUM("V"."HOLDERS" - 1) AS "EDGES", COUNT(DISTINCT "V"."TYPE_NO") AS "DIVERSITY" FROM (SELECT "VID", "ANCHOR_EID", "HOLDERS", "TYPE_NO" FROM "IDR_WORK"."WSNAP_VALUES_NEW" WHERE "LINKED" UNION ALL SELECT "S"."VID", "S"."ANCHOR_EID", "S"."HOLDERS", "S"."TYPE_NO" FROM "IDR_STATE"."IDENTIFIER_VALUES" AS "S" WHERE "S"."LINKED" AND "S"."ANCHOR_EID" IN (SELECT "EID" FROM "IDR_WORK"."WSNAP_PROPOSED") AND NOT "S"."VID" IN (SELECT "VID" FROM "IDR_WORK"."WSNAP_VALS")) AS "V" JOIN "IDR_WORK"."WSNAP_PROPOSED" AS "P" ON "P"."EID" = "V"."ANCHOR_EID" GROUP BY "P"."COMP";

-- name: clusters_new
/* Cluster confidence (the predecessor's weighting): 0.5 x the share of the active rules' */ /* identifier types among the cluster's edges + 0.35 x edge density (edges / (size - 1), */ /* capped at 1) + 0.15 for linking at all; a record alone scores 1. */ CREATE TABLE "IDR_WORK"."WSNAP_CLUSTERS_NEW" AS SELECT "C"."RID", "C"."SIZE" AS "CLUSTER_SIZE", COALESCE("L"."EDGES", 0) AS "EDGE_COUNT", CAST(COALESCE("L"."DIVERSITY", 0) AS INT) AS "EDGE_DIVERSITY", CASE WHEN "C"."SIZE" > 1 THEN LEAST_IGNORE_NULLS(1.0, COALESCE("L"."EDGES", 0) / ("C"."SIZE" - 1.0)) ELSE 0.0 END AS "MATCH_DENSITY", CASE WHEN "C"."SIZE" = 1 THEN 1.0 ELSE ROUND(0.5 * LEAST_IGNORE_NULLS(1.0, COALESCE("L"."DIVERSITY", 0) / ?) + 0.35 * LEAST_IGNORE_NULLS(1.0, COALESCE("L"."EDGES", 0) / ("C"."SIZE" - 1.0)) + 0.15, 4) END AS "CONFIDENCE_SCORE", CASE WHEN "C"."SIZE" = 1 THEN 'SINGLETON_NO_MATCH_REQUIRED' ELSE CAST(COALESCE("L"."DIVERSITY", 0) AS VARCHAR) || CASE WHEN COALESCE("L"."DIVERSITY", 0) = 1 THEN ' identifier type, ' ELSE ' identifier types, ' END || CASE WHEN LEAST_IGNORE_NULLS(1.0, COALESCE("L"."EDGES", 0) / ("C"."SIZE" - 1.0)) >= 0.8 THEN 'high density' WHEN LEAST_IGNORE_NULLS(1.0, COALESCE("L"."EDGES", 0) / ("C"."SIZE" - 1.0)) >= 0.5 THEN 'medium density' ELSE 'low density' END END AS "PRIMARY_REASON" FROM "IDR_WORK"."WSNAP_COMP_IDS" AS "C" LEFT JOIN "IDR_WORK"."WSNAP_CLUSTER_LINKS" AS "L" ON "L"."COMP" = "C"."COMP";
