-- The engine's tables: runs and their steps, attempts and logs, backfills, schedule
-- ticks, freshness status changes and leader leases.

-- +goose Up

CREATE TABLE backfills (
    id           uuid        PRIMARY KEY,
    selection    text        NOT NULL,
    from_day     text,                  -- YYYY-MM-DD, inclusive; NULL: from each asset's start
    to_day       text,                  -- YYYY-MM-DD, inclusive; NULL: to the newest complete partition
    mode         text        NOT NULL CHECK (mode IN ('missing_and_stale', 'all')),
    max_parallel integer     NOT NULL CHECK (max_parallel > 0),
    status       text        NOT NULL CHECK (status IN ('REQUESTED', 'RUNNING', 'SUCCEEDED', 'FAILED', 'CANCELED')),
    targeted     integer     NOT NULL DEFAULT 0,  -- partitions targeted when planned
    created_at   timestamptz NOT NULL,
    started_at   timestamptz,
    finished_at  timestamptz,
    canceled_at  timestamptz,
    error        text
);

CREATE TABLE runs (
    id            uuid        PRIMARY KEY,
    status        text        NOT NULL CHECK (status IN ('QUEUED', 'RUNNING', 'SUCCEEDED', 'FAILED', 'CANCELED')),
    trigger       text        NOT NULL CHECK (trigger IN ('manual', 'api', 'schedule', 'backfill', 'retry')),
    selection     text        NOT NULL,
    from_day      text,
    to_day        text,
    force         boolean     NOT NULL DEFAULT false,
    backfill_id   uuid        REFERENCES backfills (id),
    schedule_name text,
    parent_run_id uuid        REFERENCES runs (id),  -- the run a retry repeats
    planned_seq   bigint      NOT NULL,              -- catalog watermark the plan was computed at
    created_at    timestamptz NOT NULL,
    started_at    timestamptz,
    finished_at   timestamptz,
    canceled_at   timestamptz,
    error         text
);
CREATE INDEX runs_created ON runs (created_at DESC);
CREATE INDEX runs_status ON runs (status) WHERE status IN ('QUEUED', 'RUNNING');
CREATE INDEX runs_backfill ON runs (backfill_id) WHERE backfill_id IS NOT NULL;

-- A step materializes one asset over one partition or a contiguous batch of them.
CREATE TABLE steps (
    id               uuid        PRIMARY KEY,
    run_id           uuid        NOT NULL REFERENCES runs (id),
    asset_id         bigint      NOT NULL REFERENCES assets (id),
    partition_first  text        NOT NULL,  -- first partition key ('' unpartitioned)
    partition_last   text        NOT NULL,  -- last partition key, inclusive
    partition_count  integer     NOT NULL CHECK (partition_count > 0),
    ordinal          integer     NOT NULL,  -- position in the plan's order, for stable listing
    status           text        NOT NULL CHECK (status IN ('PENDING', 'READY', 'RUNNING', 'SUCCEEDED', 'FAILED',
                                                            'SKIPPED_FRESH', 'UPSTREAM_FAILED', 'CANCELED')),
    waits_on_step_id uuid        REFERENCES steps (id),  -- an in-flight step of another run this one joined
    attempt          integer     NOT NULL DEFAULT 0,     -- attempts started so far
    max_attempts     integer     NOT NULL CHECK (max_attempts > 0),
    not_before       timestamptz,                        -- retry backoff: not claimable before this
    lease_owner      text,
    lease_expires_at timestamptz,
    created_at       timestamptz NOT NULL,
    ready_at         timestamptz,
    started_at       timestamptz,
    finished_at      timestamptz,
    error            text
);
CREATE INDEX steps_run ON steps (run_id, ordinal);
CREATE INDEX steps_claimable ON steps (not_before NULLS FIRST) WHERE status = 'READY';
CREATE INDEX steps_leased ON steps (lease_expires_at) WHERE status = 'RUNNING';
CREATE INDEX steps_asset ON steps (asset_id, created_at);

CREATE TABLE step_deps (
    step_id          uuid NOT NULL REFERENCES steps (id),
    upstream_step_id uuid NOT NULL REFERENCES steps (id),
    PRIMARY KEY (step_id, upstream_step_id)
);
CREATE INDEX step_deps_upstream ON step_deps (upstream_step_id);

-- At most one step per (asset, partition) is queued or running, across all runs: the
-- primary key is the guarantee. Rows live from queueing until the step ends.
CREATE TABLE inflight_partitions (
    asset_id      bigint NOT NULL REFERENCES assets (id),
    partition_key text COLLATE "C" NOT NULL,
    step_id       uuid   NOT NULL REFERENCES steps (id),
    PRIMARY KEY (asset_id, partition_key)
);
CREATE INDEX inflight_partitions_step ON inflight_partitions (step_id);

CREATE TABLE attempts (
    step_id     uuid        NOT NULL REFERENCES steps (id),
    attempt     integer     NOT NULL,
    worker      text        NOT NULL,
    started_at  timestamptz NOT NULL,
    finished_at timestamptz,
    status      text        NOT NULL CHECK (status IN ('RUNNING', 'SUCCEEDED', 'FAILED', 'TIMED_OUT', 'CANCELED', 'LEASE_EXPIRED')),
    exit_code   integer,
    error       text,
    PRIMARY KEY (step_id, attempt)
);

-- Step logs, line by line. A per-step cap keeps the tail; step_log_stats says what was cut.
CREATE TABLE step_logs (
    step_id uuid        NOT NULL REFERENCES steps (id),
    line_no bigint      NOT NULL,
    attempt integer     NOT NULL,
    stream  text        NOT NULL CHECK (stream IN ('stdout', 'stderr', 'system')),
    at      timestamptz NOT NULL,
    line    text        NOT NULL,
    PRIMARY KEY (step_id, line_no)
);
CREATE TABLE step_log_stats (
    step_id       uuid   PRIMARY KEY REFERENCES steps (id),
    kept_bytes    bigint NOT NULL DEFAULT 0,
    kept_lines    bigint NOT NULL DEFAULT 0,
    dropped_bytes bigint NOT NULL DEFAULT 0,
    dropped_lines bigint NOT NULL DEFAULT 0
);

-- One row per schedule and tick time: a restart neither loses nor doubles a tick.
CREATE TABLE schedule_ticks (
    schedule   text        NOT NULL,
    tick_at    timestamptz NOT NULL,
    status     text        NOT NULL CHECK (status IN ('STARTED', 'LAUNCHED', 'SKIPPED', 'FAILED')),
    run_id     uuid        REFERENCES runs (id),
    reason     text,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (schedule, tick_at)
);

-- Every freshness status change of an asset, with why.
CREATE TABLE freshness_events (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    asset_id    bigint      NOT NULL REFERENCES assets (id),
    at          timestamptz NOT NULL,
    status      text        NOT NULL CHECK (status IN ('PASS', 'WARN', 'FAIL', 'UNKNOWN')),
    previous    text        CHECK (previous IN ('PASS', 'WARN', 'FAIL', 'UNKNOWN')),
    lag_seconds double precision,
    reason      text        NOT NULL,
    notified_at timestamptz
);
CREATE INDEX freshness_events_asset ON freshness_events (asset_id, at);
CREATE INDEX freshness_events_at ON freshness_events (at);

-- Leases name one holder at a time (the scheduler's leader); renewed, taken over when lapsed.
CREATE TABLE leases (
    name        text        PRIMARY KEY,
    holder      text        NOT NULL,
    acquired_at timestamptz NOT NULL,
    renewed_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL
);

-- +goose Down
DROP TABLE leases;
DROP TABLE freshness_events;
DROP TABLE schedule_ticks;
DROP TABLE step_log_stats;
DROP TABLE step_logs;
DROP TABLE attempts;
DROP TABLE inflight_partitions;
DROP TABLE step_deps;
DROP TABLE steps;
DROP TABLE runs;
DROP TABLE backfills;
