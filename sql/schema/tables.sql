-- Canonical DDL (DuckDB dialect; transpiled for other platforms by the adapter).
-- The public output tables are views over idr_state: sql/schema/views.sql.
-- Every statement is idempotent. Column names of the predecessor are kept; added
-- columns all have defaults so existing warehouses can be upgraded in place by
-- `idr init` (missing columns are added).

CREATE SCHEMA IF NOT EXISTS idr_meta;
CREATE SCHEMA IF NOT EXISTS idr_out;
CREATE SCHEMA IF NOT EXISTS idr_work;
CREATE SCHEMA IF NOT EXISTS idr_state;

-- ---------------------------------------------------------------- idr_meta
CREATE TABLE IF NOT EXISTS idr_meta.source_table (
    table_id VARCHAR NOT NULL PRIMARY KEY,
    table_fqn VARCHAR NOT NULL,
    entity_type VARCHAR DEFAULT 'PERSON',
    entity_key_expr VARCHAR NOT NULL,
    watermark_column VARCHAR,
    watermark_lookback_minutes INTEGER DEFAULT 0,
    is_active BOOLEAN DEFAULT TRUE,
    deleted_flag_expr VARCHAR,
    reconcile_deletes VARCHAR DEFAULT 'never'
);

CREATE TABLE IF NOT EXISTS idr_meta.source (
    table_id VARCHAR NOT NULL PRIMARY KEY,
    source_name VARCHAR,
    trust_rank INTEGER DEFAULT 100,
    is_active BOOLEAN DEFAULT TRUE
);

CREATE TABLE IF NOT EXISTS idr_meta.rule (
    rule_id VARCHAR NOT NULL PRIMARY KEY,
    rule_name VARCHAR,
    is_active BOOLEAN DEFAULT TRUE,
    priority INTEGER DEFAULT 100,
    identifier_type VARCHAR NOT NULL,
    canonicalize VARCHAR DEFAULT 'NONE',
    allow_hashed BOOLEAN DEFAULT TRUE,
    require_non_null BOOLEAN DEFAULT TRUE,
    max_group_size INTEGER DEFAULT 10000
);

CREATE TABLE IF NOT EXISTS idr_meta.identifier_mapping (
    table_id VARCHAR NOT NULL,
    identifier_type VARCHAR NOT NULL,
    identifier_value_expr VARCHAR NOT NULL,
    is_hashed BOOLEAN DEFAULT FALSE
);

CREATE TABLE IF NOT EXISTS idr_meta.identifier_exclusion (
    identifier_type VARCHAR NOT NULL,
    identifier_value_pattern VARCHAR NOT NULL,
    match_type VARCHAR DEFAULT 'EXACT',
    reason VARCHAR,
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    created_by VARCHAR
);

CREATE TABLE IF NOT EXISTS idr_meta.entity_attribute_mapping (
    table_id VARCHAR NOT NULL,
    attribute_name VARCHAR NOT NULL,
    attribute_expr VARCHAR NOT NULL
);

CREATE TABLE IF NOT EXISTS idr_meta.survivorship_rule (
    attribute_name VARCHAR NOT NULL PRIMARY KEY,
    strategy VARCHAR DEFAULT 'RECENCY',
    source_priority_list VARCHAR,
    recency_field VARCHAR
);

CREATE TABLE IF NOT EXISTS idr_meta.run_state (
    table_id VARCHAR NOT NULL PRIMARY KEY,
    last_watermark_value TIMESTAMP,
    last_run_id VARCHAR,
    last_run_ts TIMESTAMP,
    -- When INCR last compared this source's keys with the stored ones (reconcile_deletes).
    last_reconciled_ts TIMESTAMP
);

CREATE TABLE IF NOT EXISTS idr_meta.config (
    config_key VARCHAR NOT NULL PRIMARY KEY,
    config_value VARCHAR,
    description VARCHAR,
    updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    updated_by VARCHAR
);

-- The next resolved_id number: ids are never reused, so the high-water mark is state
-- that changes in the same publish transaction as membership.
CREATE TABLE IF NOT EXISTS idr_meta.resolved_id_sequence (
    sequence_name VARCHAR NOT NULL PRIMARY KEY,
    next_value BIGINT NOT NULL
);

-- Erasure requests ("forget this person"): the audit trail of who asked for what kind of
-- erasure and when it took effect -- never the erased keys or values themselves.
CREATE TABLE IF NOT EXISTS idr_meta.erasure_request (
    erasure_id VARCHAR NOT NULL PRIMARY KEY,
    match_kind VARCHAR NOT NULL,
    identifier_type VARCHAR,
    entries INTEGER DEFAULT 0,
    requested_at TIMESTAMP,
    requested_by VARCHAR,
    applied_run_id VARCHAR,
    applied_at TIMESTAMP,
    -- When the sources had deleted every row the erasure kept out: its hashes are gone
    -- from the suppression list, and a new row with the value resolves normally.
    lifted_run_id VARCHAR,
    lifted_at TIMESTAMP
);

-- The suppression list: a salted SHA-256 of each erased entity key ('KEY') or identifier
-- ('IDENTIFIER': '<type>:<normalized value>'). Runs keep every matching source row out.
CREATE TABLE IF NOT EXISTS idr_meta.erasure_suppression (
    erasure_id VARCHAR NOT NULL,
    match_kind VARCHAR NOT NULL,
    identifier_type VARCHAR,
    value_hash VARCHAR NOT NULL
);

-- The source rows each erasure keeps out (or removed) while their source still holds them:
-- a salted SHA-256 of the row's entity key, and its source. A row leaves when its source
-- deletes it (soft-delete flag, reconciliation, a FULL run that no longer finds it); an
-- erasure whose rows have all left is lifted (docs/decisions/0008).
CREATE TABLE IF NOT EXISTS idr_meta.erasure_holds (
    erasure_id VARCHAR NOT NULL,
    table_id VARCHAR NOT NULL,
    key_hash VARCHAR NOT NULL
);

-- ---------------------------------------------------------------- idr_state (the engine's own state)
-- Integer-keyed: every entity key and identifier value is stored once, everything else
-- refers to them by number. The public tables (identity_resolved_membership_current,
-- identity_edges_current, identifiers_current, identity_clusters_current,
-- golden_profile_current, golden_profile_wide) are views over these (sql/schema/views.sql).

-- The entity dictionary and the membership in one: one row per entity key ever seen. A
-- key keeps its eid for good; eids are never reused. rid is the resolved id's number
-- (R00000000042 is 42), NULL while no active source holds the key.
CREATE TABLE IF NOT EXISTS idr_state.entities (
    eid BIGINT NOT NULL,
    entity_key VARCHAR NOT NULL,
    rid BIGINT,
    updated_ts TIMESTAMP
);

-- The entity dictionary by a hash of the key, stored in hash order, on platforms whose
-- adapter keeps one (DuckDB: its zone maps keep only 8 bytes of a string and keys share
-- long prefixes, so a lookup by key otherwise reads every block); empty elsewhere.
CREATE TABLE IF NOT EXISTS idr_state.entity_lookup (
    key_hash BIGINT NOT NULL,
    eid BIGINT NOT NULL
);

-- One row per identifier value some entity holds. anchor_eid is the holder with the
-- smallest entity_key; a linked value (2 <= holders <= its rule's max_group_size) links
-- every other holder to the anchor: those are the star edges.
CREATE TABLE IF NOT EXISTS idr_state.identifier_values (
    vid BIGINT NOT NULL,
    type_no INTEGER NOT NULL,
    value_norm VARCHAR NOT NULL,
    holders BIGINT NOT NULL,
    anchor_eid BIGINT NOT NULL,
    linked BOOLEAN NOT NULL,
    updated_ts TIMESTAMP
);

-- Identifier types by number (a type keeps its number for good), with the rule that
-- links values of that type.
CREATE TABLE IF NOT EXISTS idr_state.identifier_types (
    type_no INTEGER NOT NULL PRIMARY KEY,
    identifier_type VARCHAR NOT NULL,
    rule_id VARCHAR
);

-- The holders of each value other than its anchor. For a linked value each row is the
-- edge anchor -> eid, first written at first_seen_ts.
CREATE TABLE IF NOT EXISTS idr_state.value_holders (
    vid BIGINT NOT NULL,
    eid BIGINT NOT NULL,
    first_seen_ts TIMESTAMP
);

CREATE TABLE IF NOT EXISTS idr_state.clusters (
    rid BIGINT NOT NULL,
    cluster_size BIGINT NOT NULL,
    edge_count BIGINT DEFAULT 0,
    edge_diversity INTEGER DEFAULT 0,
    match_density DOUBLE DEFAULT 0,
    confidence_score DOUBLE DEFAULT 1,
    primary_reason VARCHAR,
    updated_ts TIMESTAMP
);

-- The golden profile, one row per cluster: for attribute k (idr_state.golden_columns)
-- its value in v<k> and the entity it came from in e<k>. Columns are added when the
-- configuration gains an attribute (never renamed), so the table follows the config.
CREATE TABLE IF NOT EXISTS idr_state.golden (
    rid BIGINT NOT NULL,
    updated_ts TIMESTAMP
);

CREATE TABLE IF NOT EXISTS idr_state.golden_columns (
    attribute_name VARCHAR NOT NULL PRIMARY KEY,
    column_no INTEGER NOT NULL,
    -- The attribute's survivorship strategy, and whether the configuration still maps it.
    strategy VARCHAR,
    active BOOLEAN DEFAULT TRUE
);

-- Facts about the stored layout (the golden views' definition, the layout version).
CREATE TABLE IF NOT EXISTS idr_state.schema_info (
    info_key VARCHAR NOT NULL PRIMARY KEY,
    info_value VARCHAR
);

-- The engine's counters: next eid, next vid (ids are never reused).
CREATE TABLE IF NOT EXISTS idr_state.counters (
    counter_name VARCHAR NOT NULL PRIMARY KEY,
    next_value BIGINT NOT NULL
);

-- ---------------------------------------------------------------- idr_out (production state)
-- Every real run that applied an erasure: the run that first removed its records, and
-- later runs that kept re-sent rows out.
CREATE TABLE IF NOT EXISTS idr_out.erasure_runs (
    erasure_id VARCHAR NOT NULL,
    run_id VARCHAR NOT NULL,
    entities_removed BIGINT DEFAULT 0,
    rows_suppressed BIGINT DEFAULT 0,
    applied_at TIMESTAMP
);

CREATE TABLE IF NOT EXISTS idr_out.rule_match_audit_current (
    rule_id VARCHAR NOT NULL,
    identifier_type VARCHAR,
    edges BIGINT DEFAULT 0,
    entities_matched BIGINT DEFAULT 0,
    groups_matched BIGINT DEFAULT 0,
    groups_skipped BIGINT DEFAULT 0,
    last_run_id VARCHAR,
    updated_ts TIMESTAMP
);

CREATE TABLE IF NOT EXISTS idr_out.skipped_identifier_groups (
    run_id VARCHAR NOT NULL,
    identifier_type VARCHAR,
    identifier_value_norm VARCHAR,
    group_size BIGINT,
    max_allowed BIGINT,
    sample_entity_keys VARCHAR,
    reason VARCHAR,
    skipped_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP
);

-- ---------------------------------------------------------------- idr_out (history, audit)
CREATE TABLE IF NOT EXISTS idr_out.run_history (
    run_id VARCHAR NOT NULL PRIMARY KEY,
    run_mode VARCHAR,
    status VARCHAR,
    started_at TIMESTAMP,
    ended_at TIMESTAMP,
    duration_seconds DOUBLE,
    entities_processed BIGINT DEFAULT 0,
    edges_created BIGINT DEFAULT 0,
    edges_updated BIGINT DEFAULT 0,
    clusters_impacted BIGINT DEFAULT 0,
    lp_iterations INTEGER DEFAULT 0,
    source_tables_processed INTEGER DEFAULT 0,
    groups_skipped BIGINT DEFAULT 0,
    values_excluded BIGINT DEFAULT 0,
    large_clusters BIGINT DEFAULT 0,
    warnings VARCHAR,
    watermarks_json VARCHAR,
    error_message VARCHAR,
    error_stage VARCHAR,
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    dry_run BOOLEAN DEFAULT FALSE,
    platform VARCHAR,
    config_fingerprint VARCHAR,
    input_fingerprint VARCHAR,
    applied_dry_run_id VARCHAR,
    work_tag VARCHAR,
    statements BIGINT,
    -- Records the run removed from the membership, by reason (app.core.vocabulary
    -- REMOVAL_REASONS; which erasures it applied: idr_out.erasure_runs). NULL: written by a
    -- version that did not record them, and `idr init` found no metrics row to fill them from.
    entities_removed_soft_delete BIGINT,
    entities_removed_erasure BIGINT,
    entities_removed_reconciliation BIGINT
);

CREATE TABLE IF NOT EXISTS idr_out.stage_metrics (
    run_id VARCHAR NOT NULL,
    stage_name VARCHAR NOT NULL,
    stage_order INTEGER,
    started_at TIMESTAMP,
    ended_at TIMESTAMP,
    duration_seconds DOUBLE,
    rows_in BIGINT,
    rows_out BIGINT,
    notes VARCHAR
);

CREATE TABLE IF NOT EXISTS idr_out.dry_run_results (
    run_id VARCHAR NOT NULL,
    entity_key VARCHAR NOT NULL,
    current_resolved_id VARCHAR,
    proposed_resolved_id VARCHAR,
    change_type VARCHAR,
    current_cluster_size INTEGER,
    proposed_cluster_size INTEGER,
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (run_id, entity_key)
);

CREATE TABLE IF NOT EXISTS idr_out.dry_run_summary (
    run_id VARCHAR NOT NULL PRIMARY KEY,
    total_entities INTEGER,
    new_entities INTEGER,
    moved_entities INTEGER,
    merged_clusters INTEGER,
    split_clusters INTEGER,
    largest_proposed_cluster INTEGER,
    edges_would_create INTEGER,
    groups_would_skip INTEGER,
    values_would_exclude INTEGER,
    execution_time_seconds INTEGER,
    created_at TIMESTAMP,
    unchanged_entities INTEGER DEFAULT 0,
    merged_entities INTEGER DEFAULT 0,
    split_entities INTEGER DEFAULT 0,
    removed_entities INTEGER DEFAULT 0,
    run_mode VARCHAR,
    -- Entities whose resolved id changes: every change type but UNCHANGED (NULL: written
    -- by a version that did not store it; readers use total - unchanged).
    affected_entities INTEGER
);

CREATE TABLE IF NOT EXISTS idr_out.dry_run_cluster_changes (
    run_id VARCHAR NOT NULL,
    current_resolved_id VARCHAR,
    proposed_resolved_id VARCHAR,
    members_moved INTEGER,
    current_cluster_size INTEGER,
    proposed_cluster_size INTEGER,
    change_type VARCHAR,
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    -- members: how many of the current cluster's members land in the proposed one;
    -- members_moved: how many of them change resolved id (0 where the id is kept).
    -- NULL members: written by a version whose members_moved held the whole flow.
    members INTEGER
);

CREATE TABLE IF NOT EXISTS idr_out.metrics_export (
    metric_id VARCHAR DEFAULT uuid(),
    run_id VARCHAR,
    metric_name VARCHAR NOT NULL,
    metric_value DOUBLE NOT NULL,
    metric_type VARCHAR DEFAULT 'gauge',
    dimensions VARCHAR,
    recorded_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    exported_at TIMESTAMP,
    PRIMARY KEY (metric_id)
);

-- Per-provider bookkeeping of pushed metrics, so no provider gets a row twice.
CREATE TABLE IF NOT EXISTS idr_out.metrics_export_log (
    metric_id VARCHAR NOT NULL,
    provider VARCHAR NOT NULL,
    batch_id VARCHAR NOT NULL,
    exported_at TIMESTAMP NOT NULL,
    PRIMARY KEY (metric_id, provider)
);
