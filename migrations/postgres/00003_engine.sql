-- The engine queue: what claiming, finishing and canceling steps need beyond 00002.

-- +goose Up

-- A run's cap on its steps running at once; 0: no cap.
ALTER TABLE runs ADD COLUMN max_parallel integer NOT NULL DEFAULT 0;

-- Every partition key of the step, in order: a batch step's keys cannot be derived
-- from its first and last without the asset's definition. (Steps written before
-- this migration get what can be known; the engine wrote none.)
ALTER TABLE steps ADD COLUMN partition_keys text[] NOT NULL DEFAULT '{}';
UPDATE steps SET partition_keys = ARRAY[partition_first] WHERE partition_count = 1;
UPDATE steps SET partition_keys = ARRAY[partition_first, partition_last] WHERE partition_count = 2;
-- Set when a cancel was requested while the step ran: its worker sees it on its next
-- heartbeat, kills the step and reports it canceled.
ALTER TABLE steps ADD COLUMN cancel_requested_at timestamptz;

-- 'run': a step of the same run this one needs; 'join': an in-flight step of another
-- run holding one of this step's partitions, which this one waits for.
ALTER TABLE step_deps ADD COLUMN kind text NOT NULL DEFAULT 'run' CHECK (kind IN ('run', 'join'));

-- The catalog watermark when the attempt was claimed, and the status SKIPPED (the
-- pre-start check found every partition fresh).
ALTER TABLE attempts ADD COLUMN input_seq bigint NOT NULL DEFAULT 0;
ALTER TABLE attempts DROP CONSTRAINT attempts_status_check;
ALTER TABLE attempts ADD CONSTRAINT attempts_status_check CHECK (status IN ('RUNNING', 'SUCCEEDED', 'SKIPPED', 'FAILED',
    'TIMED_OUT', 'CANCELED', 'LEASE_EXPIRED'));

-- Claims walk the active runs oldest first, then each run's READY steps in plan order.
CREATE INDEX runs_active ON runs (created_at, id) WHERE status IN ('QUEUED', 'RUNNING');
-- A run's unfinished steps by status, in plan order: READY ones to claim, RUNNING ones
-- to count against max_parallel, any at all to know whether the run ended. Partial,
-- so it stays as small as the work in flight however long the history grows.
CREATE INDEX steps_open ON steps (run_id, status, ordinal) WHERE status IN ('PENDING', 'READY', 'RUNNING');
-- An asset's READY and RUNNING steps: whether a capped asset has work, how many run.
CREATE INDEX steps_asset_active ON steps (asset_id, status) WHERE status IN ('READY', 'RUNNING');
-- Listing backfills newest first.
CREATE INDEX backfills_created ON backfills (created_at DESC, id DESC);
-- Claims find READY steps through steps_open, run by run: the index of READY steps by
-- not_before is not used, and every step becoming READY would pay for it.
DROP INDEX steps_claimable;

-- freshet_claim_steps claims up to p_limit READY steps for p_worker, oldest run
-- first and in plan order within a run, under a lease of p_lease_us microseconds,
-- and returns them
-- with the catalog watermark read in the claiming transaction.
--
-- It is one function, not one statement, because the caps are exact: whether a step
-- may be taken depends on the steps taken before it in the same claim (a step held
-- back by its run's cap does not use its asset's cap, and the other way round), which
-- no set-based statement expresses. Each pick is one index descent with FOR NO KEY
-- UPDATE SKIP LOCKED, so concurrent claimers never wait on each other's steps nor
-- take the same one. (Rows are locked FOR NO KEY UPDATE, which serializes the
-- claimers as FOR UPDATE would without blocking the foreign key checks of writers
-- that reference the rows, such as an event inserted for a capped asset.)
--
-- Caps (p_cap_keys[i] at most p_caps[i] RUNNING steps, across all runs; a run's
-- max_parallel) are counted under the lock of the capped asset or run row, so two
-- claimers cannot both see the last free slot. A QUEUED run's row is locked too,
-- before its first step is taken, since the claim makes it RUNNING. With p_wait (a
-- plain claim, holding no other lock) those rows are locked up front, waiting for
-- them, assets before runs and each in id order, so that claimers queue rather than
-- deadlock; rows that only turn up later are taken only if free. Without p_wait (the
-- claim that ends FinishStep, which holds its run's row already) no row is waited
-- for: one locked by another transaction makes the claim pass over its steps, which
-- that transaction or the next claim takes.
--
-- A claimed step that does not hold all its partitions (it joined another run's
-- step when it was created) takes the free ones first; if one is held by another
-- step it joins that step, goes back to PENDING and is not returned. The holder's
-- row is locked (FOR SHARE) before the join is recorded: a holder that is ending
-- (its FinishStep holds the row) is waited for, or passed over without p_wait, so
-- that it either sees the join when it makes its dependents ready, or has released
-- the partition, which the step then takes.
--
-- The claimed steps are returned with what the Go driver reads of a step (see
-- stepColumns), the watermark and the run's force flag. When a dependent of a step
-- in p_notify is READY at the end (the caller's transaction made it ready and the
-- claim left it), the listeners are notified.
-- +goose StatementBegin
CREATE FUNCTION freshet_claim_steps(p_worker text, p_limit integer, p_lease_us bigint,
    p_cap_keys text[], p_caps integer[], p_wait boolean, p_notify uuid[])
RETURNS TABLE (id uuid, run_id uuid, asset_key text, partition_keys text[], ordinal integer, status text,
    attempt integer, max_attempts integer, deps uuid[], joined uuid[], not_before timestamptz, lease_owner text,
    lease_expires_at timestamptz, cancel_requested boolean, created_at timestamptz, ready_at timestamptz,
    started_at timestamptz, finished_at timestamptz, error text, input_seq bigint, force boolean)
LANGUAGE plpgsql
-- Every statement here looks rows up by key through an index whatever its
-- parameters: planning them again on each call (custom plans) would cost more than
-- running them, and without statistics (a fresh schema) the planner would rather
-- scan the tables whole (see planSettingsSQL in the Go driver).
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off
SET enable_hashjoin = off
AS $$
#variable_conflict use_column
DECLARE
    v_seq          bigint;
    v_lease        interval := p_lease_us * interval '1 microsecond';
    v_cap_ids      bigint[];   -- capped assets, by id
    v_cap_max      integer[];  -- their caps
    v_cap_running  integer[];  -- their RUNNING steps; NULL until counted under the row's lock
    v_locked_runs  uuid[] := '{}';
    v_full_assets  bigint[] := '{}';
    v_claimed      uuid[] := '{}';
    v_run          record;
    v_step         record;
    v_row          record;
    v_i            integer;
    v_running      integer;
    v_holders      uuid[];
    v_held         integer;
    v_n            integer;
BEGIN
    IF p_limit <= 0 THEN
        RETURN;
    END IF;
    -- The watermark: read in this transaction, after any events it appended, so an
    -- attempt claimed here reads at least what the transaction recorded.
    SELECT c.seq INTO v_seq FROM catalog_clock c WHERE c.id = 1;

    IF cardinality(p_cap_keys) > 0 THEN
        SELECT coalesce(array_agg(a.id ORDER BY a.id), '{}'), coalesce(array_agg(c.cap ORDER BY a.id), '{}')
        INTO v_cap_ids, v_cap_max
        FROM unnest(p_cap_keys, p_caps) AS c(key, cap) JOIN assets a ON a.key = c.key;
    ELSE
        v_cap_ids := '{}';
        v_cap_max := '{}';
    END IF;
    v_cap_running := array_fill(NULL::integer, ARRAY[cardinality(v_cap_ids)]);

    IF p_wait THEN
        FOR v_row IN
            SELECT a.id FROM assets a
            WHERE a.id = ANY (v_cap_ids)
              AND EXISTS (SELECT 1 FROM steps s WHERE s.asset_id = a.id AND s.status = 'READY')
            ORDER BY a.id FOR NO KEY UPDATE
        LOOP
            v_i := array_position(v_cap_ids, v_row.id);
            SELECT count(*) INTO v_running FROM steps s WHERE s.asset_id = v_row.id AND s.status = 'RUNNING';
            v_cap_running[v_i] := v_running;
            IF v_running >= v_cap_max[v_i] THEN
                v_full_assets := v_full_assets || v_row.id;
            END IF;
        END LOOP;
        FOR v_row IN
            SELECT r.id FROM runs r
            WHERE r.status IN ('QUEUED', 'RUNNING') AND (r.max_parallel > 0 OR r.status = 'QUEUED')
              AND r.canceled_at IS NULL
              AND EXISTS (SELECT 1 FROM steps s WHERE s.run_id = r.id AND s.status = 'READY')
            ORDER BY r.id FOR NO KEY UPDATE
        LOOP
            v_locked_runs := v_locked_runs || v_row.id;
        END LOOP;
    END IF;

    <<runs>>
    FOR v_run IN
        SELECT r.id, r.status, r.max_parallel, r.force FROM runs r
        WHERE r.status IN ('QUEUED', 'RUNNING') AND r.canceled_at IS NULL
          AND EXISTS (SELECT 1 FROM steps s WHERE s.run_id = r.id AND s.status = 'READY')
        ORDER BY r.created_at, r.id
    LOOP
        v_running := NULL;
        IF v_run.max_parallel > 0 OR v_run.status = 'QUEUED' THEN
            IF NOT v_run.id = ANY (v_locked_runs) THEN
                -- Not locked up front (or no waiting): take the row only if free,
                -- and re-read it under the lock: the run may have moved on.
                SELECT r.status INTO v_row FROM runs r
                WHERE r.id = v_run.id AND r.status IN ('QUEUED', 'RUNNING') AND r.canceled_at IS NULL
                FOR NO KEY UPDATE SKIP LOCKED;
                CONTINUE runs WHEN NOT FOUND;
                v_locked_runs := v_locked_runs || v_run.id;
                v_run.status := v_row.status;
            END IF;
            IF v_run.max_parallel > 0 THEN
                SELECT count(*) INTO v_running FROM steps s WHERE s.run_id = v_run.id AND s.status = 'RUNNING';
                CONTINUE runs WHEN v_running >= v_run.max_parallel;
            END IF;
        END IF;

        <<picks>>
        LOOP
            EXIT runs WHEN cardinality(v_claimed) >= p_limit;
            SELECT s.id, s.asset_id, s.partition_keys, s.partition_count,
                (SELECT count(*) FROM inflight_partitions ip WHERE ip.step_id = s.id) AS held
            INTO v_step
            FROM steps s
            WHERE s.run_id = v_run.id AND s.status = 'READY' AND (s.not_before IS NULL OR s.not_before <= now())
              AND NOT s.asset_id = ANY (v_full_assets)
              AND NOT s.id = ANY (v_claimed)
            ORDER BY s.ordinal
            LIMIT 1
            FOR NO KEY UPDATE SKIP LOCKED;
            EXIT picks WHEN NOT FOUND;

            v_i := array_position(v_cap_ids, v_step.asset_id);
            IF v_i IS NOT NULL AND v_cap_running[v_i] IS NULL THEN
                -- A capped asset not locked up front: count its steps only under
                -- its row's lock, taken only if free.
                PERFORM 1 FROM assets a WHERE a.id = v_step.asset_id FOR NO KEY UPDATE SKIP LOCKED;
                IF NOT FOUND THEN
                    v_full_assets := v_full_assets || v_step.asset_id;
                    CONTINUE picks;
                END IF;
                SELECT count(*) INTO v_running FROM steps s WHERE s.asset_id = v_step.asset_id AND s.status = 'RUNNING';
                v_cap_running[v_i] := v_running;
            END IF;
            IF v_i IS NOT NULL AND v_cap_running[v_i] >= v_cap_max[v_i] THEN
                v_full_assets := v_full_assets || v_step.asset_id;
                CONTINUE picks;
            END IF;

            -- A joiner made READY holds only the partitions that were free when it
            -- was created: it takes the others now, or joins whoever holds them.
            v_held := v_step.held;
            <<take>>
            WHILE v_held < v_step.partition_count LOOP
                INSERT INTO inflight_partitions (asset_id, partition_key, step_id)
                SELECT v_step.asset_id, k.key, v_step.id FROM unnest(v_step.partition_keys) AS k(key)
                ORDER BY k.key COLLATE "C"
                ON CONFLICT (asset_id, partition_key) DO NOTHING;
                SELECT count(*) INTO v_held FROM inflight_partitions ip WHERE ip.step_id = v_step.id;
                EXIT take WHEN v_held >= v_step.partition_count;
                SELECT coalesce(array_agg(DISTINCT ip.step_id), '{}') INTO v_holders
                FROM unnest(v_step.partition_keys) AS k(key),
                LATERAL (SELECT ip.step_id FROM inflight_partitions ip
                         WHERE ip.asset_id = v_step.asset_id AND ip.partition_key = k.key OFFSET 0) ip
                WHERE ip.step_id <> v_step.id;
                IF cardinality(v_holders) = 0 THEN
                    CONTINUE take; -- released meanwhile: take them
                END IF;
                -- Lock the holders, so that none ends unaware of the join.
                IF p_wait THEN
                    PERFORM 1 FROM steps h WHERE h.id = ANY (v_holders) ORDER BY h.id FOR SHARE;
                ELSE
                    SELECT count(*) INTO v_n FROM (SELECT 1 FROM steps h WHERE h.id = ANY (v_holders) FOR SHARE SKIP LOCKED) x;
                    CONTINUE picks WHEN v_n < cardinality(v_holders);
                END IF;
                -- Under the locks: the holders that still hold.
                SELECT coalesce(array_agg(DISTINCT ip.step_id), '{}') INTO v_holders
                FROM unnest(v_step.partition_keys) AS k(key),
                LATERAL (SELECT ip.step_id FROM inflight_partitions ip
                         WHERE ip.asset_id = v_step.asset_id AND ip.partition_key = k.key OFFSET 0) ip
                WHERE ip.step_id <> v_step.id;
                IF cardinality(v_holders) = 0 THEN
                    SELECT count(*) INTO v_held FROM inflight_partitions ip WHERE ip.step_id = v_step.id;
                    CONTINUE take;
                END IF;
                INSERT INTO step_deps (step_id, upstream_step_id, kind)
                SELECT v_step.id, h, 'join' FROM unnest(v_holders) AS h
                ON CONFLICT (step_id, upstream_step_id) DO NOTHING;
                UPDATE steps s SET status = 'PENDING', ready_at = NULL, waits_on_step_id = (
                    SELECT ip.step_id FROM unnest(v_step.partition_keys) WITH ORDINALITY AS k(key, n),
                    LATERAL (SELECT ip.step_id FROM inflight_partitions ip
                             WHERE ip.asset_id = v_step.asset_id AND ip.partition_key = k.key OFFSET 0) ip
                    WHERE ip.step_id <> v_step.id ORDER BY k.n LIMIT 1)
                WHERE s.id = v_step.id;
                CONTINUE picks;
            END LOOP take;

            -- Claim it, record the attempt, and return the step as it is now.
            WITH claimed AS (
                UPDATE steps s SET status = 'RUNNING', attempt = s.attempt + 1, lease_owner = p_worker,
                    lease_expires_at = now() + v_lease, started_at = coalesce(s.started_at, now()), not_before = NULL
                WHERE s.id = v_step.id
                RETURNING s.*),
            att AS (
                INSERT INTO attempts (step_id, attempt, worker, started_at, status, input_seq)
                SELECT c.id, c.attempt, p_worker, now(), 'RUNNING', v_seq FROM claimed c)
            SELECT c.id, c.run_id, (SELECT a.key FROM assets a WHERE a.id = c.asset_id), c.partition_keys, c.ordinal, c.status,
                c.attempt, c.max_attempts,
                ARRAY(SELECT d.upstream_step_id FROM step_deps d JOIN steps u ON u.id = d.upstream_step_id
                      WHERE d.step_id = c.id AND d.kind = 'run' ORDER BY u.ordinal),
                ARRAY(SELECT d.upstream_step_id FROM step_deps d WHERE d.step_id = c.id AND d.kind = 'join' ORDER BY d.upstream_step_id),
                c.not_before, c.lease_owner, c.lease_expires_at, c.cancel_requested_at IS NOT NULL,
                c.created_at, c.ready_at, c.started_at, c.finished_at, coalesce(c.error, ''), v_seq, v_run.force
            INTO id, run_id, asset_key, partition_keys, ordinal, status, attempt, max_attempts, deps, joined,
                not_before, lease_owner, lease_expires_at, cancel_requested, created_at, ready_at, started_at, finished_at,
                error, input_seq, force
            FROM claimed c;
            RETURN NEXT;
            v_claimed := v_claimed || v_step.id;
            IF v_run.status = 'QUEUED' THEN
                UPDATE runs r SET status = 'RUNNING', started_at = coalesce(r.started_at, now())
                WHERE r.id = v_run.id AND r.status = 'QUEUED';
                v_run.status := 'RUNNING';
            END IF;
            IF v_i IS NOT NULL THEN
                v_cap_running[v_i] := v_cap_running[v_i] + 1;
            END IF;
            IF v_run.max_parallel > 0 THEN
                v_running := v_running + 1;
                CONTINUE runs WHEN v_running >= v_run.max_parallel;
            END IF;
        END LOOP picks;
    END LOOP runs;

    -- Wake the listeners if steps made ready by the caller's transaction (the
    -- dependents of p_notify) are left for others.
    IF cardinality(p_notify) > 0 AND EXISTS (
        SELECT 1 FROM (SELECT d.step_id FROM step_deps d WHERE d.upstream_step_id = ANY (p_notify)) dep,
        LATERAL (SELECT 1 FROM steps x WHERE x.id = dep.step_id AND x.status = 'READY' OFFSET 0) r)
    THEN
        PERFORM pg_notify('freshet_steps', '');
    END IF;

END;
$$;
-- +goose StatementEnd

-- +goose Down
CREATE INDEX steps_claimable ON steps (not_before NULLS FIRST) WHERE status = 'READY';
DROP FUNCTION freshet_claim_steps(text, integer, bigint, text[], integer[], boolean, uuid[]);
DROP INDEX backfills_created;
DROP INDEX steps_asset_active;
DROP INDEX steps_open;
DROP INDEX runs_active;
ALTER TABLE attempts DROP CONSTRAINT attempts_status_check;
-- A skipped attempt ended well: the closest status the old schema knows.
UPDATE attempts SET status = 'SUCCEEDED' WHERE status = 'SKIPPED';
ALTER TABLE attempts ADD CONSTRAINT attempts_status_check CHECK (status IN ('RUNNING', 'SUCCEEDED', 'FAILED', 'TIMED_OUT',
    'CANCELED', 'LEASE_EXPIRED'));
ALTER TABLE attempts DROP COLUMN input_seq;
DELETE FROM step_deps WHERE kind = 'join';
ALTER TABLE step_deps DROP COLUMN kind;
ALTER TABLE steps DROP COLUMN cancel_requested_at;
ALTER TABLE steps DROP COLUMN partition_keys;
ALTER TABLE runs DROP COLUMN max_parallel;
