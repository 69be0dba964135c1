package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/freshetdev/freshet/assets"
	"github.com/freshetdev/freshet/store"
)

// Coordination (store.Coordination) in PostgreSQL: the leases, schedule_ticks and
// freshness_events tables of migration 00002. Leases are judged on the database's
// clock (now()), so that processes on machines whose clocks disagree still agree
// on who leads; each lease operation is one statement. A tick is recorded once
// by the primary key (schedule, tick_at), whichever process gets there first.
var _ store.Coordination = (*Store)(nil)

// leaseColumns are the columns scanLease reads, of leases; the last says whether
// the lease is in force on the database's clock.
const leaseColumns = `name, holder, acquired_at, renewed_at, expires_at, expires_at > now()`

func scanLease(row pgx.Row) (store.LeaseInfo, error) {
	var l store.LeaseInfo
	err := row.Scan(&l.Name, &l.Holder, &l.AcquiredAt, &l.RenewedAt, &l.ExpiresAt, &l.Held)
	l.AcquiredAt, l.RenewedAt, l.ExpiresAt = l.AcquiredAt.UTC(), l.RenewedAt.UTC(), l.ExpiresAt.UTC()
	return l, err
}

// acquireLeaseSQL takes the lease when it is new, lapsed (or released), or
// already the holder's: one statement, so two holders racing for it are
// serialized by the row (or, for a new lease, the primary key), and the second
// sees the first's lease and leaves it. A renewal keeps acquired_at; a takeover,
// even by the previous holder after its lease lapsed, starts a new one. It
// returns no row when another holds the lease.
const acquireLeaseSQL = `
	INSERT INTO leases AS l (name, holder, acquired_at, renewed_at, expires_at)
	VALUES ($1, $2, now(), now(), now() + $3::bigint * interval '1 microsecond')
	ON CONFLICT (name) DO UPDATE SET
		holder = EXCLUDED.holder,
		acquired_at = CASE WHEN l.holder = EXCLUDED.holder AND l.expires_at > now() THEN l.acquired_at ELSE now() END,
		renewed_at = EXCLUDED.renewed_at,
		expires_at = EXCLUDED.expires_at
	WHERE l.holder = EXCLUDED.holder OR l.expires_at <= now()
	RETURNING ` + leaseColumns

// AcquireLease takes or renews the lease name for holder until now()+ttl, on the
// database's clock.
func (s *Store) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (store.LeaseInfo, error) {
	us, err := store.CheckLease(name, holder, ttl)
	if err != nil {
		return store.LeaseInfo{}, fmt.Errorf("acquire lease: %w", err)
	}
	l, err := scanLease(s.pool.QueryRow(ctx, acquireLeaseSQL, name, holder, us))
	if err == nil {
		return l, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return store.LeaseInfo{}, fmt.Errorf("acquire lease %s for %s: %w", name, holder, err)
	}
	// Another holds it: read it as it stands (a statement of its own, so that it
	// sees the holder's lease even when it committed while the INSERT waited).
	l, err = scanLease(s.pool.QueryRow(ctx, `SELECT `+leaseColumns+` FROM leases WHERE name = $1`, name))
	if err != nil {
		return store.LeaseInfo{}, fmt.Errorf("acquire lease %s for %s: read the lease: %w", name, holder, err)
	}
	l.Held = l.Held && l.Holder == holder
	return l, nil
}

// ReleaseLease ends holder's lease now, when it holds it; the row stays, with its
// last holder, so that GetLease tells who led last.
func (s *Store) ReleaseLease(ctx context.Context, name, holder string) error {
	if err := store.CheckName("lease name", name); err != nil {
		return fmt.Errorf("release lease: %w", err)
	}
	if err := store.CheckName("holder", holder); err != nil {
		return fmt.Errorf("release lease %s: %w", name, err)
	}
	_, err := s.pool.Exec(ctx, `UPDATE leases SET expires_at = now() WHERE name = $1 AND holder = $2 AND expires_at > now()`,
		name, holder)
	if err != nil {
		return fmt.Errorf("release lease %s of %s: %w", name, holder, err)
	}
	return nil
}

// GetLease returns the lease name; Held says whether its holder still holds it.
func (s *Store) GetLease(ctx context.Context, name string) (*store.LeaseInfo, error) {
	l, err := scanLease(s.pool.QueryRow(ctx, `SELECT `+leaseColumns+` FROM leases WHERE name = $1`, name))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("lease %s: %w", name, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read lease %s: %w", name, err)
	}
	return &l, nil
}

// tickColumns are the columns scanTick reads, of schedule_ticks t.
const tickColumns = `t.schedule, t.tick_at, t.status, t.run_id, coalesce(t.reason, ''), t.created_at`

func scanTick(row pgx.Row) (store.Tick, error) {
	var (
		t      store.Tick
		status string
		runID  pgtype.UUID
	)
	if err := row.Scan(&t.Schedule, &t.At, &status, &runID, &t.Reason, &t.CreatedAt); err != nil {
		return t, err
	}
	t.Status, t.RunID = store.TickStatus(status), uuidOf(runID)
	t.At, t.CreatedAt = t.At.UTC(), t.CreatedAt.UTC()
	return t, nil
}

// nullRun is a tick's run as stored: NULL for none.
func nullRun(id uuid.UUID) any {
	if id == uuid.Nil {
		return nil
	}
	return id
}

// nullText stores "" as NULL.
func nullText(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// tickError explains a failed write of tick t: a run that does not exist is
// store.ErrNotFound.
func tickError(what string, t store.Tick, err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23503" {
		return fmt.Errorf("%s %s: run %s: %w", what, store.TickText(t), t.RunID, store.ErrNotFound)
	}
	return fmt.Errorf("%s %s: %w", what, store.TickText(t), err)
}

// RecordTick records the tick unless it is already recorded.
func (s *Store) RecordTick(ctx context.Context, t store.Tick) (bool, error) {
	t, err := store.PrepareTick(t)
	if err != nil {
		return false, fmt.Errorf("record tick: %w", err)
	}
	tag, err := s.pool.Exec(ctx, `
		INSERT INTO schedule_ticks (schedule, tick_at, status, run_id, reason, created_at)
		VALUES ($1, $2, $3, $4, $5, now())
		ON CONFLICT (schedule, tick_at) DO NOTHING`,
		t.Schedule, t.At, string(t.Status), nullRun(t.RunID), nullText(t.Reason))
	if err != nil {
		return false, tickError("record", t, err)
	}
	return tag.RowsAffected() == 1, nil
}

// UpdateTick sets a recorded tick's status, run and reason.
func (s *Store) UpdateTick(ctx context.Context, t store.Tick) error {
	t, err := store.PrepareTick(t)
	if err != nil {
		return fmt.Errorf("update tick: %w", err)
	}
	tag, err := s.pool.Exec(ctx, `UPDATE schedule_ticks SET status = $3, run_id = $4, reason = $5
		WHERE schedule = $1 AND tick_at = $2`,
		t.Schedule, t.At, string(t.Status), nullRun(t.RunID), nullText(t.Reason))
	if err != nil {
		return tickError("update", t, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("update %s: %w", store.TickText(t), store.ErrNotFound)
	}
	return nil
}

// LastTicks returns each schedule's newest tick: the schedules are found by
// skipping through the primary key's index, one descent each, then the newest
// tick of each by another, however many ticks the table holds.
func (s *Store) LastTicks(ctx context.Context) (map[string]store.Tick, error) {
	rows, err := s.pool.Query(ctx, `
		WITH RECURSIVE names (schedule) AS (
			(SELECT schedule FROM schedule_ticks ORDER BY schedule LIMIT 1)
			UNION ALL
			SELECT (SELECT t.schedule FROM schedule_ticks t WHERE t.schedule > n.schedule ORDER BY t.schedule LIMIT 1)
			FROM names n WHERE n.schedule IS NOT NULL
		)
		SELECT `+tickColumns+` FROM names n CROSS JOIN LATERAL (
			SELECT * FROM schedule_ticks t WHERE t.schedule = n.schedule ORDER BY t.tick_at DESC LIMIT 1) t`)
	if err != nil {
		return nil, fmt.Errorf("read last ticks: %w", err)
	}
	ticks, err := pgx.CollectRows(rows, collectTick)
	if err != nil {
		return nil, fmt.Errorf("read last ticks: %w", err)
	}
	out := make(map[string]store.Tick, len(ticks))
	for _, t := range ticks {
		out[t.Schedule] = t
	}
	return out, nil
}

// Ticks lists one schedule's ticks, newest first.
func (s *Store) Ticks(ctx context.Context, schedule string, limit int) ([]store.Tick, error) {
	if err := store.CheckName("schedule name", schedule); err != nil {
		return nil, fmt.Errorf("read ticks: %w", err)
	}
	rows, err := s.pool.Query(ctx, `SELECT `+tickColumns+` FROM schedule_ticks t WHERE t.schedule = $1
		ORDER BY t.tick_at DESC LIMIT $2`, schedule, store.TickLimit(limit))
	if err != nil {
		return nil, fmt.Errorf("read ticks of schedule %s: %w", schedule, err)
	}
	out, err := pgx.CollectRows(rows, collectTick)
	if err != nil {
		return nil, fmt.Errorf("read ticks of schedule %s: %w", schedule, err)
	}
	return out, nil
}

func collectTick(row pgx.CollectableRow) (store.Tick, error) { return scanTick(row) }

// freshnessColumns are the columns scanFreshness reads, of freshness_events f
// joined with assets a.
const freshnessColumns = `f.id, a.key, f.at, f.status, coalesce(f.previous, ''), f.lag_seconds, f.reason, f.notified_at`

func scanFreshness(row pgx.Row) (store.FreshnessChange, error) {
	var (
		c        store.FreshnessChange
		key      string
		lag      pgtype.Float8
		notified pgtype.Timestamptz
	)
	if err := row.Scan(&c.ID, &key, &c.At, &c.Status, &c.Previous, &lag, &c.Reason, &notified); err != nil {
		return c, err
	}
	c.Asset, c.At, c.NotifiedAt = assets.Key(key), c.At.UTC(), timeOf(notified)
	if lag.Valid {
		c.LagSeconds = &lag.Float64
	}
	return c, nil
}

func collectFreshness(row pgx.CollectableRow) (store.FreshnessChange, error) {
	return scanFreshness(row)
}

// RecordFreshness appends changes in one transaction: the assets are looked up
// first (they are never deleted, so what is found stays), then the rows are
// inserted in one pipelined batch, each returning its id.
func (s *Store) RecordFreshness(ctx context.Context, changes []store.FreshnessChange) ([]store.FreshnessChange, error) {
	prepared, err := store.PrepareFreshness(changes, s.now())
	if err != nil {
		return nil, err
	}
	if len(prepared) == 0 {
		return prepared, nil
	}
	ids := map[assets.Key]int64{}
	rows, err := s.pool.Query(ctx, `SELECT key, id FROM assets WHERE key = ANY($1::text[])`, store.FreshnessAssets(prepared))
	if err != nil {
		return nil, fmt.Errorf("record freshness: look up assets: %w", err)
	}
	var (
		key string
		id  int64
	)
	_, err = pgx.ForEachRow(rows, []any{&key, &id}, func() error {
		ids[assets.Key(key)] = id
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("record freshness: look up assets: %w", err)
	}
	if err := store.UnknownAssetsError(prepared, func(k assets.Key) bool { _, ok := ids[k]; return ok }); err != nil {
		return nil, err
	}
	b := txBatch(pgx.TxOptions{})
	for _, c := range prepared {
		var notified any
		if !c.NotifiedAt.IsZero() {
			notified = c.NotifiedAt
		}
		b.Queue(`INSERT INTO freshness_events (asset_id, at, status, previous, lag_seconds, reason, notified_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`,
			ids[c.Asset], c.At, c.Status, nullText(c.Previous), c.LagSeconds, c.Reason, notified)
	}
	err = s.batchTx(ctx, b, func(results pgx.BatchResults) error {
		for i := range prepared {
			if err := results.QueryRow().Scan(&prepared[i].ID); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("record freshness: %w", err)
	}
	return prepared, nil
}

// LatestFreshness returns each asset's newest change: one descent of the index
// on (asset_id, at) per asset that has any.
func (s *Store) LatestFreshness(ctx context.Context) (map[assets.Key]store.FreshnessChange, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT `+freshnessColumns+` FROM assets a CROSS JOIN LATERAL (
			SELECT * FROM freshness_events e WHERE e.asset_id = a.id ORDER BY e.at DESC, e.id DESC LIMIT 1) f`)
	if err != nil {
		return nil, fmt.Errorf("read latest freshness: %w", err)
	}
	changes, err := pgx.CollectRows(rows, collectFreshness)
	if err != nil {
		return nil, fmt.Errorf("read latest freshness: %w", err)
	}
	out := make(map[assets.Key]store.FreshnessChange, len(changes))
	for _, c := range changes {
		out[c.Asset] = c
	}
	return out, nil
}

// FreshnessEvents lists changes, newest first (by time, then id). An unknown
// asset has none.
func (s *Store) FreshnessEvents(ctx context.Context, q store.FreshnessQuery) ([]store.FreshnessChange, error) {
	var (
		where []string
		args  []any
	)
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if q.Asset != "" {
		// By the asset's id, so that the planner can use the index on
		// (asset_id, at).
		where = append(where, "f.asset_id = (SELECT id FROM assets WHERE key = "+arg(string(q.Asset))+")")
	}
	if !q.Since.IsZero() {
		where = append(where, "f.at >= "+arg(q.Since))
	}
	sql := `SELECT ` + freshnessColumns + ` FROM freshness_events f JOIN assets a ON a.id = f.asset_id`
	if len(where) > 0 {
		sql += " WHERE " + strings.Join(where, " AND ")
	}
	sql += " ORDER BY f.at DESC, f.id DESC LIMIT " + arg(store.FreshnessLimit(q.Limit))
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("read freshness events: %w", err)
	}
	out, err := pgx.CollectRows(rows, collectFreshness)
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
	at = at.UTC().Truncate(time.Microsecond)
	// One statement: it marks the changes only when every id names one.
	rows, err := s.pool.Query(ctx, `
		WITH found AS (SELECT id FROM freshness_events WHERE id = ANY($1::bigint[])),
		marked AS (
			UPDATE freshness_events SET notified_at = $2
			WHERE id IN (SELECT id FROM found) AND (SELECT count(*) FROM found) = cardinality($1::bigint[])
			RETURNING id)
		SELECT id FROM found`, ids, at)
	if err != nil {
		return fmt.Errorf("mark notified: %w", err)
	}
	found := map[int64]bool{}
	var id int64
	if _, err := pgx.ForEachRow(rows, []any{&id}, func() error { found[id] = true; return nil }); err != nil {
		return fmt.Errorf("mark notified: %w", err)
	}
	return store.UnknownIDsError(ids, found)
}
