-- The catalog: asset definitions and their history, the append-only event log and the
-- per-(asset, partition) state derived from it.

-- +goose Up

-- Times are unix microseconds (integer); JSON is text.

-- The catalog's clock. Every writer that appends events or records definition changes
-- takes this row's lock first, so seqs are handed out in commit order: a reader that
-- has seen seq N has seen everything at or below N (an incremental reader never misses
-- a row that committed late).
CREATE TABLE catalog_clock (
    id  smallint PRIMARY KEY CHECK (id = 1),
    seq bigint   NOT NULL
);
INSERT INTO catalog_clock (id, seq) VALUES (1, 0);

CREATE TABLE assets (
    id               INTEGER PRIMARY KEY,
    key              text        NOT NULL UNIQUE,
    code_version     text        NOT NULL,
    deps             text        NOT NULL,  -- upstream asset keys, sorted, one per line
    partitions       text ,                 -- the partitions definition; NULL: unpartitioned
    partitions_seq   bigint      NOT NULL,  -- seq of the definition change that set partitions
    is_source        integer     NOT NULL,
    definition       text        NOT NULL,  -- the whole definition, for display
    fingerprint      text        NOT NULL,  -- hash of definition: unchanged definitions are not rewritten
    created_seq      bigint      NOT NULL,
    updated_seq      bigint      NOT NULL,
    removed_seq      bigint,                -- set when the asset left the definitions; its history stays
    created_at       integer     NOT NULL,
    updated_at       integer     NOT NULL
);

-- Every change of an asset's definition, as synced: added, changed or removed.
CREATE TABLE definition_changes (
    seq          bigint      PRIMARY KEY,
    asset_id     bigint      NOT NULL REFERENCES assets (id),
    at           integer     NOT NULL,
    change       text        NOT NULL CHECK (change IN ('added', 'changed', 'removed')),
    fields       text        NOT NULL,  -- what changed, comma-separated: code_version,deps,partitions,definition
    code_version text        NOT NULL,
    deps         text        NOT NULL,
    partitions   text,
    definition   text        NOT NULL
);
CREATE INDEX definition_changes_asset ON definition_changes (asset_id, seq);

-- Code versions and dep sets recorded with materializations, numbered per asset from 0
-- so the planner's columnar state can hold them as small integers.
CREATE TABLE code_versions (
    asset_id     bigint  NOT NULL REFERENCES assets (id),
    id           integer NOT NULL,
    code_version text    NOT NULL,
    PRIMARY KEY (asset_id, id),
    UNIQUE (asset_id, code_version)
);
CREATE TABLE dep_sets (
    asset_id bigint  NOT NULL REFERENCES assets (id),
    id       integer NOT NULL,
    deps     text    NOT NULL,  -- sorted keys, one per line
    PRIMARY KEY (asset_id, id),
    UNIQUE (asset_id, deps)
);

-- The event log: append-only (a trigger refuses updates and deletes).
CREATE TABLE events (
    seq           bigint      PRIMARY KEY,
    kind          text        NOT NULL CHECK (kind IN ('materialization', 'observation', 'failure', 'planned')),
    asset_id      bigint      NOT NULL REFERENCES assets (id),
    partition_key text        NOT NULL,  -- '' for an unpartitioned asset
    at            integer     NOT NULL,
    run_id        text,
    step_id       text,
    data_version  text,
    data_changed  integer     NOT NULL DEFAULT 0,
    input_seq     bigint,
    code_version  text,
    dep_set_id    integer,
    metadata      text,
    error         text
);
CREATE INDEX events_partition ON events (asset_id, partition_key, seq);
CREATE INDEX events_asset ON events (asset_id, seq);
CREATE INDEX events_run ON events (run_id) WHERE run_id IS NOT NULL;

-- +goose StatementBegin
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN
    SELECT RAISE(ABORT, 'the event log is append-only: UPDATE on events is not allowed');
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
BEGIN
    SELECT RAISE(ABORT, 'the event log is append-only: DELETE on events is not allowed');
END;
-- +goose StatementEnd

-- Per-(asset, partition) state, derived from the event log in the transaction that
-- appends the events.
CREATE TABLE partition_state (
    asset_id         bigint  NOT NULL REFERENCES assets (id),
    partition_key    text    NOT NULL,
    partition_idx    integer,           -- index under the asset's partitions definition; NULL: not a partition of it any more
    last_seq         bigint  NOT NULL,  -- the newest event (or re-index) that touched the row
    success_seq      bigint  NOT NULL DEFAULT 0,  -- latest materialization or observation; 0: none
    materialized_at  integer,
    data_version     text,
    data_changed_seq bigint  NOT NULL DEFAULT 0,
    input_seq        bigint  NOT NULL DEFAULT 0,
    code_version_id  integer,
    dep_set_id       integer,
    failed           integer NOT NULL DEFAULT 0,
    failed_seq       bigint  NOT NULL DEFAULT 0,
    PRIMARY KEY (asset_id, partition_key)
);
CREATE INDEX partition_state_changes ON partition_state (last_seq);
CREATE INDEX partition_state_index ON partition_state (asset_id, partition_idx);

-- +goose Down
DROP TABLE partition_state;
DROP TRIGGER events_no_delete;
DROP TRIGGER events_no_update;
DROP TABLE events;
DROP TABLE dep_sets;
DROP TABLE code_versions;
DROP TABLE definition_changes;
DROP TABLE assets;
DROP TABLE catalog_clock;
