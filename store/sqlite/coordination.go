package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/freshetdev/freshet/assets"
	"github.com/freshetdev/freshet/store"
)

// Coordination (store.Coordination) on SQLite: the leases, schedule_ticks and
// freshness_events tables of migration 00002. Every write is one transaction on
// the writer connection, so a lease is decided, and a tick recorded, by one
// writer at a time; leases are judged on the store's clock (time.Now, or
// WithClock), which is the process's: a SQLite store serves one process.
var _ store.Coordination = (*Store)(nil)

// leaseColumns are the columns scanLease reads, of leases.
const leaseColumns = `name, holder, acquired_at, renewed_at, expires_at`

// scanLease reads one row of leaseColumns; Held says whether the lease is in
// force at now (µs).
func scanLease(row scanner, now int64) (store.LeaseInfo, error) {
	var (
		l                          store.LeaseInfo
		acquired, renewed, expires int64
	)
	if err := row.Scan(&l.Name, &l.Holder, &acquired, &renewed, &expires); err != nil {
		return l, err
	}
	l.AcquiredAt, l.RenewedAt, l.ExpiresAt = fromMicros(acquired), fromMicros(renewed), fromMicros(expires)
	l.Held = expires > now
	return l, nil
}

// AcquireLease takes or renews the lease name for holder until now+ttl, on the
// store's clock, in one write transaction.
func (s *Store) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (store.LeaseInfo, error) {
	us, err := store.CheckLease(name, holder, ttl)
	if err != nil {
		return store.LeaseInfo{}, fmt.Errorf("acquire lease: %w", err)
	}
	var l store.LeaseInfo
	err = s.inWriteTx(ctx, func(tx *sql.Tx) error {
		now := micros(s.now())
		cur, err := scanLease(tx.QueryRowContext(ctx, `SELECT `+leaseColumns+` FROM leases WHERE name = ?`, name), now)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			_, err = tx.ExecContext(ctx, `INSERT INTO leases (name, holder, acquired_at, renewed_at, expires_at)
				VALUES (?, ?, ?, ?, ?)`, name, holder, now, now, now+us)
			if err != nil {
				return err
			}
			l = store.LeaseInfo{Name: name, Holder: holder, AcquiredAt: fromMicros(now), RenewedAt: fromMicros(now),
				ExpiresAt: fromMicros(now + us), Held: true}
			return nil
		case err != nil:
			return err
		case cur.Held && cur.Holder != holder:
			l = cur
			l.Held = false
			return nil
		}
		// Free (lapsed or released), or the holder's own: a renewal keeps when it
		// was acquired, a takeover starts anew.
		acquired := now
		if cur.Held {
			acquired = micros(cur.AcquiredAt)
		}
		_, err = tx.ExecContext(ctx, `UPDATE leases SET holder = ?, acquired_at = ?, renewed_at = ?, expires_at = ?
			WHERE name = ?`, holder, acquired, now, now+us, name)
		if err != nil {
			return err
		}
		l = store.LeaseInfo{Name: name, Holder: holder, AcquiredAt: fromMicros(acquired), RenewedAt: fromMicros(now),
			ExpiresAt: fromMicros(now + us), Held: true}
		return nil
	})
	if err != nil {
		return store.LeaseInfo{}, fmt.Errorf("acquire lease %s for %s: %w", name, holder, err)
	}
	return l, nil
}

// ReleaseLease ends holder's lease now, when it holds it; the row keeps its last
// holder.
func (s *Store) ReleaseLease(ctx context.Context, name, holder string) error {
	if err := store.CheckName("lease name", name); err != nil {
		return fmt.Errorf("release lease: %w", err)
	}
	if err := store.CheckName("holder", holder); err != nil {
		return fmt.Errorf("release lease %s: %w", name, err)
	}
	err := s.inWriteTx(ctx, func(tx *sql.Tx) error {
		now := micros(s.now())
		_, err := tx.ExecContext(ctx, `UPDATE leases SET expires_at = ? WHERE name = ? AND holder = ? AND expires_at > ?`,
			now, name, holder, now)
		return err
	})
	if err != nil {
		return fmt.Errorf("release lease %s of %s: %w", name, holder, err)
	}
	return nil
}

// GetLease returns the lease name; Held says whether its holder still holds it.
func (s *Store) GetLease(ctx context.Context, name string) (*store.LeaseInfo, error) {
	l, err := scanLease(s.read.QueryRowContext(ctx, `SELECT `+leaseColumns+` FROM leases WHERE name = ?`, name), micros(s.now()))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("lease %s: %w", name, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read lease %s: %w", name, err)
	}
	return &l, nil
}

// tickColumns are the columns scanTick reads, of schedule_ticks.
const tickColumns = `schedule, tick_at, status, run_id, reason, created_at`

func scanTick(row scanner) (store.Tick, error) {
	var (
		t             store.Tick
		at, created   int64
		status        string
		runID, reason sql.NullString
	)
	if err := row.Scan(&t.Schedule, &at, &status, &runID, &reason, &created); err != nil {
		return t, err
	}
	var err error
	if t.RunID, err = parseNullUUID(runID); err != nil {
		return t, fmt.Errorf("tick of schedule %s: run id: %w", t.Schedule, err)
	}
	t.At, t.CreatedAt = fromMicros(at), fromMicros(created)
	t.Status, t.Reason = store.TickStatus(status), reason.String
	return t, nil
}

// checkTickRun returns store.ErrNotFound (wrapped) when t names a run that is not
// recorded (the foreign key would only say that some constraint failed).
func checkTickRun(ctx context.Context, tx *sql.Tx, t store.Tick) error {
	if t.RunID == uuid.Nil {
		return nil
	}
	var exists bool
	if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM runs WHERE id = ?)`, t.RunID.String()).Scan(&exists); err != nil {
		return err
	}
	if !exists {
		return fmt.Errorf("run %s: %w", t.RunID, store.ErrNotFound)
	}
	return nil
}

// RecordTick records the tick unless it is already recorded.
func (s *Store) RecordTick(ctx context.Context, t store.Tick) (bool, error) {
	t, err := store.PrepareTick(t)
	if err != nil {
		return false, fmt.Errorf("record tick: %w", err)
	}
	var added bool
	err = s.inWriteTx(ctx, func(tx *sql.Tx) error {
		if err := checkTickRun(ctx, tx, t); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO schedule_ticks (schedule, tick_at, status, run_id, reason, created_at)
			VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (schedule, tick_at) DO NOTHING`,
			t.Schedule, micros(t.At), string(t.Status), nullUUID(t.RunID), nullString(t.Reason), micros(s.now()))
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		added = n == 1
		return err
	})
	if err != nil {
		return false, fmt.Errorf("record %s: %w", store.TickText(t), err)
	}
	return added, nil
}

// UpdateTick sets a recorded tick's status, run and reason.
func (s *Store) UpdateTick(ctx context.Context, t store.Tick) error {
	t, err := store.PrepareTick(t)
	if err != nil {
		return fmt.Errorf("update tick: %w", err)
	}
	err = s.inWriteTx(ctx, func(tx *sql.Tx) error {
		if err := checkTickRun(ctx, tx, t); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `UPDATE schedule_ticks SET status = ?, run_id = ?, reason = ?
			WHERE schedule = ? AND tick_at = ?`,
			string(t.Status), nullUUID(t.RunID), nullString(t.Reason), t.Schedule, micros(t.At))
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return errors.Join(err, store.ErrNotFound)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("update %s: %w", store.TickText(t), err)
	}
	return nil
}

// LastTicks returns each schedule's newest tick. (SQLite takes the other columns
// of a max() aggregate from the row holding the maximum.)
func (s *Store) LastTicks(ctx context.Context) (map[string]store.Tick, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT schedule, max(tick_at), status, run_id, reason, created_at
		FROM schedule_ticks GROUP BY schedule`)
	if err != nil {
		return nil, fmt.Errorf("read last ticks: %w", err)
	}
	out := map[string]store.Tick{}
	if err := eachRow(rows, scanTick, func(t store.Tick) { out[t.Schedule] = t }); err != nil {
		return nil, fmt.Errorf("read last ticks: %w", err)
	}
	return out, nil
}

// Ticks lists one schedule's ticks, newest first.
func (s *Store) Ticks(ctx context.Context, schedule string, limit int) ([]store.Tick, error) {
	if err := store.CheckName("schedule name", schedule); err != nil {
		return nil, fmt.Errorf("read ticks: %w", err)
	}
	rows, err := s.read.QueryContext(ctx, `SELECT `+tickColumns+` FROM schedule_ticks WHERE schedule = ?
		ORDER BY tick_at DESC LIMIT ?`, schedule, store.TickLimit(limit))
	if err != nil {
		return nil, fmt.Errorf("read ticks of schedule %s: %w", schedule, err)
	}
	out := []store.Tick{}
	if err := eachRow(rows, scanTick, func(t store.Tick) { out = append(out, t) }); err != nil {
		return nil, fmt.Errorf("read ticks of schedule %s: %w", schedule, err)
	}
	return out, nil
}

// freshnessColumns are the columns scanFreshness reads, of freshness_events f
// joined with assets a.
const freshnessColumns = `f.id, a.key, f.at, f.status, f.previous, f.lag_seconds, f.reason, f.notified_at`

func scanFreshness(row scanner) (store.FreshnessChange, error) {
	var (
		c        store.FreshnessChange
		key      string
		at       int64
		previous sql.NullString
		lag      sql.NullFloat64
		notified sql.NullInt64
	)
	if err := row.Scan(&c.ID, &key, &at, &c.Status, &previous, &lag, &c.Reason, &notified); err != nil {
		return c, err
	}
	c.Asset, c.At, c.Previous, c.NotifiedAt = assets.Key(key), fromMicros(at), previous.String, nullTime(notified)
	if lag.Valid {
		c.LagSeconds = &lag.Float64
	}
	return c, nil
}

// RecordFreshness appends changes in one write transaction.
func (s *Store) RecordFreshness(ctx context.Context, changes []store.FreshnessChange) ([]store.FreshnessChange, error) {
	prepared, err := store.PrepareFreshness(changes, s.now())
	if err != nil {
		return nil, err
	}
	if len(prepared) == 0 {
		return prepared, nil
	}
	err = s.inWriteTx(ctx, func(tx *sql.Tx) error {
		ids := map[assets.Key]int64{}
		rows, err := tx.QueryContext(ctx, `SELECT key, id FROM assets WHERE key IN (SELECT value FROM json_each(?))`,
			jsonArray(store.FreshnessAssets(prepared)))
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				key string
				id  int64
			)
			if err := rows.Scan(&key, &id); err != nil {
				return err
			}
			ids[assets.Key(key)] = id
		}
		if err := rows.Err(); err != nil {
			return err
		}
		if err := store.UnknownAssetsError(prepared, func(k assets.Key) bool { _, ok := ids[k]; return ok }); err != nil {
			return err
		}
		insert, err := tx.PrepareContext(ctx, `INSERT INTO freshness_events
			(asset_id, at, status, previous, lag_seconds, reason, notified_at) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id`)
		if err != nil {
			return err
		}
		defer insert.Close()
		for i := range prepared {
			c := &prepared[i]
			var lag any
			if c.LagSeconds != nil {
				lag = *c.LagSeconds
			}
			err := insert.QueryRowContext(ctx, ids[c.Asset], micros(c.At), c.Status, nullString(c.Previous), lag, c.Reason,
				nullMicros(c.NotifiedAt)).Scan(&c.ID)
			if err != nil {
				return fmt.Errorf("change %d (asset %s): %w", i+1, c.Asset, err)
			}
		}
		return nil
	})
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, err // names the unknown assets already
		}
		return nil, fmt.Errorf("record freshness: %w", err)
	}
	return prepared, nil
}

// LatestFreshness returns each asset's newest change: one descent of the index
// on (asset_id, at) per asset.
func (s *Store) LatestFreshness(ctx context.Context) (map[assets.Key]store.FreshnessChange, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT `+freshnessColumns+` FROM assets a
		JOIN freshness_events f ON f.id = (SELECT e.id FROM freshness_events e WHERE e.asset_id = a.id
			ORDER BY e.at DESC, e.id DESC LIMIT 1)`)
	if err != nil {
		return nil, fmt.Errorf("read latest freshness: %w", err)
	}
	out := map[assets.Key]store.FreshnessChange{}
	if err := eachRow(rows, scanFreshness, func(c store.FreshnessChange) { out[c.Asset] = c }); err != nil {
		return nil, fmt.Errorf("read latest freshness: %w", err)
	}
	return out, nil
}

// FreshnessEvents lists changes, newest first (by time, then id). An unknown
// asset has none.
func (s *Store) FreshnessEvents(ctx context.Context, q store.FreshnessQuery) ([]store.FreshnessChange, error) {
	out := []store.FreshnessChange{}
	err := s.inReadTx(ctx, func(tx *sql.Tx) error {
		var (
			where []string
			args  []any
		)
		if q.Asset != "" {
			id, err := lookupAssetID(ctx, tx, q.Asset)
			if errors.Is(err, store.ErrNotFound) {
				return nil
			}
			if err != nil {
				return err
			}
			where, args = append(where, `f.asset_id = ?`), append(args, id)
		}
		if !q.Since.IsZero() {
			where, args = append(where, `f.at >= ?`), append(args, micros(q.Since))
		}
		query := `SELECT ` + freshnessColumns + ` FROM freshness_events f JOIN assets a ON a.id = f.asset_id`
		if len(where) > 0 {
			query += ` WHERE ` + strings.Join(where, ` AND `)
		}
		query += ` ORDER BY f.at DESC, f.id DESC LIMIT ?`
		rows, err := tx.QueryContext(ctx, query, append(args, store.FreshnessLimit(q.Limit))...)
		if err != nil {
			return err
		}
		return eachRow(rows, scanFreshness, func(c store.FreshnessChange) { out = append(out, c) })
	})
	if err != nil {
		return nil, fmt.Errorf("read freshness events: %w", err)
	}
	return out, nil
}

// MarkNotified sets the notified time of changes ids, all or none: an id of no
// change is an error naming it, and nothing is marked.
func (s *Store) MarkNotified(ctx context.Context, ids []int64, at time.Time) error {
	ids = store.UniqueIDs(ids)
	if len(ids) == 0 {
		return nil
	}
	if at.IsZero() {
		at = s.now()
	}
	list := jsonArray(ids)
	err := s.inWriteTx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT id FROM freshness_events WHERE id IN (SELECT value FROM json_each(?))`, list)
		if err != nil {
			return err
		}
		defer rows.Close()
		found := map[int64]bool{}
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				return err
			}
			found[id] = true
		}
		if err := rows.Err(); err != nil {
			return err
		}
		if err := store.UnknownIDsError(ids, found); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE freshness_events SET notified_at = ? WHERE id IN (SELECT value FROM json_each(?))`,
			micros(at), list)
		return err
	})
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return err
		}
		return fmt.Errorf("mark notified: %w", err)
	}
	return nil
}
