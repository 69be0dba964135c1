package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/freshetdev/freshet/assets"
	"github.com/freshetdev/freshet/store"
)

// CreateRun records a run and its steps in one transaction.
func (s *Store) CreateRun(ctx context.Context, nr store.NewRun) (*store.Run, error) {
	var run *store.Run
	err := s.withWriteTx(ctx, func(w *writeTx) error {
		var err error
		run, err = w.createRun(ctx, nr, s.now())
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("create run: %w", err)
	}
	if run.Counts[store.StepReady] > 0 {
		s.notify()
	}
	return run, nil
}

// The statements CreateRun writes a run with. Steps, in-flight rows and deps go
// in multi-row INSERTs, as Append writes events.
const (
	insertRunSQL = `INSERT INTO runs (id, status, trigger, selection, from_day, to_day, force, max_parallel,
		backfill_id, schedule_name, parent_run_id, planned_seq, created_at, finished_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	insertStepHead = `INSERT INTO steps (id, run_id, asset_id, partition_first, partition_last, partition_count,
		partition_keys, ordinal, status, max_attempts, created_at, ready_at) VALUES `
	insertStepWidth     = 12
	insertInflightHead  = `INSERT INTO inflight_partitions (asset_id, partition_key, step_id) VALUES `
	insertInflightWidth = 3
	insertInflightTail  = ` ON CONFLICT DO NOTHING`
	insertDepHead       = `INSERT INTO step_deps (step_id, upstream_step_id, kind) VALUES `
	insertDepWidth      = 3
	// inflightHoldersSQL returns, for in-flight rows wanted ([asset id, key, step
	// id]), the steps holding them instead, in the order wanted.
	inflightHoldersSQL = `SELECT j.value->>'$[2]', i.step_id FROM json_each(?) j
		JOIN inflight_partitions i ON i.asset_id = j.value->>'$[0]' AND i.partition_key = j.value->>'$[1]'
		WHERE i.step_id <> j.value->>'$[2]' ORDER BY j.key`
	joinedAtCreateSQL = `UPDATE steps SET status = 'PENDING', ready_at = NULL, waits_on_step_id = ? WHERE id = ?`
)

var (
	insertStepSQL      = insertSQL(insertStepHead, insertStepWidth, 1, "")
	insertStepsSQL     = insertSQL(insertStepHead, insertStepWidth, batchRows, "")
	insertInflightSQL  = insertSQL(insertInflightHead, insertInflightWidth, 1, insertInflightTail)
	insertInflightsSQL = insertSQL(insertInflightHead, insertInflightWidth, batchRows, insertInflightTail)
	insertDepSQL       = insertSQL(insertDepHead, insertDepWidth, 1, "")
	insertDepsSQL      = insertSQL(insertDepHead, insertDepWidth, batchRows, "")
)

// runAsset is what CreateRun needs to know of a step's asset.
type runAsset struct {
	id                int64
	isSource, removed bool
	// partitions is the synced partitions definition; nil: unpartitioned.
	partitions *assets.Partitions
}

// createRun validates and records a run; nothing is written when it is invalid.
func (w *writeTx) createRun(ctx context.Context, nr store.NewRun, now time.Time) (*store.Run, error) {
	now = now.UTC().Truncate(time.Microsecond)
	nowUS := micros(now)
	if nr.ID == uuid.Nil {
		nr.ID = newID()
	}
	if nr.Trigger == "" {
		nr.Trigger = store.TriggerManual
	}
	if !slices.Contains(store.Triggers, nr.Trigger) {
		return nil, fmt.Errorf("run %s: unknown trigger %q (want one of %v)", nr.ID, nr.Trigger, store.Triggers)
	}
	// A cap of 0 or less is no cap: recorded as 0.
	nr.MaxParallel = max(nr.MaxParallel, 0)
	for _, ref := range []struct {
		what, table string
		id          uuid.UUID
	}{{"backfill", "backfills", nr.BackfillID}, {"parent run", "runs", nr.ParentRunID}} {
		if ref.id == uuid.Nil {
			continue
		}
		var exists bool
		if err := w.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM `+ref.table+` WHERE id = ?)`, ref.id.String()).Scan(&exists); err != nil {
			return nil, fmt.Errorf("look up %s %s: %w", ref.what, ref.id, err)
		}
		if !exists {
			return nil, fmt.Errorf("run %s: %s %s: %w", nr.ID, ref.what, ref.id, store.ErrNotFound)
		}
	}

	// Validate every step before writing anything.
	run := &store.Run{
		ID: nr.ID, Status: store.RunQueued, Trigger: nr.Trigger, Selection: nr.Selection, From: nr.From, To: nr.To,
		Force: nr.Force, MaxParallel: nr.MaxParallel, BackfillID: nr.BackfillID, ScheduleName: nr.ScheduleName,
		ParentRunID: nr.ParentRunID, PlannedSeq: nr.PlannedSeq, CreatedAt: now,
		Counts: map[store.StepStatus]int{}, Partitions: map[store.StepStatus]int{},
		Steps: make([]store.Step, len(nr.Steps)),
	}
	assetsByKey := make(map[assets.Key]runAsset)
	type stepPartition struct {
		asset     assets.Key
		partition string
	}
	owner := make(map[stepPartition]int)
	stepIDs := make(map[uuid.UUID]int, len(nr.Steps))
	assetIDs := make([]int64, len(nr.Steps))
	var deps [][3]string // [step id, upstream step id, kind]
	for i, ns := range nr.Steps {
		what := fmt.Sprintf("step %d (%s)", i, describePartitions(ns.Asset, ns.Partitions))
		a, ok := assetsByKey[ns.Asset]
		if !ok {
			var partitions sql.NullString
			err := w.QueryRowContext(ctx, `SELECT id, is_source, removed_seq IS NOT NULL, partitions FROM assets WHERE key = ?`, string(ns.Asset)).
				Scan(&a.id, &a.isSource, &a.removed, &partitions)
			switch {
			case errors.Is(err, sql.ErrNoRows):
				return nil, fmt.Errorf("%s: no such asset in the catalog (are the definitions synced?)", what)
			case err != nil:
				return nil, fmt.Errorf("%s: look up the asset: %w", what, err)
			}
			if partitions.Valid {
				if a.partitions, err = w.s.parsePartitions(partitions.String); err != nil {
					return nil, fmt.Errorf("%s: asset %s: %w", what, ns.Asset, err)
				}
			}
			assetsByKey[ns.Asset] = a
		}
		switch {
		case a.removed:
			return nil, fmt.Errorf("%s: the asset was removed from the definitions", what)
		case a.isSource:
			return nil, fmt.Errorf("%s: %s is a source asset: Freshet does not build it", what, ns.Asset)
		case len(ns.Partitions) == 0:
			return nil, fmt.Errorf("%s: no partitions ([\"\"] for an unpartitioned asset)", what)
		case ns.MaxAttempts < 1:
			return nil, fmt.Errorf("%s: max attempts %d; at least 1", what, ns.MaxAttempts)
		}
		for _, p := range ns.Partitions {
			key := stepPartition{ns.Asset, p}
			if j, dup := owner[key]; dup {
				return nil, fmt.Errorf("%s: partition %q of %s is already built by step %d of the run", what, p, ns.Asset, j)
			}
			owner[key] = i
		}
		if problem := store.StepPartitionsProblem(ns.Asset, a.partitions, ns.Partitions); problem != "" {
			return nil, fmt.Errorf("%s: %s", what, problem)
		}
		depIdx := slices.Clone(ns.Deps)
		slices.Sort(depIdx)
		depIdx = slices.Compact(depIdx)
		for _, d := range depIdx {
			if d < 0 || d >= i {
				return nil, fmt.Errorf("%s: dep %d is not an earlier step of the run (0..%d)", what, d, i-1)
			}
		}
		id := ns.ID
		if id == uuid.Nil {
			id = newID()
		}
		if j, dup := stepIDs[id]; dup {
			return nil, fmt.Errorf("%s: id %s is also step %d's", what, id, j)
		}
		stepIDs[id] = i

		st := &run.Steps[i]
		*st = store.Step{
			ID: id, RunID: nr.ID, Asset: ns.Asset, Partitions: slices.Clone(ns.Partitions), Ordinal: i,
			Status: store.StepReady, MaxAttempts: ns.MaxAttempts, CreatedAt: now, ReadyAt: now,
		}
		for _, d := range depIdx {
			up := run.Steps[d].ID
			st.Deps = append(st.Deps, up)
			deps = append(deps, [3]string{id.String(), up.String(), depRun})
		}
		if len(st.Deps) > 0 {
			st.Status, st.ReadyAt = store.StepPending, time.Time{}
		}
		assetIDs[i] = a.id
	}

	status, finishedAt := store.RunQueued, any(nil)
	if len(nr.Steps) == 0 {
		// Nothing to wait for: the run is over as soon as it exists.
		status, finishedAt = store.RunSucceeded, nowUS
		run.Status, run.FinishedAt = status, now
	}
	_, err := w.ExecContext(ctx, insertRunSQL, nr.ID.String(), string(status), string(nr.Trigger), nr.Selection,
		nullString(nr.From), nullString(nr.To), boolInt(nr.Force), nr.MaxParallel, nullUUID(nr.BackfillID),
		nullString(nr.ScheduleName), nullUUID(nr.ParentRunID), nr.PlannedSeq, nowUS, finishedAt)
	if err != nil {
		return nil, fmt.Errorf("record run %s: %w", nr.ID, err)
	}
	if len(nr.Steps) == 0 {
		return run, nil
	}
	if err := w.insertSteps(ctx, run, assetIDs); err != nil {
		return nil, fmt.Errorf("record steps of run %s: %w", nr.ID, err)
	}

	// Each step holds all its partitions or none (see store.Queue): one any of
	// whose partitions a step of another run holds gives back those it took and
	// joins every such holder instead, and waits for them.
	inflight := w.newBatch(insertInflightSQL, insertInflightsSQL, insertInflightWidth)
	wanted := 0
	for i := range run.Steps {
		st := &run.Steps[i]
		for _, p := range st.Partitions {
			if err := inflight.add(ctx, assetIDs[i], p, st.ID.String()); err != nil {
				return nil, fmt.Errorf("record in-flight partitions of run %s: %w", nr.ID, err)
			}
			wanted++
		}
	}
	if err := inflight.flush(ctx); err != nil {
		return nil, fmt.Errorf("record in-flight partitions of run %s: %w", nr.ID, err)
	}
	if inflight.affected < int64(wanted) {
		want := make([][3]any, 0, wanted)
		for i := range run.Steps {
			for _, p := range run.Steps[i].Partitions {
				want = append(want, [3]any{assetIDs[i], p, run.Steps[i].ID.String()})
			}
		}
		joins, err := w.holders(ctx, jsonArray(want))
		if err != nil {
			return nil, err
		}
		byStep := make(map[uuid.UUID]*store.Step, len(run.Steps))
		for i := range run.Steps {
			byStep[run.Steps[i].ID] = &run.Steps[i]
		}
		for _, j := range joins {
			st := byStep[j.step]
			for _, h := range j.holders {
				st.Joined = append(st.Joined, h)
				deps = append(deps, [3]string{j.step.String(), h.String(), depJoin})
			}
			if _, err := w.ExecContext(ctx, joinedAtCreateSQL, j.holders[0].String(), j.step.String()); err != nil {
				return nil, fmt.Errorf("record step %s joining step %s: %w", j.step, j.holders[0], err)
			}
			if _, err := w.ExecContext(ctx, releaseSQL, j.step.String()); err != nil {
				return nil, fmt.Errorf("give back the partitions of step %s: %w", j.step, err)
			}
			st.Status, st.ReadyAt = store.StepPending, time.Time{}
		}
	}
	batch := w.newBatch(insertDepSQL, insertDepsSQL, insertDepWidth)
	for _, d := range deps {
		if err := batch.add(ctx, d[0], d[1], d[2]); err != nil {
			return nil, fmt.Errorf("record step deps of run %s: %w", nr.ID, err)
		}
	}
	if err := batch.flush(ctx); err != nil {
		return nil, fmt.Errorf("record step deps of run %s: %w", nr.ID, err)
	}
	for i := range run.Steps {
		st := &run.Steps[i]
		run.Counts[st.Status]++
		run.Partitions[st.Status] += len(st.Partitions)
	}
	return run, nil
}

// insertSteps writes a new run's steps, as returned to the caller (a step that
// joins another is written READY or PENDING by its run deps, and made PENDING
// once its joins are known).
func (w *writeTx) insertSteps(ctx context.Context, run *store.Run, assetIDs []int64) error {
	batch := w.newBatch(insertStepSQL, insertStepsSQL, insertStepWidth)
	for i := range run.Steps {
		st := &run.Steps[i]
		keys, err := json.Marshal(st.Partitions)
		if err != nil {
			return err
		}
		err = batch.add(ctx, st.ID.String(), run.ID.String(), assetIDs[i], st.Partitions[0], st.Partitions[len(st.Partitions)-1],
			len(st.Partitions), string(keys), st.Ordinal, string(st.Status), st.MaxAttempts, micros(st.CreatedAt), nullMicros(st.ReadyAt))
		if err != nil {
			return err
		}
	}
	return batch.flush(ctx)
}

// newID returns a new run or step id. Version 7 uuids start with their creation
// time, so the ids of a run's steps land side by side in the primary key and
// dep indexes instead of all over them.
func newID() uuid.UUID {
	id, err := uuid.NewV7()
	if err != nil {
		return uuid.New()
	}
	return id
}

// stepHolders are the steps holding in-flight partitions a step wanted, in the
// order of its partitions (the first holder first).
type stepHolders struct {
	step    uuid.UUID
	holders []uuid.UUID
}

// holders finds, for wanted in-flight rows (a JSON array of [asset id, key, step
// id]), the other steps that hold them, per wanting step in the order wanted.
func (w *writeTx) holders(ctx context.Context, wanted string) ([]stepHolders, error) {
	rows, err := w.QueryContext(ctx, inflightHoldersSQL, wanted)
	if err != nil {
		return nil, fmt.Errorf("find in-flight holders: %w", err)
	}
	defer rows.Close()
	var out []stepHolders
	for rows.Next() {
		var stepID, holderID string
		if err := rows.Scan(&stepID, &holderID); err != nil {
			return nil, fmt.Errorf("find in-flight holders: %w", err)
		}
		step, err := uuid.Parse(stepID)
		if err != nil {
			return nil, fmt.Errorf("find in-flight holders: step id %q: %w", stepID, err)
		}
		holder, err := uuid.Parse(holderID)
		if err != nil {
			return nil, fmt.Errorf("find in-flight holders: step id %q: %w", holderID, err)
		}
		if len(out) == 0 || out[len(out)-1].step != step {
			out = append(out, stepHolders{step: step})
		}
		last := &out[len(out)-1]
		if !slices.Contains(last.holders, holder) {
			last.holders = append(last.holders, holder)
		}
	}
	return out, rows.Err()
}
