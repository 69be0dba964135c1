package sqlite

import (
	"context"
	"fmt"
	"maps"

	"github.com/freshetdev/freshet/store"
)

// FinishSteps records the ends of several attempts in one write transaction:
// each report is recorded by FinishStep's own code (writeTx.record) in a
// savepoint of its own, so that one refused report (lease lost, bad events, …)
// is rolled back alone while the others commit; then next, if set, is claimed in
// the same transaction. One transaction is one commit: a worker reporting many
// steps at once pays for one WAL write instead of one per step.
//
// A report's error is its own (at its index in Errors) when its savepoint
// could be rolled back; an error of the transaction itself (the savepoint could
// not be rolled back, SQLite aborted the transaction, ctx ended) fails the call,
// and then nothing was written.
func (s *Store) FinishSteps(ctx context.Context, results []store.StepResult, next *store.ClaimRequest) (*store.FinishedSteps, error) {
	if next != nil {
		if err := checkClaimRequest(*next); err != nil {
			return nil, fmt.Errorf("finish steps: %w", err)
		}
	}
	reports := make([]*report, len(results))
	errs := make([]error, len(results))
	pending := 0
	for i, res := range results {
		r, err := checkReport(res)
		if err != nil {
			errs[i] = fmt.Errorf("finish step %s: %w", res.StepID, err)
			continue
		}
		reports[i] = r
		pending++
	}
	out := &store.FinishedSteps{
		Results: make([]*store.FinishResult, len(results)),
		Errors:  errs,
		Claimed: []store.ClaimedStep{},
	}
	claim := next != nil && next.Limit > 0
	if pending == 0 && !claim {
		return out, nil
	}
	var wake bool
	err := s.withWriteTx(ctx, func(w *writeTx) error {
		now := s.now()
		for i, r := range reports {
			if r == nil {
				continue
			}
			var f *finishing
			refused, err := w.savepoint(ctx, func() error {
				var err error
				if f, err = w.record(ctx, r, now); err != nil {
					return err
				}
				out.Results[i], err = f.describe(ctx)
				return err
			})
			if err != nil {
				return fmt.Errorf("step %s: %w", r.res.StepID, err)
			}
			if refused != nil {
				out.Results[i] = nil
				out.Errors[i] = fmt.Errorf("finish step %s: %w", r.res.StepID, refused)
				continue
			}
			wake = wake || f.q.wake
		}
		if claim {
			claimed, err := w.claim(ctx, *next, now)
			if err != nil {
				return err
			}
			if claimed != nil {
				out.Claimed = claimed
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("finish steps: %w", err)
	}
	if wake {
		s.notify()
	}
	return out, nil
}

// The statements of a report's savepoint.
const (
	savepointSQL         = `SAVEPOINT report`
	releaseSavepointSQL  = `RELEASE report`
	rollbackSavepointSQL = `ROLLBACK TO report`
)

// savepoint runs fn in a savepoint of w. When fn fails, what it wrote is rolled
// back (with the ids it interned, which are then no longer cached at commit) and
// its error returned as refused, the transaction going on. err is an error of
// the transaction itself, after which it must be rolled back: the savepoint
// could not be made, released or rolled back (SQLite rolls back the whole
// transaction on some failures, such as a full disk), or ctx ended.
func (w *writeTx) savepoint(ctx context.Context, fn func() error) (refused, err error) {
	if _, err := w.ExecContext(ctx, savepointSQL); err != nil {
		return nil, fmt.Errorf("begin savepoint: %w", err)
	}
	interned := maps.Clone(w.interned)
	if ferr := fn(); ferr != nil {
		if ctx.Err() != nil {
			return nil, ferr
		}
		if _, err := w.ExecContext(ctx, rollbackSavepointSQL); err != nil {
			return nil, fmt.Errorf("roll back savepoint: %w (after: %w)", err, ferr)
		}
		if _, err := w.ExecContext(ctx, releaseSavepointSQL); err != nil {
			return nil, fmt.Errorf("release savepoint: %w (after: %w)", err, ferr)
		}
		w.interned = interned
		return ferr, nil
	}
	if _, err := w.ExecContext(ctx, releaseSavepointSQL); err != nil {
		return nil, fmt.Errorf("release savepoint: %w", err)
	}
	return nil, nil
}
