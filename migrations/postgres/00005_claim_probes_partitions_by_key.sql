-- The claim probes the state of a step's partitions by key.
--
-- Whether a claimed step's partitions were ever materialized (00004's column
-- materialized) was asked as "partition_key = ANY (the step's keys)". A
-- connection plans the function's statements once, at its first claim, and keeps
-- the plan (force_generic_plan); planned while partition_state held a few rows and
-- had no statistics (a fresh catalog, autovacuum not yet come round), that
-- condition was left out of the index scan: the claim read every partition of the
-- asset, by (asset_id, partition_idx), and filtered. An hourly backfill of 8,694
-- steps over 208,614 partitions then took 2 minutes instead of 13 seconds on the
-- worker connections that had planned it so. Each key is now probed on the
-- primary key, in a LATERAL subquery the planner cannot flatten, as the Go
-- driver reads partition state by key (loadStateByKeySQL).
--
-- The function's signature and result are unchanged: Up and Down replace it.

-- +goose Up
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION freshet_claim_steps(p_worker text, p_limit integer, p_lease_us bigint,
    p_cap_keys text[], p_caps integer[], p_wait boolean, p_notify uuid[])
RETURNS TABLE (id uuid, run_id uuid, asset_key text, partition_keys text[], ordinal integer, status text,
    attempt integer, max_attempts integer, deps uuid[], joined uuid[], not_before timestamptz, lease_owner text,
    lease_expires_at timestamptz, cancel_requested boolean, created_at timestamptz, ready_at timestamptz,
    started_at timestamptz, finished_at timestamptz, error text, input_seq bigint, force boolean,
    materialized boolean)
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
    v_lease        interval := p_lease_us * interval '1 microsecond';
    v_cap_ids      bigint[];   -- capped assets, by id
    v_cap_max      integer[];  -- their caps
    v_cap_running  integer[];  -- their RUNNING steps; NULL until counted under the row's lock
    v_locked_runs  uuid[] := '{}';
    v_full_assets  bigint[] := '{}';
    v_claimed      uuid[] := '{}';
    v_passed       uuid[] := '{}';  -- READY steps passed over (a holder's row was locked)
    v_run          record;
    v_row          record;
    v_step         uuid;       -- the step picked: its id, asset, partitions and how many it holds
    v_asset        bigint;
    v_keys         text[];
    v_count        integer;
    v_i            integer;
    v_running      integer;
    v_holders      uuid[];
    v_locked       uuid[];     -- holders of the step's partitions locked FOR SHARE
    v_held         integer;
    v_n            integer;
    v_want         integer;    -- steps the pick may take
    v_picked       integer;    -- steps it took
BEGIN
    IF p_limit <= 0 THEN
        RETURN;
    END IF;
    IF cardinality(p_cap_keys) > 0 THEN
        SELECT coalesce(array_agg(a.id ORDER BY a.id), '{}'), coalesce(array_agg(c.cap ORDER BY a.id), '{}')
        INTO v_cap_ids, v_cap_max
        FROM unnest(p_cap_keys, p_caps) AS c(key, cap) JOIN assets a ON a.key = c.key;
    ELSE
        v_cap_ids := '{}';
        v_cap_max := '{}';
    END IF;
    v_cap_running := array_fill(NULL::integer, ARRAY[cardinality(v_cap_ids)]);

    IF p_wait AND cardinality(v_cap_ids) > 0 THEN
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
    END IF;
    IF p_wait THEN
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
            v_want := p_limit - cardinality(v_claimed);
            EXIT runs WHEN v_want <= 0;
            IF v_run.max_parallel > 0 THEN
                v_want := least(v_want, v_run.max_parallel - v_running);
            END IF;
            v_picked := 0;
            -- Pick the run's first READY steps whose backoff has passed, as many as
            -- may still be claimed, locked, and, in the same statement, claim those
            -- of the common case: a step that holds its partitions (it took them
            -- when its run was created, or is a retry) and whose asset has no cap
            -- here. The others are taken one by one below, in plan order.
            <<picked>>
            FOR v_step, v_asset, v_keys, v_count, v_held,
                id, run_id, asset_key, partition_keys, ordinal, status, attempt, max_attempts, deps, joined,
                not_before, lease_owner, lease_expires_at, cancel_requested, created_at, ready_at, started_at, finished_at,
                error, input_seq, force, materialized IN
                WITH pick AS (
                    SELECT s.id, s.asset_id, s.partition_keys, s.partition_count, s.ordinal,
                        (SELECT count(*) FROM inflight_partitions ip WHERE ip.step_id = s.id) AS held
                    FROM steps s
                    WHERE s.run_id = v_run.id AND s.status = 'READY' AND (s.not_before IS NULL OR s.not_before <= now())
                      AND NOT s.asset_id = ANY (v_full_assets) AND NOT s.id = ANY (v_passed)
                    ORDER BY s.ordinal
                    LIMIT v_want
                    FOR NO KEY UPDATE SKIP LOCKED),
                claimed AS (
                    UPDATE steps s SET status = 'RUNNING', attempt = s.attempt + 1, lease_owner = p_worker,
                        lease_expires_at = now() + v_lease, started_at = coalesce(s.started_at, now()), not_before = NULL
                    FROM pick p
                    WHERE s.id = p.id AND p.held >= p.partition_count AND NOT p.asset_id = ANY (v_cap_ids)
                    RETURNING s.*),
                seq AS (SELECT c.seq FROM catalog_clock c WHERE c.id = 1),
                att AS (
                    INSERT INTO attempts (step_id, attempt, worker, started_at, status, input_seq)
                    SELECT c.id, c.attempt, p_worker, now(), 'RUNNING', (SELECT seq FROM seq) FROM claimed c)
                SELECT p.id, p.asset_id, p.partition_keys, p.partition_count, p.held,
                    c.id, c.run_id, (SELECT a.key FROM assets a WHERE a.id = c.asset_id), c.partition_keys, c.ordinal, c.status,
                    c.attempt, c.max_attempts,
                    ARRAY(SELECT d.upstream_step_id FROM step_deps d JOIN steps u ON u.id = d.upstream_step_id
                          WHERE d.step_id = c.id AND d.kind = 'run' ORDER BY u.ordinal),
                    ARRAY(SELECT d.upstream_step_id FROM step_deps d WHERE d.step_id = c.id AND d.kind = 'join' ORDER BY d.upstream_step_id),
                    c.not_before, c.lease_owner, c.lease_expires_at, c.cancel_requested_at IS NOT NULL,
                    c.created_at, c.ready_at, c.started_at, c.finished_at, coalesce(c.error, ''), (SELECT seq FROM seq), v_run.force,
                    EXISTS (SELECT 1 FROM unnest(c.partition_keys) AS k(key),
                            LATERAL (SELECT 1 FROM partition_state ps
                                     WHERE ps.asset_id = c.asset_id AND ps.partition_key = k.key AND ps.success_seq > 0
                                     OFFSET 0) hit)
                FROM pick p LEFT JOIN claimed c ON c.id = p.id
                ORDER BY p.ordinal
            LOOP
                v_picked := v_picked + 1;
                v_i := array_position(v_cap_ids, v_asset);

                IF id IS NULL THEN
                    IF v_i IS NOT NULL AND v_cap_running[v_i] IS NULL THEN
                        -- A capped asset not locked up front: count its steps only under
                        -- its row's lock, taken only if free.
                        PERFORM 1 FROM assets a WHERE a.id = v_asset FOR NO KEY UPDATE SKIP LOCKED;
                        IF NOT FOUND THEN
                            v_full_assets := v_full_assets || v_asset;
                            CONTINUE picked;
                        END IF;
                        SELECT count(*) INTO v_n FROM steps s WHERE s.asset_id = v_asset AND s.status = 'RUNNING';
                        v_cap_running[v_i] := v_n;
                    END IF;
                    IF v_i IS NOT NULL AND v_cap_running[v_i] >= v_cap_max[v_i] THEN
                        v_full_assets := v_full_assets || v_asset;
                        CONTINUE picked;
                    END IF;

                    -- A step holds the in-flight rows of all its partitions or of none. One
                    -- that holds none (it joined another run's step when it was created, or
                    -- at an earlier claim) takes them all now, or none: while any is held by
                    -- another step it joins every holder and goes back to PENDING.
                    v_locked := '{}';
                    <<take>>
                    WHILE v_held < v_count LOOP
                        -- The holders first: a step that would wait takes nothing, so it
                        -- never waits (below, for a holder's lock) while it holds rows others
                        -- may be waiting for.
                        SELECT coalesce(array_agg(DISTINCT ip.step_id), '{}') INTO v_holders
                        FROM unnest(v_keys) AS k(key),
                        LATERAL (SELECT ip.step_id FROM inflight_partitions ip
                                 WHERE ip.asset_id = v_asset AND ip.partition_key = k.key OFFSET 0) ip
                        WHERE ip.step_id <> v_step;
                        IF cardinality(v_holders) = 0 THEN
                            -- None visible: take them all. A row another transaction inserts
                            -- meanwhile makes the INSERT wait for it; if it commits, the
                            -- step gives back what it took and looks for the holders again.
                            INSERT INTO inflight_partitions (asset_id, partition_key, step_id)
                            SELECT v_asset, k.key, v_step FROM unnest(v_keys) AS k(key)
                            ORDER BY k.key COLLATE "C"
                            ON CONFLICT (asset_id, partition_key) DO NOTHING;
                            GET DIAGNOSTICS v_n = ROW_COUNT;
                            v_held := v_held + v_n;
                            EXIT take WHEN v_held >= v_count;
                            DELETE FROM inflight_partitions ip WHERE ip.step_id = v_step;
                            v_held := 0;
                            CONTINUE take;
                        END IF;
                        IF v_held > 0 THEN
                            -- All or none: a step never keeps part of its partitions.
                            DELETE FROM inflight_partitions ip WHERE ip.step_id = v_step;
                            v_held := 0;
                        END IF;
                        -- Lock the holders (those not locked yet), so that none ends unaware
                        -- of the join: a step's end holds the step's row from before it
                        -- looks for the dependents to make ready until it commits. Without
                        -- p_wait a holder that is ending makes the claim pass over the step,
                        -- which stays READY for the next claim.
                        v_holders := ARRAY(SELECT h FROM unnest(v_holders) AS h WHERE NOT h = ANY (v_locked));
                        IF p_wait THEN
                            PERFORM 1 FROM steps h WHERE h.id = ANY (v_holders) ORDER BY h.id FOR SHARE;
                        ELSE
                            SELECT count(*) INTO v_n FROM (SELECT 1 FROM steps h WHERE h.id = ANY (v_holders) FOR SHARE SKIP LOCKED) x;
                            IF v_n < cardinality(v_holders) THEN
                                v_passed := v_passed || v_step;
                                CONTINUE picked;
                            END IF;
                        END IF;
                        v_locked := v_locked || v_holders;
                        -- Under the locks: the holders that still hold.
                        SELECT coalesce(array_agg(DISTINCT ip.step_id), '{}') INTO v_holders
                        FROM unnest(v_keys) AS k(key),
                        LATERAL (SELECT ip.step_id FROM inflight_partitions ip
                                 WHERE ip.asset_id = v_asset AND ip.partition_key = k.key OFFSET 0) ip
                        WHERE ip.step_id <> v_step;
                        CONTINUE take WHEN cardinality(v_holders) = 0; -- released meanwhile: take them
                        -- A holder that took a partition since the holders were read (one
                        -- released it meanwhile) is not locked: lock it too, first.
                        CONTINUE take WHEN NOT v_holders <@ v_locked;
                        INSERT INTO step_deps (step_id, upstream_step_id, kind)
                        SELECT v_step, h, 'join' FROM unnest(v_holders) AS h
                        ON CONFLICT (step_id, upstream_step_id) DO NOTHING;
                        UPDATE steps s SET status = 'PENDING', ready_at = NULL, waits_on_step_id = (
                            SELECT ip.step_id FROM unnest(v_keys) WITH ORDINALITY AS k(key, n),
                            LATERAL (SELECT ip.step_id FROM inflight_partitions ip
                                     WHERE ip.asset_id = v_asset AND ip.partition_key = k.key OFFSET 0) ip
                            WHERE ip.step_id <> v_step ORDER BY k.n LIMIT 1)
                        WHERE s.id = v_step;
                        CONTINUE picked;
                    END LOOP take;

                    -- Claim it, record the attempt, and return the step as it is now.
                    WITH claimed AS (
                        UPDATE steps s SET status = 'RUNNING', attempt = s.attempt + 1, lease_owner = p_worker,
                            lease_expires_at = now() + v_lease, started_at = coalesce(s.started_at, now()), not_before = NULL
                        WHERE s.id = v_step
                        RETURNING s.*),
                    seq AS (SELECT c.seq FROM catalog_clock c WHERE c.id = 1),
                    att AS (
                        INSERT INTO attempts (step_id, attempt, worker, started_at, status, input_seq)
                        SELECT c.id, c.attempt, p_worker, now(), 'RUNNING', (SELECT seq FROM seq) FROM claimed c)
                    SELECT c.id, c.run_id, (SELECT a.key FROM assets a WHERE a.id = c.asset_id), c.partition_keys, c.ordinal, c.status,
                        c.attempt, c.max_attempts,
                        ARRAY(SELECT d.upstream_step_id FROM step_deps d JOIN steps u ON u.id = d.upstream_step_id
                              WHERE d.step_id = c.id AND d.kind = 'run' ORDER BY u.ordinal),
                        ARRAY(SELECT d.upstream_step_id FROM step_deps d WHERE d.step_id = c.id AND d.kind = 'join' ORDER BY d.upstream_step_id),
                        c.not_before, c.lease_owner, c.lease_expires_at, c.cancel_requested_at IS NOT NULL,
                        c.created_at, c.ready_at, c.started_at, c.finished_at, coalesce(c.error, ''), (SELECT seq FROM seq), v_run.force,
                        EXISTS (SELECT 1 FROM unnest(c.partition_keys) AS k(key),
                                LATERAL (SELECT 1 FROM partition_state ps
                                         WHERE ps.asset_id = c.asset_id AND ps.partition_key = k.key AND ps.success_seq > 0
                                         OFFSET 0) hit)
                    INTO id, run_id, asset_key, partition_keys, ordinal, status, attempt, max_attempts, deps, joined,
                        not_before, lease_owner, lease_expires_at, cancel_requested, created_at, ready_at, started_at, finished_at,
                        error, input_seq, force, materialized
                    FROM claimed c;
                END IF;

                RETURN NEXT;
                v_claimed := v_claimed || v_step;
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
                END IF;
            END LOOP picked;
            -- No READY step left to pick in the run, or its cap is reached.
            EXIT picks WHEN v_picked = 0;
            CONTINUE runs WHEN v_run.max_parallel > 0 AND v_running >= v_run.max_parallel;
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
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION freshet_claim_steps(p_worker text, p_limit integer, p_lease_us bigint,
    p_cap_keys text[], p_caps integer[], p_wait boolean, p_notify uuid[])
RETURNS TABLE (id uuid, run_id uuid, asset_key text, partition_keys text[], ordinal integer, status text,
    attempt integer, max_attempts integer, deps uuid[], joined uuid[], not_before timestamptz, lease_owner text,
    lease_expires_at timestamptz, cancel_requested boolean, created_at timestamptz, ready_at timestamptz,
    started_at timestamptz, finished_at timestamptz, error text, input_seq bigint, force boolean,
    materialized boolean)
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
    v_lease        interval := p_lease_us * interval '1 microsecond';
    v_cap_ids      bigint[];   -- capped assets, by id
    v_cap_max      integer[];  -- their caps
    v_cap_running  integer[];  -- their RUNNING steps; NULL until counted under the row's lock
    v_locked_runs  uuid[] := '{}';
    v_full_assets  bigint[] := '{}';
    v_claimed      uuid[] := '{}';
    v_passed       uuid[] := '{}';  -- READY steps passed over (a holder's row was locked)
    v_run          record;
    v_row          record;
    v_step         uuid;       -- the step picked: its id, asset, partitions and how many it holds
    v_asset        bigint;
    v_keys         text[];
    v_count        integer;
    v_i            integer;
    v_running      integer;
    v_holders      uuid[];
    v_locked       uuid[];     -- holders of the step's partitions locked FOR SHARE
    v_held         integer;
    v_n            integer;
    v_want         integer;    -- steps the pick may take
    v_picked       integer;    -- steps it took
BEGIN
    IF p_limit <= 0 THEN
        RETURN;
    END IF;
    IF cardinality(p_cap_keys) > 0 THEN
        SELECT coalesce(array_agg(a.id ORDER BY a.id), '{}'), coalesce(array_agg(c.cap ORDER BY a.id), '{}')
        INTO v_cap_ids, v_cap_max
        FROM unnest(p_cap_keys, p_caps) AS c(key, cap) JOIN assets a ON a.key = c.key;
    ELSE
        v_cap_ids := '{}';
        v_cap_max := '{}';
    END IF;
    v_cap_running := array_fill(NULL::integer, ARRAY[cardinality(v_cap_ids)]);

    IF p_wait AND cardinality(v_cap_ids) > 0 THEN
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
    END IF;
    IF p_wait THEN
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
            v_want := p_limit - cardinality(v_claimed);
            EXIT runs WHEN v_want <= 0;
            IF v_run.max_parallel > 0 THEN
                v_want := least(v_want, v_run.max_parallel - v_running);
            END IF;
            v_picked := 0;
            -- Pick the run's first READY steps whose backoff has passed, as many as
            -- may still be claimed, locked, and, in the same statement, claim those
            -- of the common case: a step that holds its partitions (it took them
            -- when its run was created, or is a retry) and whose asset has no cap
            -- here. The others are taken one by one below, in plan order.
            <<picked>>
            FOR v_step, v_asset, v_keys, v_count, v_held,
                id, run_id, asset_key, partition_keys, ordinal, status, attempt, max_attempts, deps, joined,
                not_before, lease_owner, lease_expires_at, cancel_requested, created_at, ready_at, started_at, finished_at,
                error, input_seq, force, materialized IN
                WITH pick AS (
                    SELECT s.id, s.asset_id, s.partition_keys, s.partition_count, s.ordinal,
                        (SELECT count(*) FROM inflight_partitions ip WHERE ip.step_id = s.id) AS held
                    FROM steps s
                    WHERE s.run_id = v_run.id AND s.status = 'READY' AND (s.not_before IS NULL OR s.not_before <= now())
                      AND NOT s.asset_id = ANY (v_full_assets) AND NOT s.id = ANY (v_passed)
                    ORDER BY s.ordinal
                    LIMIT v_want
                    FOR NO KEY UPDATE SKIP LOCKED),
                claimed AS (
                    UPDATE steps s SET status = 'RUNNING', attempt = s.attempt + 1, lease_owner = p_worker,
                        lease_expires_at = now() + v_lease, started_at = coalesce(s.started_at, now()), not_before = NULL
                    FROM pick p
                    WHERE s.id = p.id AND p.held >= p.partition_count AND NOT p.asset_id = ANY (v_cap_ids)
                    RETURNING s.*),
                seq AS (SELECT c.seq FROM catalog_clock c WHERE c.id = 1),
                att AS (
                    INSERT INTO attempts (step_id, attempt, worker, started_at, status, input_seq)
                    SELECT c.id, c.attempt, p_worker, now(), 'RUNNING', (SELECT seq FROM seq) FROM claimed c)
                SELECT p.id, p.asset_id, p.partition_keys, p.partition_count, p.held,
                    c.id, c.run_id, (SELECT a.key FROM assets a WHERE a.id = c.asset_id), c.partition_keys, c.ordinal, c.status,
                    c.attempt, c.max_attempts,
                    ARRAY(SELECT d.upstream_step_id FROM step_deps d JOIN steps u ON u.id = d.upstream_step_id
                          WHERE d.step_id = c.id AND d.kind = 'run' ORDER BY u.ordinal),
                    ARRAY(SELECT d.upstream_step_id FROM step_deps d WHERE d.step_id = c.id AND d.kind = 'join' ORDER BY d.upstream_step_id),
                    c.not_before, c.lease_owner, c.lease_expires_at, c.cancel_requested_at IS NOT NULL,
                    c.created_at, c.ready_at, c.started_at, c.finished_at, coalesce(c.error, ''), (SELECT seq FROM seq), v_run.force,
                    EXISTS (SELECT 1 FROM partition_state ps
                            WHERE ps.asset_id = c.asset_id AND ps.partition_key = ANY (c.partition_keys) AND ps.success_seq > 0)
                FROM pick p LEFT JOIN claimed c ON c.id = p.id
                ORDER BY p.ordinal
            LOOP
                v_picked := v_picked + 1;
                v_i := array_position(v_cap_ids, v_asset);

                IF id IS NULL THEN
                    IF v_i IS NOT NULL AND v_cap_running[v_i] IS NULL THEN
                        -- A capped asset not locked up front: count its steps only under
                        -- its row's lock, taken only if free.
                        PERFORM 1 FROM assets a WHERE a.id = v_asset FOR NO KEY UPDATE SKIP LOCKED;
                        IF NOT FOUND THEN
                            v_full_assets := v_full_assets || v_asset;
                            CONTINUE picked;
                        END IF;
                        SELECT count(*) INTO v_n FROM steps s WHERE s.asset_id = v_asset AND s.status = 'RUNNING';
                        v_cap_running[v_i] := v_n;
                    END IF;
                    IF v_i IS NOT NULL AND v_cap_running[v_i] >= v_cap_max[v_i] THEN
                        v_full_assets := v_full_assets || v_asset;
                        CONTINUE picked;
                    END IF;

                    -- A step holds the in-flight rows of all its partitions or of none. One
                    -- that holds none (it joined another run's step when it was created, or
                    -- at an earlier claim) takes them all now, or none: while any is held by
                    -- another step it joins every holder and goes back to PENDING.
                    v_locked := '{}';
                    <<take>>
                    WHILE v_held < v_count LOOP
                        -- The holders first: a step that would wait takes nothing, so it
                        -- never waits (below, for a holder's lock) while it holds rows others
                        -- may be waiting for.
                        SELECT coalesce(array_agg(DISTINCT ip.step_id), '{}') INTO v_holders
                        FROM unnest(v_keys) AS k(key),
                        LATERAL (SELECT ip.step_id FROM inflight_partitions ip
                                 WHERE ip.asset_id = v_asset AND ip.partition_key = k.key OFFSET 0) ip
                        WHERE ip.step_id <> v_step;
                        IF cardinality(v_holders) = 0 THEN
                            -- None visible: take them all. A row another transaction inserts
                            -- meanwhile makes the INSERT wait for it; if it commits, the
                            -- step gives back what it took and looks for the holders again.
                            INSERT INTO inflight_partitions (asset_id, partition_key, step_id)
                            SELECT v_asset, k.key, v_step FROM unnest(v_keys) AS k(key)
                            ORDER BY k.key COLLATE "C"
                            ON CONFLICT (asset_id, partition_key) DO NOTHING;
                            GET DIAGNOSTICS v_n = ROW_COUNT;
                            v_held := v_held + v_n;
                            EXIT take WHEN v_held >= v_count;
                            DELETE FROM inflight_partitions ip WHERE ip.step_id = v_step;
                            v_held := 0;
                            CONTINUE take;
                        END IF;
                        IF v_held > 0 THEN
                            -- All or none: a step never keeps part of its partitions.
                            DELETE FROM inflight_partitions ip WHERE ip.step_id = v_step;
                            v_held := 0;
                        END IF;
                        -- Lock the holders (those not locked yet), so that none ends unaware
                        -- of the join: a step's end holds the step's row from before it
                        -- looks for the dependents to make ready until it commits. Without
                        -- p_wait a holder that is ending makes the claim pass over the step,
                        -- which stays READY for the next claim.
                        v_holders := ARRAY(SELECT h FROM unnest(v_holders) AS h WHERE NOT h = ANY (v_locked));
                        IF p_wait THEN
                            PERFORM 1 FROM steps h WHERE h.id = ANY (v_holders) ORDER BY h.id FOR SHARE;
                        ELSE
                            SELECT count(*) INTO v_n FROM (SELECT 1 FROM steps h WHERE h.id = ANY (v_holders) FOR SHARE SKIP LOCKED) x;
                            IF v_n < cardinality(v_holders) THEN
                                v_passed := v_passed || v_step;
                                CONTINUE picked;
                            END IF;
                        END IF;
                        v_locked := v_locked || v_holders;
                        -- Under the locks: the holders that still hold.
                        SELECT coalesce(array_agg(DISTINCT ip.step_id), '{}') INTO v_holders
                        FROM unnest(v_keys) AS k(key),
                        LATERAL (SELECT ip.step_id FROM inflight_partitions ip
                                 WHERE ip.asset_id = v_asset AND ip.partition_key = k.key OFFSET 0) ip
                        WHERE ip.step_id <> v_step;
                        CONTINUE take WHEN cardinality(v_holders) = 0; -- released meanwhile: take them
                        -- A holder that took a partition since the holders were read (one
                        -- released it meanwhile) is not locked: lock it too, first.
                        CONTINUE take WHEN NOT v_holders <@ v_locked;
                        INSERT INTO step_deps (step_id, upstream_step_id, kind)
                        SELECT v_step, h, 'join' FROM unnest(v_holders) AS h
                        ON CONFLICT (step_id, upstream_step_id) DO NOTHING;
                        UPDATE steps s SET status = 'PENDING', ready_at = NULL, waits_on_step_id = (
                            SELECT ip.step_id FROM unnest(v_keys) WITH ORDINALITY AS k(key, n),
                            LATERAL (SELECT ip.step_id FROM inflight_partitions ip
                                     WHERE ip.asset_id = v_asset AND ip.partition_key = k.key OFFSET 0) ip
                            WHERE ip.step_id <> v_step ORDER BY k.n LIMIT 1)
                        WHERE s.id = v_step;
                        CONTINUE picked;
                    END LOOP take;

                    -- Claim it, record the attempt, and return the step as it is now.
                    WITH claimed AS (
                        UPDATE steps s SET status = 'RUNNING', attempt = s.attempt + 1, lease_owner = p_worker,
                            lease_expires_at = now() + v_lease, started_at = coalesce(s.started_at, now()), not_before = NULL
                        WHERE s.id = v_step
                        RETURNING s.*),
                    seq AS (SELECT c.seq FROM catalog_clock c WHERE c.id = 1),
                    att AS (
                        INSERT INTO attempts (step_id, attempt, worker, started_at, status, input_seq)
                        SELECT c.id, c.attempt, p_worker, now(), 'RUNNING', (SELECT seq FROM seq) FROM claimed c)
                    SELECT c.id, c.run_id, (SELECT a.key FROM assets a WHERE a.id = c.asset_id), c.partition_keys, c.ordinal, c.status,
                        c.attempt, c.max_attempts,
                        ARRAY(SELECT d.upstream_step_id FROM step_deps d JOIN steps u ON u.id = d.upstream_step_id
                              WHERE d.step_id = c.id AND d.kind = 'run' ORDER BY u.ordinal),
                        ARRAY(SELECT d.upstream_step_id FROM step_deps d WHERE d.step_id = c.id AND d.kind = 'join' ORDER BY d.upstream_step_id),
                        c.not_before, c.lease_owner, c.lease_expires_at, c.cancel_requested_at IS NOT NULL,
                        c.created_at, c.ready_at, c.started_at, c.finished_at, coalesce(c.error, ''), (SELECT seq FROM seq), v_run.force,
                        EXISTS (SELECT 1 FROM partition_state ps
                                WHERE ps.asset_id = c.asset_id AND ps.partition_key = ANY (c.partition_keys) AND ps.success_seq > 0)
                    INTO id, run_id, asset_key, partition_keys, ordinal, status, attempt, max_attempts, deps, joined,
                        not_before, lease_owner, lease_expires_at, cancel_requested, created_at, ready_at, started_at, finished_at,
                        error, input_seq, force, materialized
                    FROM claimed c;
                END IF;

                RETURN NEXT;
                v_claimed := v_claimed || v_step;
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
                END IF;
            END LOOP picked;
            -- No READY step left to pick in the run, or its cap is reached.
            EXIT picks WHEN v_picked = 0;
            CONTINUE runs WHEN v_run.max_parallel > 0 AND v_running >= v_run.max_parallel;
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
