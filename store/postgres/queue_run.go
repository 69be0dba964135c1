package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/freshetdev/freshet/assets"
	"github.com/freshetdev/freshet/store"
)

// CreateRun records a run and its steps in one transaction of two round trips:
// the BEGIN with the lookup of the steps' assets, then every insert with the
// COMMIT. Nothing is written when a step is invalid.
func (s *Store) CreateRun(ctx context.Context, nr store.NewRun) (*store.Run, error) {
	var run *store.Run
	err := retry(ctx, func() error {
		var err error
		run, err = s.createRun(ctx, nr, nil)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("create run: %w", err)
	}
	return run, nil
}

// runAsset is what CreateRun needs of the assets its steps name.
type runAsset struct {
	id       int64
	isSource bool
	removed  bool
	// partitions is the synced partitions definition; nil: unpartitioned.
	partitions *assets.Partitions
}

// createRun does CreateRun's work; before, when set, queues statements that run
// after the lookup and before the run's inserts in the same transaction
// (CreateBackfill inserts the backfill the run references).
func (s *Store) createRun(ctx context.Context, nr store.NewRun, before func(*pgx.Batch)) (*store.Run, error) {
	if nr.Trigger == "" {
		nr.Trigger = store.TriggerManual
	}
	if !slices.Contains(store.Triggers, nr.Trigger) {
		return nil, fmt.Errorf("unknown trigger %q (want one of %v)", nr.Trigger, store.Triggers)
	}
	// A cap of 0 or less is no cap: recorded as 0.
	nr.MaxParallel = max(nr.MaxParallel, 0)
	backfill := nr.BackfillID
	if before != nil {
		backfill = uuid.Nil // CreateBackfill inserts it in this transaction
	}
	keys := make([]string, 0, len(nr.Steps))
	for _, st := range nr.Steps {
		if isStorableText(string(st.Asset)) {
			keys = append(keys, string(st.Asset))
		}
	}
	b := txBatch(writeTx)
	b.Queue(planSettingsSQL)
	b.Queue(`SELECT $1::uuid IS NULL OR EXISTS (SELECT 1 FROM runs WHERE id = $1),
		$2::uuid IS NULL OR EXISTS (SELECT 1 FROM backfills WHERE id = $2)`, nullUUID(nr.ParentRunID), nullUUID(backfill))
	b.Queue(`SELECT id, key, is_source, removed_seq IS NOT NULL, partitions, partitions_seq
		FROM assets WHERE key = ANY($1::text[])`, keys)
	tx, results, err := s.beginBatch(ctx, b)
	if err != nil {
		return nil, err
	}
	defer tx.release()
	known := map[assets.Key]runAsset{}
	var parentFound, backfillFound bool
	_, err = results.Exec()
	if err == nil {
		err = results.QueryRow().Scan(&parentFound, &backfillFound)
	}
	if err != nil {
		_ = results.Close()
		return nil, err
	}
	rows, _ := results.Query()
	var (
		a             runAsset
		key           string
		partitions    []byte
		partitionsSeq int64
	)
	_, err = pgx.ForEachRow(rows, []any{&a.id, &key, &a.isSource, &a.removed, &partitions, &partitionsSeq}, func() error {
		var err error
		if a.partitions, err = s.cache.partitionsOf(a.id, partitionsSeq, partitions); err != nil {
			return fmt.Errorf("asset %s: %w", key, err)
		}
		known[assets.Key(key)] = a
		return nil
	})
	if err == nil {
		err = results.Close()
	}
	if err != nil {
		_ = results.Close()
		return nil, fmt.Errorf("read the steps' assets: %w", err)
	}
	switch {
	case !parentFound:
		return nil, fmt.Errorf("parent run %s: %w", nr.ParentRunID, store.ErrNotFound)
	case !backfillFound:
		return nil, fmt.Errorf("backfill %s: %w", nr.BackfillID, store.ErrNotFound)
	}
	if err := validateRun(&nr, known); err != nil {
		return nil, err
	}

	runID := nr.ID
	if runID == uuid.Nil {
		runID = uuid.New()
	}
	n := len(nr.Steps)
	var (
		ids                     = make([]uuid.UUID, n)
		assetIDs                = make([]int64, n)
		firsts, lasts           = make([]string, n), make([]string, n)
		counts, ordinals, maxes = make([]int32, n), make([]int32, n), make([]int32, n)
		// Each step's partition keys as a JSON array: slicing one array of every
		// key instead walks it from its start for each step (its elements vary in
		// length), and a run of 8,694 steps over 208,614 partitions took 4 s.
		stepKeys       = make([]string, n)
		depStep, depUp []uuid.UUID
		// One row per (step, partition), in step and partition order.
		ipAssets []int64
		ipKeys   []string
		ipSteps  []uuid.UUID
	)
	for i, st := range nr.Steps {
		ids[i] = st.ID
		if ids[i] == uuid.Nil {
			ids[i] = uuid.New()
		}
	}
	deps := make([][]uuid.UUID, n)
	for i, st := range nr.Steps {
		assetIDs[i] = known[st.Asset].id
		firsts[i], lasts[i] = st.Partitions[0], st.Partitions[len(st.Partitions)-1]
		counts[i], ordinals[i], maxes[i] = int32(len(st.Partitions)), int32(i), int32(st.MaxAttempts)
		// A []string always encodes, and validateRun took only valid UTF-8
		// without NUL, which jsonb gives back as it was.
		keys, _ := json.Marshal(st.Partitions)
		stepKeys[i] = string(keys)
		ds := slices.Clone(st.Deps)
		slices.Sort(ds)
		for _, d := range slices.Compact(ds) {
			depStep, depUp = append(depStep, ids[i]), append(depUp, ids[d])
			deps[i] = append(deps[i], ids[d])
		}
		for _, p := range st.Partitions {
			ipAssets, ipKeys, ipSteps = append(ipAssets, assetIDs[i]), append(ipKeys, p), append(ipSteps, ids[i])
		}
	}

	b = &pgx.Batch{}
	if before != nil {
		before(b)
	}
	nBefore := b.Len()
	b.Queue(`INSERT INTO runs (id, status, trigger, selection, from_day, to_day, force, max_parallel, backfill_id,
			schedule_name, parent_run_id, planned_seq, created_at)
		VALUES ($1, 'QUEUED', $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, now())
		RETURNING created_at`,
		runID, string(nr.Trigger), nr.Selection, nullString(nr.From), nullString(nr.To), nr.Force, int32(nr.MaxParallel),
		nullUUID(nr.BackfillID), nullString(nr.ScheduleName), nullUUID(nr.ParentRunID), nr.PlannedSeq)
	b.Queue(`INSERT INTO steps (id, run_id, asset_id, partition_first, partition_last, partition_count, partition_keys,
			ordinal, status, max_attempts, created_at)
		SELECT t.id, $1, t.asset_id, t.first, t.last, t.count,
			ARRAY(SELECT k.key FROM jsonb_array_elements_text(t.keys::jsonb) WITH ORDINALITY AS k(key, n) ORDER BY k.n),
			t.ordinal, 'PENDING', t.max_attempts, now()
		FROM unnest($2::uuid[], $3::bigint[], $4::text[], $5::text[], $6::integer[], $7::integer[], $8::integer[],
			$9::text[]) AS t(id, asset_id, first, last, count, ordinal, max_attempts, keys)`,
		runID, ids, assetIDs, firsts, lasts, counts, ordinals, maxes, stepKeys)
	b.Queue(`INSERT INTO step_deps (step_id, upstream_step_id, kind) SELECT *, 'run' FROM unnest($1::uuid[], $2::uuid[])`,
		depStep, depUp)
	// A step takes all its partitions or none (see queue.go): each is inserted,
	// and a step one of whose partitions another step holds gives the others back
	// below. The holders' rows are locked first (FOR SHARE), so that none ends
	// before this transaction commits without seeing the joins: a holder ends under
	// its row's lock, and a cascade failing or canceling steps locks them before it
	// looks for their dependents. ON CONFLICT DO UPDATE (a no-op update) locks the
	// row of a partition taken by a step that turned up since. Rows are taken in
	// key order, as every writer of the table takes them.
	b.Queue(`SELECT h.id FROM steps h
		WHERE h.id IN (SELECT ip.step_id FROM unnest($1::bigint[], $2::text[]) AS t(asset_id, partition_key),
		               LATERAL (SELECT ip.step_id FROM inflight_partitions ip
		                        WHERE ip.asset_id = t.asset_id AND ip.partition_key = t.partition_key OFFSET 0) ip)
		ORDER BY h.id FOR SHARE`, ipAssets, ipKeys)
	b.Queue(`INSERT INTO inflight_partitions (asset_id, partition_key, step_id)
		SELECT * FROM unnest($1::bigint[], $2::text[], $3::uuid[]) AS t(asset_id, partition_key, step_id)
		ORDER BY t.asset_id, t.partition_key COLLATE "C"
		ON CONFLICT (asset_id, partition_key) DO UPDATE SET step_id = inflight_partitions.step_id`,
		ipAssets, ipKeys, ipSteps)
	// Where the holder of a partition is another step, the new step joins it
	// (every holder of any of its partitions), waits on the holder of its first
	// held partition, and gives back the partitions it took: all or none.
	b.Queue(`WITH held AS (
			SELECT t.step_id, ip.step_id AS holder, t.n
			FROM unnest($1::bigint[], $2::text[], $3::uuid[]) WITH ORDINALITY AS t(asset_id, partition_key, step_id, n),
			LATERAL (SELECT ip.step_id FROM inflight_partitions ip
			         WHERE ip.asset_id = t.asset_id AND ip.partition_key = t.partition_key OFFSET 0) ip
			WHERE ip.step_id <> t.step_id),
		joins AS (
			INSERT INTO step_deps (step_id, upstream_step_id, kind)
			SELECT DISTINCT step_id, holder, 'join' FROM held
			RETURNING step_id, upstream_step_id),
		waits AS (
			UPDATE steps s SET waits_on_step_id = f.holder
			FROM (SELECT DISTINCT ON (step_id) step_id, holder FROM held ORDER BY step_id, n) f
			WHERE s.id = f.step_id),
		given_back AS (
			DELETE FROM inflight_partitions ip
			USING (SELECT DISTINCT step_id FROM held) h WHERE ip.step_id = h.step_id)
		SELECT step_id, upstream_step_id FROM joins ORDER BY step_id, upstream_step_id`,
		ipAssets, ipKeys, ipSteps)
	// In a new run every dependency is on a step not done: run deps on steps of
	// the run, join deps on steps holding partitions (a step releases them when it
	// ends). So the steps without any are ready.
	b.Queue(`UPDATE steps s SET status = 'READY', ready_at = now()
		WHERE s.run_id = $1 AND NOT EXISTS (SELECT 1 FROM step_deps d WHERE d.step_id = s.id)
		RETURNING s.id`, runID)
	if n > 0 {
		b.Queue(notifySQL+` WHERE EXISTS (SELECT 1 FROM steps WHERE run_id = $1 AND status = 'READY')`, runID)
	} else {
		// A run of no steps has nothing to wait for.
		b.Queue(`UPDATE runs SET status = 'SUCCEEDED', finished_at = now() WHERE id = $1`, runID)
	}

	run := &store.Run{
		ID: runID, Status: store.RunQueued, Trigger: nr.Trigger, Selection: nr.Selection, From: nr.From, To: nr.To,
		Force: nr.Force, MaxParallel: nr.MaxParallel, BackfillID: nr.BackfillID, ScheduleName: nr.ScheduleName,
		ParentRunID: nr.ParentRunID, PlannedSeq: nr.PlannedSeq,
		Counts: map[store.StepStatus]int{}, Partitions: map[store.StepStatus]int{},
	}
	joined := map[uuid.UUID][]uuid.UUID{}
	ready := map[uuid.UUID]bool{}
	err = tx.commitWith(ctx, b, func(results pgx.BatchResults) error {
		for range nBefore {
			if _, err := results.Exec(); err != nil {
				return err
			}
		}
		if err := results.QueryRow().Scan(&run.CreatedAt); err != nil {
			return fmt.Errorf("insert the run: %w", err)
		}
		for _, what := range []string{"insert the steps", "insert the steps' dependencies", "lock the holders of the partitions", "take the partitions"} {
			if _, err := results.Exec(); err != nil {
				return fmt.Errorf("%s: %w", what, err)
			}
		}
		rows, _ := results.Query()
		var step, holder uuid.UUID
		_, err := pgx.ForEachRow(rows, []any{&step, &holder}, func() error {
			joined[step] = append(joined[step], holder)
			return nil
		})
		if err != nil {
			return fmt.Errorf("join the steps holding partitions: %w", err)
		}
		rows, _ = results.Query()
		_, err = pgx.ForEachRow(rows, []any{&step}, func() error {
			ready[step] = true
			return nil
		})
		if err != nil {
			return fmt.Errorf("mark steps ready: %w", err)
		}
		_, err = results.Exec()
		return err
	})
	if err != nil {
		return nil, err
	}
	run.CreatedAt = run.CreatedAt.UTC()
	if n == 0 {
		run.Status, run.FinishedAt = store.RunSucceeded, run.CreatedAt
	}
	run.Steps = make([]store.Step, n)
	for i, st := range nr.Steps {
		step := store.Step{
			ID: ids[i], RunID: runID, Asset: st.Asset, Partitions: slices.Clone(st.Partitions), Ordinal: i,
			Status: store.StepPending, MaxAttempts: st.MaxAttempts, Deps: emptyIfNil(deps[i]),
			Joined: emptyIfNil(joined[ids[i]]), CreatedAt: run.CreatedAt,
		}
		if ready[ids[i]] {
			step.Status, step.ReadyAt = store.StepReady, run.CreatedAt
		}
		run.Counts[step.Status]++
		run.Partitions[step.Status] += len(st.Partitions)
		run.Steps[i] = step
	}
	return run, nil
}

// validateRun checks a new run against the assets its steps name, naming the
// first bad step by index, asset and partition.
func validateRun(nr *store.NewRun, known map[assets.Key]runAsset) error {
	type key struct {
		asset     assets.Key
		partition string
	}
	taken := map[key]int{}
	ids := map[uuid.UUID]int{}
	for i, st := range nr.Steps {
		bad := func(format string, args ...any) error {
			return fmt.Errorf("step %d (%s %s): %s", i, st.Asset, partitionsText(st.Partitions), fmt.Sprintf(format, args...))
		}
		if st.ID != uuid.Nil {
			if j, dup := ids[st.ID]; dup {
				return bad("id %s is also step %d's", st.ID, j)
			}
			ids[st.ID] = i
		}
		a, ok := known[st.Asset]
		switch {
		case !ok:
			return bad("no such asset in the catalog (are the definitions synced?)")
		case a.removed:
			return bad("the asset was removed from the definitions")
		case a.isSource:
			return bad("%s is a source asset: Freshet does not build it", st.Asset)
		case len(st.Partitions) == 0:
			return bad("no partitions ([\"\"] for an unpartitioned asset)")
		case st.MaxAttempts < 1:
			return bad("max attempts is %d; at least 1", st.MaxAttempts)
		}
		for _, d := range st.Deps {
			if d < 0 || d >= i {
				return bad("dependency on step %d: a step depends on earlier steps only", d)
			}
		}
		for _, p := range st.Partitions {
			if !isStorableText(p) {
				return bad("partition %q contains a NUL byte or is not valid UTF-8", p)
			}
			k := key{st.Asset, p}
			if j, dup := taken[k]; dup {
				if j == i {
					return bad("partition %s is twice in the step", p)
				}
				return bad("partition %s is also built by step %d", p, j)
			}
			taken[k] = i
		}
		if problem := store.StepPartitionsProblem(st.Asset, a.partitions, st.Partitions); problem != "" {
			return bad("%s", problem)
		}
	}
	return nil
}

// GetRun returns a run with its step and partition counts.
func (s *Store) GetRun(ctx context.Context, id uuid.UUID) (*store.Run, error) {
	var run store.Run
	b := txBatch(readTx)
	b.Queue(`SELECT `+runColumns+runFrom+`WHERE r.id = $1`, id)
	err := s.batchTx(ctx, b, func(results pgx.BatchResults) error {
		var err error
		run, err = scanRun(results.QueryRow())
		return err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("run %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read run %s: %w", id, err)
	}
	return &run, nil
}

// RunSteps returns a run's steps in plan order.
func (s *Store) RunSteps(ctx context.Context, runID uuid.UUID) ([]store.Step, error) {
	var (
		steps  []store.Step
		exists bool
	)
	b := txBatch(readTx)
	b.Queue(`SELECT EXISTS (SELECT 1 FROM runs WHERE id = $1)`, runID)
	b.Queue(`SELECT `+stepColumns+stepFrom+`WHERE s.run_id = $1 ORDER BY s.ordinal`, runID)
	err := s.batchTx(ctx, b, func(results pgx.BatchResults) error {
		if err := results.QueryRow().Scan(&exists); err != nil {
			return err
		}
		rows, _ := results.Query()
		var err error
		steps, err = scanSteps(rows)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read steps of run %s: %w", runID, err)
	}
	if !exists {
		return nil, fmt.Errorf("steps of run %s: run %w", runID, store.ErrNotFound)
	}
	return steps, nil
}

// GetStep returns one step.
func (s *Store) GetStep(ctx context.Context, id uuid.UUID) (*store.Step, error) {
	step, err := scanStep(s.pool.QueryRow(ctx, `SELECT `+stepColumns+stepFrom+`WHERE s.id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("step %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read step %s: %w", id, err)
	}
	return &step, nil
}

// attemptColumns are the columns scanAttempts reads, of attempts.
const attemptColumns = `step_id, attempt, worker, input_seq, started_at, finished_at, status, exit_code, coalesce(error, '')`

// scanAttempts reads rows of attemptColumns, handing each attempt to add.
func scanAttempts(rows pgx.Rows, add func(store.Attempt)) error {
	var (
		a        store.Attempt
		attempt  int32
		finished pgtype.Timestamptz
		status   string
		exit     pgtype.Int4
	)
	_, err := pgx.ForEachRow(rows, []any{&a.StepID, &attempt, &a.Worker, &a.InputSeq, &a.StartedAt, &finished, &status, &exit, &a.Error},
		func() error {
			a.Attempt, a.Status = int(attempt), store.AttemptStatus(status)
			a.StartedAt, a.FinishedAt = a.StartedAt.UTC(), timeOf(finished)
			a.ExitCode = nil
			if exit.Valid {
				code := int(exit.Int32)
				a.ExitCode = &code
			}
			add(a)
			return nil
		})
	return err
}

// Attempts returns a step's attempts, first first.
func (s *Store) Attempts(ctx context.Context, stepID uuid.UUID) ([]store.Attempt, error) {
	var (
		out    = []store.Attempt{}
		exists bool
	)
	b := txBatch(readTx)
	b.Queue(`SELECT EXISTS (SELECT 1 FROM steps WHERE id = $1)`, stepID)
	b.Queue(`SELECT `+attemptColumns+` FROM attempts WHERE step_id = $1 ORDER BY attempt`, stepID)
	err := s.batchTx(ctx, b, func(results pgx.BatchResults) error {
		if err := results.QueryRow().Scan(&exists); err != nil {
			return err
		}
		rows, _ := results.Query()
		return scanAttempts(rows, func(a store.Attempt) { out = append(out, a) })
	})
	if err != nil {
		return nil, fmt.Errorf("read attempts of step %s: %w", stepID, err)
	}
	if !exists {
		return nil, fmt.Errorf("attempts of step %s: step %w", stepID, store.ErrNotFound)
	}
	return out, nil
}

// Run page sizes.
const (
	defaultRunLimit = 50
	maxRunLimit     = 1_000
)

// ListRuns returns a page of runs, newest first, paged by (created_at, id).
func (s *Store) ListRuns(ctx context.Context, q store.RunQuery) (*store.RunPage, error) {
	limit := q.Limit
	switch {
	case limit <= 0:
		limit = defaultRunLimit
	case limit > maxRunLimit:
		limit = maxRunLimit
	}
	var (
		where []string
		args  []any
	)
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if len(q.Statuses) > 0 {
		statuses := make([]string, len(q.Statuses))
		for i, st := range q.Statuses {
			statuses[i] = string(st)
		}
		where = append(where, "r.status = ANY("+arg(statuses)+"::text[])")
	}
	if q.Asset != "" {
		where = append(where, "EXISTS (SELECT 1 FROM steps s JOIN assets a ON a.id = s.asset_id WHERE s.run_id = r.id AND a.key = "+
			arg(string(q.Asset))+")")
	}
	if q.BackfillID != uuid.Nil {
		where = append(where, "r.backfill_id = "+arg(q.BackfillID))
	}
	if q.Before != uuid.Nil {
		where = append(where, "(r.created_at, r.id) < (SELECT b.created_at, b.id FROM runs b WHERE b.id = "+arg(q.Before)+")")
	}
	sql := `SELECT ` + runColumns + runFrom
	if len(where) > 0 {
		sql += "WHERE " + strings.Join(where, " AND ")
	}
	// One more than the page: whether it exists says if there is a next page.
	sql += " ORDER BY r.created_at DESC, r.id DESC LIMIT " + arg(limit+1)
	page := &store.RunPage{Runs: []store.Run{}}
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		r, err := scanRun(rows)
		if err != nil {
			return nil, fmt.Errorf("list runs: %w", err)
		}
		page.Runs = append(page.Runs, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	if len(page.Runs) > limit {
		page.Runs = page.Runs[:limit]
		page.Next = page.Runs[limit-1].ID
	}
	return page, nil
}
