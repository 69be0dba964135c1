-- The engine queue: what claiming, finishing and canceling steps need beyond 00002.

-- Times are unix microseconds (integer); JSON is text.

-- +goose Up

-- A run's cap on its steps running at once; 0: no cap.
ALTER TABLE runs ADD COLUMN max_parallel integer NOT NULL DEFAULT 0;

-- Every partition key of the step, in order, as a JSON array: a batch step's keys
-- cannot be derived from its first and last without the asset's definition.
ALTER TABLE steps ADD COLUMN partition_keys text NOT NULL DEFAULT '[]';
UPDATE steps SET partition_keys = json_array(partition_first) WHERE partition_count = 1;
UPDATE steps SET partition_keys = json_array(partition_first, partition_last) WHERE partition_count = 2;
-- Set when a cancel was requested while the step ran: its worker sees it on its next
-- heartbeat, kills the step and reports it canceled.
ALTER TABLE steps ADD COLUMN cancel_requested_at integer;

-- 'run': a step of the same run this one needs; 'join': an in-flight step of another
-- run holding one of this step's partitions, which this one waits for.
ALTER TABLE step_deps ADD COLUMN kind text NOT NULL DEFAULT 'run' CHECK (kind IN ('run', 'join'));

-- attempts gets input_seq and the status SKIPPED (the pre-start check found every
-- partition fresh). SQLite cannot alter a CHECK constraint, so the table is rebuilt:
-- create the new one, copy, drop the old, rename. Nothing references attempts, and
-- goose runs this in a transaction, so a failure leaves the old table in place.
-- WITHOUT ROWID: rows are stored in their primary key's order, so recording an
-- attempt writes one b-tree instead of a table and its key index.
CREATE TABLE attempts_new (
    step_id     text        NOT NULL REFERENCES steps (id),
    attempt     integer     NOT NULL,
    worker      text        NOT NULL,
    started_at  integer     NOT NULL,
    finished_at integer,
    status      text        NOT NULL CHECK (status IN ('RUNNING', 'SUCCEEDED', 'SKIPPED', 'FAILED', 'TIMED_OUT',
                                                       'CANCELED', 'LEASE_EXPIRED')),
    exit_code   integer,
    error       text,
    input_seq   bigint      NOT NULL DEFAULT 0,  -- catalog watermark when the attempt was claimed
    PRIMARY KEY (step_id, attempt)
) WITHOUT ROWID;
INSERT INTO attempts_new (step_id, attempt, worker, started_at, finished_at, status, exit_code, error)
    SELECT step_id, attempt, worker, started_at, finished_at, status, exit_code, error FROM attempts;
DROP TABLE attempts;
ALTER TABLE attempts_new RENAME TO attempts;

-- inflight_partitions is rebuilt the same way WITHOUT ROWID: every step that starts
-- or ends inserts or deletes its rows, and the primary key is the table.
CREATE TABLE inflight_partitions_new (
    asset_id      bigint NOT NULL REFERENCES assets (id),
    partition_key text   NOT NULL,
    step_id       text   NOT NULL REFERENCES steps (id),
    PRIMARY KEY (asset_id, partition_key)
) WITHOUT ROWID;
INSERT INTO inflight_partitions_new (asset_id, partition_key, step_id)
    SELECT asset_id, partition_key, step_id FROM inflight_partitions;
DROP TABLE inflight_partitions;
ALTER TABLE inflight_partitions_new RENAME TO inflight_partitions;
CREATE INDEX inflight_partitions_step ON inflight_partitions (step_id);

-- Claims find a run's READY steps by steps_run_status, in plan order; the index on
-- not_before alone serves no query and costs a write per step made READY or claimed.
DROP INDEX steps_claimable;

-- Claims walk the active runs oldest first, then each run's READY steps in plan order.
CREATE INDEX runs_active ON runs (created_at, id) WHERE status IN ('QUEUED', 'RUNNING');
-- A run's steps in one status, in plan order: ready steps to claim, running ones to
-- count against max_parallel, unfinished ones to know whether the run ended.
CREATE INDEX steps_run_status ON steps (run_id, status, ordinal);
-- Running steps of an asset, counted against its concurrency cap.
CREATE INDEX steps_asset_running ON steps (asset_id) WHERE status = 'RUNNING';
-- Listing backfills newest first.
CREATE INDEX backfills_created ON backfills (created_at DESC);

-- +goose Down
DROP INDEX backfills_created;
DROP INDEX steps_asset_running;
DROP INDEX steps_run_status;
DROP INDEX runs_active;
CREATE INDEX steps_claimable ON steps (not_before ) WHERE status = 'READY';

CREATE TABLE inflight_partitions_old (
    asset_id      bigint NOT NULL REFERENCES assets (id),
    partition_key text   NOT NULL,
    step_id       text   NOT NULL REFERENCES steps (id),
    PRIMARY KEY (asset_id, partition_key)
);
INSERT INTO inflight_partitions_old (asset_id, partition_key, step_id)
    SELECT asset_id, partition_key, step_id FROM inflight_partitions;
DROP TABLE inflight_partitions;
ALTER TABLE inflight_partitions_old RENAME TO inflight_partitions;
CREATE INDEX inflight_partitions_step ON inflight_partitions (step_id);

CREATE TABLE attempts_old (
    step_id     text        NOT NULL REFERENCES steps (id),
    attempt     integer     NOT NULL,
    worker      text        NOT NULL,
    started_at  integer     NOT NULL,
    finished_at integer,
    status      text        NOT NULL CHECK (status IN ('RUNNING', 'SUCCEEDED', 'FAILED', 'TIMED_OUT', 'CANCELED', 'LEASE_EXPIRED')),
    exit_code   integer,
    error       text,
    PRIMARY KEY (step_id, attempt)
);
-- A skipped attempt ended well: the closest status the old schema knows.
INSERT INTO attempts_old (step_id, attempt, worker, started_at, finished_at, status, exit_code, error)
    SELECT step_id, attempt, worker, started_at, finished_at,
        CASE status WHEN 'SKIPPED' THEN 'SUCCEEDED' ELSE status END, exit_code, error FROM attempts;
DROP TABLE attempts;
ALTER TABLE attempts_old RENAME TO attempts;

DELETE FROM step_deps WHERE kind = 'join';
ALTER TABLE step_deps DROP COLUMN kind;
ALTER TABLE steps DROP COLUMN cancel_requested_at;
ALTER TABLE steps DROP COLUMN partition_keys;
ALTER TABLE runs DROP COLUMN max_parallel;
