-- name: identifiers_distinct
/* Two mappings of one source with the same type can yield the same (entity, type, value). */ CREATE TABLE "IDR_WORK"."WSNAP_IDENTIFIERS" AS SELECT DISTINCT "EID", "TYPE_NO", "VALUE_NORM" FROM "IDR_WORK"."WSNAP_IDENT_RAW";

-- name: identifiers_view
CREATE VIEW "IDR_WORK"."WSNAP_IDENTIFIERS" AS SELECT "EID", "TYPE_NO", "VALUE_NORM" FROM "IDR_WORK"."WSNAP_IDENT_RAW" /* ------------------------------------------------------------------------------- FULL */;

-- name: fresh_values
/* A first run: every value is new (vid from tvid), kr is the eid itself. */ CREATE TABLE "IDR_WORK"."WSNAP_VALUES_NEW" AS SELECT ? + "G"."TVID" AS "VID", "G"."TVID", "G"."TYPE_NO", "G"."VALUE_NORM", "G"."N" AS "HOLDERS", "G"."EID" AS "ANCHOR_EID", ("G"."N" >= 2 AND "G"."N" <= "R"."MAX_GROUP_SIZE") AS "LINKED", "R"."RULE_ID", "R"."MAX_GROUP_SIZE", FALSE AS "EXISTED" FROM "IDR_WORK"."WSNAP_GRP_ROWS" AS "G" JOIN "IDR_WORK"."WSNAP_RULES" AS "R" ON "R"."TYPE_NO" = "G"."TYPE_NO" WHERE "G"."EID" = "G"."ANCHOR_KR";

-- name: fresh_holders
CREATE TABLE "IDR_WORK"."WSNAP_HOLDERS_NEW" AS SELECT ? + "TVID" AS "VID", "EID" FROM "IDR_WORK"."WSNAP_GRP_ROWS" WHERE "N" >= 2;

-- name: fresh_edges_new
CREATE TABLE "IDR_WORK"."WSNAP_EDGES_NEW" AS SELECT ? + "G"."TVID" AS "VID", "R"."RULE_ID", "G"."ANCHOR_KR" AS "LEFT_EID", "G"."EID" AS "RIGHT_EID", CAST(NULL AS TIMESTAMPNTZ) AS "FIRST_SEEN_TS", FALSE AS "EXISTED" FROM "IDR_WORK"."WSNAP_GRP_ROWS" AS "G" JOIN "IDR_WORK"."WSNAP_RULES" AS "R" ON "R"."TYPE_NO" = "G"."TYPE_NO" WHERE "G"."N" >= 2 AND "G"."N" <= "R"."MAX_GROUP_SIZE" AND "G"."EID" <> "G"."ANCHOR_KR";

-- name: full_values
/* One row per value: the anchor's row. A value stored before keeps its vid (FULL over */ /* a stored state), so its edges keep their first_seen_ts. */ CREATE TABLE "IDR_WORK"."WSNAP_VALUES_NEW" AS SELECT COALESCE("O"."VID", ? + "G"."TVID") AS "VID", "G"."TVID", "G"."TYPE_NO", "G"."VALUE_NORM", "G"."N" AS "HOLDERS", "G"."EID" AS "ANCHOR_EID", ("G"."N" >= 2 AND "G"."N" <= "R"."MAX_GROUP_SIZE") AS "LINKED", "R"."RULE_ID", "R"."MAX_GROUP_SIZE", NOT "O"."VID" IS NULL AS "EXISTED" FROM "IDR_WORK"."WSNAP_GRP_ROWS" AS "G" JOIN "IDR_WORK"."WSNAP_RULES" AS "R" ON "R"."TYPE_NO" = "G"."TYPE_NO" LEFT JOIN "IDR_STATE"."IDENTIFIER_VALUES" AS "O" ON "O"."TYPE_NO" = "G"."TYPE_NO" AND "O"."VALUE_NORM" = "G"."VALUE_NORM" WHERE "G"."KR" = "G"."ANCHOR_KR";

-- name: full_holders
/* Every holder of a value held by two or more entities (its anchor included). */ CREATE TABLE "IDR_WORK"."WSNAP_HOLDERS_NEW" AS SELECT "V"."VID", "G"."EID" FROM "IDR_WORK"."WSNAP_GRP_ROWS" AS "G" JOIN "IDR_WORK"."WSNAP_VALUES_NEW" AS "V" ON "V"."TVID" = "G"."TVID" WHERE "G"."N" >= 2 /* ------------------------------------------------------------------------------- INCR */;

-- name: incr_delta_values
/* The delta's values with their vid; a value seen for the first time gets a new one. */ CREATE TABLE "IDR_WORK"."WSNAP_DELTA_VALUES" AS SELECT COALESCE("O"."VID", ? - 1 + ROW_NUMBER() OVER (PARTITION BY "O"."VID" IS NULL ORDER BY "D"."TYPE_NO", "D"."VALUE_NORM")) AS "VID", "D"."TYPE_NO", "D"."VALUE_NORM", "O"."VID" IS NULL AS "IS_NEW" FROM (SELECT DISTINCT "TYPE_NO", "VALUE_NORM" FROM "IDR_WORK"."WSNAP_IDENTIFIERS") AS "D" LEFT JOIN "IDR_STATE"."IDENTIFIER_VALUES" AS "O" ON "O"."TYPE_NO" = "D"."TYPE_NO" AND "O"."VALUE_NORM" = "D"."VALUE_NORM";

-- name: incr_dropped
/* Stored members this run removes (the keys in "idr_work"."wsnap_gone"), each with its cluster and why */ /* (the smallest reason number: erasure, soft delete, reconciliation). They lose every */ /* stored identifier, their clusters may split, and they leave the membership. */ CREATE TABLE "IDR_WORK"."WSNAP_DROPPED" AS SELECT "E"."EID", "E"."RID" AS "OLD_RID", "G"."REASON_NO" FROM (SELECT "ENTITY_KEY", MIN("REASON_NO") AS "REASON_NO" FROM "IDR_WORK"."WSNAP_GONE" GROUP BY "ENTITY_KEY") AS "G" JOIN "IDR_STATE"."ENTITIES" AS "E" ON "E"."ENTITY_KEY" = "G"."ENTITY_KEY" WHERE NOT "E"."RID" IS NULL;

-- name: incr_new_ident
CREATE TABLE "IDR_WORK"."WSNAP_NEW_IDENT" AS SELECT DISTINCT "I"."EID", "V"."VID" FROM "IDR_WORK"."WSNAP_IDENTIFIERS" AS "I" JOIN "IDR_WORK"."WSNAP_DELTA_VALUES" AS "V" ON "V"."TYPE_NO" = "I"."TYPE_NO" AND "V"."VALUE_NORM" = "I"."VALUE_NORM";

-- name: incr_old_ident
/* The stored identifiers of the delta's entities: a single holder is its value's anchor, */ /* every holder of a shared value is in value_holders. */ CREATE TABLE "IDR_WORK"."WSNAP_OLD_IDENT" AS SELECT "V"."ANCHOR_EID" AS "EID", "V"."VID" FROM "IDR_STATE"."IDENTIFIER_VALUES" AS "V" WHERE "V"."HOLDERS" = 1 AND "V"."ANCHOR_EID" IN (SELECT "EID" FROM "IDR_WORK"."WSNAP_ENT_IDS" WHERE NOT "IS_NEW" UNION ALL SELECT "EID" FROM "IDR_WORK"."WSNAP_DROPPED") UNION ALL SELECT "H"."EID", "H"."VID" FROM "IDR_STATE"."VALUE_HOLDERS" AS "H" WHERE "H"."EID" IN (SELECT "EID" FROM "IDR_WORK"."WSNAP_ENT_IDS" WHERE NOT "IS_NEW" UNION ALL SELECT "EID" FROM "IDR_WORK"."WSNAP_DROPPED");

-- name: incr_lost
CREATE TABLE "IDR_WORK"."WSNAP_LOST" AS SELECT "EID", "VID" FROM "IDR_WORK"."WSNAP_OLD_IDENT" EXCEPT SELECT "EID", "VID" FROM "IDR_WORK"."WSNAP_NEW_IDENT";

-- name: incr_gained
CREATE TABLE "IDR_WORK"."WSNAP_GAINED" AS SELECT "EID", "VID" FROM "IDR_WORK"."WSNAP_NEW_IDENT" EXCEPT SELECT "EID", "VID" FROM "IDR_WORK"."WSNAP_OLD_IDENT";

-- name: incr_vals
/* The values whose group changes: they are re-derived, every other value stays as stored. */ CREATE TABLE "IDR_WORK"."WSNAP_VALS" AS SELECT DISTINCT "VID" FROM (SELECT "VID" FROM "IDR_WORK"."WSNAP_LOST" UNION ALL SELECT "VID" FROM "IDR_WORK"."WSNAP_GAINED") AS "T";

-- name: incr_values_old
/* The stored rows of the re-derived values (their group before this run). */ CREATE TABLE "IDR_WORK"."WSNAP_VALUES_OLD" AS SELECT "V".* FROM "IDR_STATE"."IDENTIFIER_VALUES" AS "V" WHERE "V"."VID" IN (SELECT "VID" FROM "IDR_WORK"."WSNAP_VALS");

-- name: incr_members_old
/* Every stored holder of a re-derived value. */ CREATE TABLE "IDR_WORK"."WSNAP_MEMBERS_OLD" AS SELECT "ANCHOR_EID" AS "EID", "VID" FROM "IDR_WORK"."WSNAP_VALUES_OLD" WHERE "HOLDERS" = 1 UNION ALL SELECT "H"."EID", "H"."VID" FROM "IDR_STATE"."VALUE_HOLDERS" AS "H" WHERE "H"."VID" IN (SELECT "VID" FROM "IDR_WORK"."WSNAP_VALUES_OLD" WHERE "HOLDERS" >= 2);

-- name: incr_members
CREATE TABLE "IDR_WORK"."WSNAP_MEMBERS" AS SELECT * FROM (SELECT "EID", "VID" FROM "IDR_WORK"."WSNAP_MEMBERS_OLD" EXCEPT SELECT "EID", "VID" FROM "IDR_WORK"."WSNAP_LOST") AS "KEPT" UNION ALL SELECT "EID", "VID" FROM "IDR_WORK"."WSNAP_GAINED";

-- name: incr_values
/* The re-derived values as they will be stored (a value no entity holds any more is gone). */ CREATE TABLE "IDR_WORK"."WSNAP_VALUES_NEW" AS SELECT "G"."VID", COALESCE("O"."TYPE_NO", "D"."TYPE_NO") AS "TYPE_NO", COALESCE("O"."VALUE_NORM", "D"."VALUE_NORM") AS "VALUE_NORM", "G"."N" AS "HOLDERS", "K"."EID" AS "ANCHOR_EID", ("G"."N" >= 2 AND "G"."N" <= "R"."MAX_GROUP_SIZE") AS "LINKED", "R"."RULE_ID", "R"."MAX_GROUP_SIZE", NOT "O"."VID" IS NULL AS "EXISTED" FROM (SELECT "M"."VID", COUNT(*) AS "N", MIN("K"."KR") AS "ANCHOR_KR" FROM "IDR_WORK"."WSNAP_MEMBERS" AS "M" JOIN "IDR_WORK"."WSNAP_SCOPE_KEYS" AS "K" ON "K"."EID" = "M"."EID" GROUP BY "M"."VID") AS "G" JOIN "IDR_WORK"."WSNAP_SCOPE_KEYS" AS "K" ON "K"."KR" = "G"."ANCHOR_KR" LEFT JOIN "IDR_WORK"."WSNAP_VALUES_OLD" AS "O" ON "O"."VID" = "G"."VID" LEFT JOIN "IDR_WORK"."WSNAP_DELTA_VALUES" AS "D" ON "D"."VID" = "G"."VID" JOIN "IDR_WORK"."WSNAP_RULES" AS "R" ON "R"."TYPE_NO" = COALESCE("O"."TYPE_NO", "D"."TYPE_NO");

-- name: incr_holders
CREATE TABLE "IDR_WORK"."WSNAP_HOLDERS_NEW" AS SELECT "M"."VID", "M"."EID" FROM "IDR_WORK"."WSNAP_MEMBERS" AS "M" JOIN "IDR_WORK"."WSNAP_VALUES_NEW" AS "V" ON "V"."VID" = "M"."VID" WHERE "V"."HOLDERS" >= 2 /* ------------------------------------------------------------------------------- both */;

-- name: skipped_members
/* Members of the groups over max_group_size (audited, with the five smallest keys). */ CREATE TABLE "IDR_WORK"."WSNAP_SKIPPED_MEMBERS" AS SELECT "R"."IDENTIFIER_TYPE", "V"."VALUE_NORM", "V"."HOLDERS" AS "GROUP_SIZE", "V"."MAX_GROUP_SIZE" AS "MAX_ALLOWED", "H"."EID" FROM "IDR_WORK"."WSNAP_VALUES_NEW" AS "V" JOIN "IDR_WORK"."WSNAP_RULES" AS "R" ON "R"."TYPE_NO" = "V"."TYPE_NO" JOIN "IDR_WORK"."WSNAP_HOLDERS_NEW" AS "H" ON "H"."VID" = "V"."VID" WHERE "V"."HOLDERS" > "V"."MAX_GROUP_SIZE";

-- name: skipped
/* Written with row_number + an ordered string_agg because list slicing does not */ /* transpile (platforms without ordered aggregates get a sorted array from their adapter). */ CREATE TABLE "IDR_WORK"."WSNAP_SKIPPED" AS SELECT "IDENTIFIER_TYPE", "VALUE_NORM", "GROUP_SIZE", "MAX_ALLOWED", LISTAGG("ENTITY_KEY", ',') WITHIN GROUP (ORDER BY "ENTITY_KEY") AS "SAMPLE_ENTITY_KEYS" FROM (SELECT "S"."IDENTIFIER_TYPE", "S"."VALUE_NORM", "S"."GROUP_SIZE", "S"."MAX_ALLOWED", "E"."ENTITY_KEY", ROW_NUMBER() OVER (PARTITION BY "S"."IDENTIFIER_TYPE", "S"."VALUE_NORM" ORDER BY "E"."ENTITY_KEY") AS "RN" FROM "IDR_WORK"."WSNAP_SKIPPED_MEMBERS" AS "S" JOIN "IDR_WORK"."WSNAP_KEYS" AS "E" ON "E"."EID" = "S"."EID") AS "T" WHERE "RN" <= 5 GROUP BY "IDENTIFIER_TYPE", "VALUE_NORM", "GROUP_SIZE", "MAX_ALLOWED";

-- name: full_edges_new
/* Star edges of the linked values: every other holder links to the anchor. An edge */ /* stored before (same value, same two ends) keeps its first_seen_ts. */ CREATE TABLE "IDR_WORK"."WSNAP_EDGES_NEW" AS SELECT "V"."VID", "V"."RULE_ID", "V"."ANCHOR_EID" AS "LEFT_EID", "H"."EID" AS "RIGHT_EID", "O"."FIRST_SEEN_TS", (NOT "O"."EID" IS NULL) AS "EXISTED" FROM "IDR_WORK"."WSNAP_HOLDERS_NEW" AS "H" JOIN "IDR_WORK"."WSNAP_VALUES_NEW" AS "V" ON "V"."VID" = "H"."VID" AND "V"."LINKED" AND "H"."EID" <> "V"."ANCHOR_EID" LEFT JOIN (SELECT "SH"."VID", "SH"."EID", "SH"."FIRST_SEEN_TS", "SV"."ANCHOR_EID" FROM "IDR_STATE"."VALUE_HOLDERS" AS "SH" JOIN "IDR_STATE"."IDENTIFIER_VALUES" AS "SV" ON "SV"."VID" = "SH"."VID" AND "SV"."LINKED" AND "SH"."EID" <> "SV"."ANCHOR_EID") AS "O" ON "O"."VID" = "V"."VID" AND "O"."EID" = "H"."EID" AND "O"."ANCHOR_EID" = "V"."ANCHOR_EID";

-- name: incr_edges_new
CREATE TABLE "IDR_WORK"."WSNAP_EDGES_NEW" AS SELECT "V"."VID", "V"."RULE_ID", "V"."ANCHOR_EID" AS "LEFT_EID", "H"."EID" AS "RIGHT_EID", "O"."FIRST_SEEN_TS", (NOT "O"."EID" IS NULL) AS "EXISTED" FROM "IDR_WORK"."WSNAP_HOLDERS_NEW" AS "H" JOIN "IDR_WORK"."WSNAP_VALUES_NEW" AS "V" ON "V"."VID" = "H"."VID" AND "V"."LINKED" AND "H"."EID" <> "V"."ANCHOR_EID" LEFT JOIN (SELECT "SH"."VID", "SH"."EID", "SH"."FIRST_SEEN_TS", "SV"."ANCHOR_EID" FROM "IDR_STATE"."VALUE_HOLDERS" AS "SH" JOIN "IDR_WORK"."WSNAP_VALUES_OLD" AS "SV" ON "SV"."VID" = "SH"."VID" AND "SV"."LINKED" AND "SH"."EID" <> "SV"."ANCHOR_EID") AS "O" ON "O"."VID" = "V"."VID" AND "O"."EID" = "H"."EID" AND "O"."ANCHOR_EID" = "V"."ANCHOR_EID";

-- name: incr_edges_old
/* The stored edges of the re-derived values, per rule (the created/removed counts). */ SELECT "R"."RULE_ID", COUNT(*) AS "N" FROM "IDR_STATE"."VALUE_HOLDERS" AS "H" JOIN "IDR_WORK"."WSNAP_VALUES_OLD" AS "V" ON "V"."VID" = "H"."VID" AND "V"."LINKED" AND "H"."EID" <> "V"."ANCHOR_EID" JOIN "IDR_WORK"."WSNAP_RULES" AS "R" ON "R"."TYPE_NO" = "V"."TYPE_NO" GROUP BY "R"."RULE_ID" /* ------------------------------------------------------------------------------- components */;

-- name: full_cc_edges
/* FULL: every entity is a node and its eid is the node id (a view: no copy). */ CREATE VIEW "IDR_WORK"."WSNAP_CC_EDGES" AS SELECT "LEFT_EID" AS "U", "RIGHT_EID" AS "V" FROM "IDR_WORK"."WSNAP_EDGES_NEW";

-- name: incr_touched
/* Current membership of every stored entity the delta or a re-derived value touches. */ CREATE TABLE "IDR_WORK"."WSNAP_TOUCHED" AS SELECT "E"."EID", "E"."RID" FROM "IDR_STATE"."ENTITIES" AS "E" WHERE NOT "E"."RID" IS NULL AND "E"."EID" IN (SELECT "EID" FROM "IDR_WORK"."WSNAP_MEMBERS_OLD" UNION ALL SELECT "EID" FROM "IDR_WORK"."WSNAP_ENT_IDS" WHERE NOT "IS_NEW" UNION ALL SELECT "EID" FROM "IDR_WORK"."WSNAP_DROPPED");

-- name: incr_broken
/* Current clusters that may split: a member lost a value or is removed, or a linking */ /* value's group outgrew max_group_size. Every other impacted cluster only gains links and is */ /* contracted to one node. */ CREATE TABLE "IDR_WORK"."WSNAP_BROKEN" AS SELECT DISTINCT "T"."RID" FROM "IDR_WORK"."WSNAP_TOUCHED" AS "T" WHERE "T"."EID" IN (SELECT "L"."EID" FROM "IDR_WORK"."WSNAP_LOST" AS "L") OR "T"."EID" IN (SELECT "D"."EID" FROM "IDR_WORK"."WSNAP_DROPPED" AS "D") OR "T"."EID" IN (SELECT "MO"."EID" FROM "IDR_WORK"."WSNAP_MEMBERS_OLD" AS "MO" JOIN "IDR_WORK"."WSNAP_VALUES_OLD" AS "VO" ON "VO"."VID" = "MO"."VID" AND "VO"."LINKED" JOIN "IDR_WORK"."WSNAP_VALUES_NEW" AS "VN" ON "VN"."VID" = "MO"."VID" AND NOT "VN"."LINKED");

-- name: incr_scope
/* Every member of an impacted cluster but those removed, plus the delta's entities */ /* without a cluster, with its key and rank in entity_key order (one read of the */ /* dictionary's keys per run). */ CREATE TABLE "IDR_WORK"."WSNAP_SCOPE_KEYS" AS SELECT "S"."EID", "S"."ENTITY_KEY", "S"."OLD_RID", "S"."OLD_TS", ROW_NUMBER() OVER (ORDER BY "S"."ENTITY_KEY") AS "KR" FROM (SELECT "E"."EID", "E"."ENTITY_KEY", "E"."RID" AS "OLD_RID", "E"."UPDATED_TS" AS "OLD_TS" FROM "IDR_STATE"."ENTITIES" AS "E" WHERE "E"."RID" IN (SELECT "RID" FROM "IDR_WORK"."WSNAP_TOUCHED") AND NOT "E"."EID" IN (SELECT "EID" FROM "IDR_WORK"."WSNAP_DROPPED") UNION ALL SELECT "I"."EID", "I"."ENTITY_KEY", CAST(NULL AS BIGINT), "I"."OLD_TS" FROM "IDR_WORK"."WSNAP_ENT_IDS" AS "I" WHERE "I"."OLD_RID" IS NULL) AS "S";

-- name: incr_nodes
/* Clusters that cannot split become one node each; the rest (and new entities) stay */ /* per entity. Dense node ids (the union-find indexes an array with them). */ CREATE TABLE "IDR_WORK"."WSNAP_NODES" AS SELECT "EID", "BROKEN", CAST(DENSE_RANK() OVER (ORDER BY "NKEY") - 1 AS BIGINT) AS "NODE" FROM (SELECT "S"."EID", ("S"."OLD_RID" IS NULL OR NOT "B"."RID" IS NULL) AS "BROKEN", CASE WHEN "S"."OLD_RID" IS NULL OR NOT "B"."RID" IS NULL THEN 2 * "S"."EID" ELSE 2 * "S"."OLD_RID" + 1 END AS "NKEY" FROM "IDR_WORK"."WSNAP_SCOPE_KEYS" AS "S" LEFT JOIN "IDR_WORK"."WSNAP_BROKEN" AS "B" ON "B"."RID" = "S"."OLD_RID") AS "T";

-- name: incr_cc_edges
CREATE TABLE "IDR_WORK"."WSNAP_CC_EDGES" AS SELECT "A"."NODE" AS "U", "B"."NODE" AS "V" FROM "IDR_WORK"."WSNAP_EDGES_NEW" AS "E" JOIN "IDR_WORK"."WSNAP_NODES" AS "A" ON "A"."EID" = "E"."LEFT_EID" JOIN "IDR_WORK"."WSNAP_NODES" AS "B" ON "B"."EID" = "E"."RIGHT_EID" WHERE "A"."NODE" <> "B"."NODE";

-- name: incr_cc_edges_kept
/* Links of the clusters that may split, but for the values being re-derived. */ INSERT INTO "IDR_WORK"."WSNAP_CC_EDGES" SELECT "A"."NODE", "B"."NODE" FROM "IDR_STATE"."VALUE_HOLDERS" AS "H" JOIN "IDR_STATE"."IDENTIFIER_VALUES" AS "V" ON "V"."VID" = "H"."VID" AND "V"."LINKED" AND "H"."EID" <> "V"."ANCHOR_EID" JOIN "IDR_WORK"."WSNAP_NODES" AS "B" ON "B"."EID" = "H"."EID" AND "B"."BROKEN" JOIN "IDR_WORK"."WSNAP_NODES" AS "A" ON "A"."EID" = "V"."ANCHOR_EID" WHERE "A"."NODE" <> "B"."NODE" AND NOT "V"."VID" IN (SELECT "VID" FROM "IDR_WORK"."WSNAP_VALS");
