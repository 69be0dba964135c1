package postgres

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/freshetdev/freshet/migrations"
	"github.com/freshetdev/freshet/store"
)

// Store is the PostgreSQL catalog store. It implements store.Store; every method is
// safe for concurrent use, also by several processes sharing one database.
type Store struct {
	pool *pgxpool.Pool
	now  func() time.Time

	// cache holds facts read from committed rows that never change once committed,
	// so Append need not re-read or re-parse them.
	cache cache

	// closed is closed by Close: it stops the listeners (Listen), which hold
	// connections of their own outside the pool.
	closed    chan struct{}
	closeOnce sync.Once
}

var _ store.Store = (*Store)(nil)

// Option changes how Open sets up a Store.
type Option func(*options)

type options struct {
	migrate   bool
	configure []func(*pgxpool.Config)
	now       func() time.Time
}

// WithoutMigrations makes Open skip applying pending schema migrations, for tools
// that must not change the schema (the schema must then already be current, or
// Migrate must be called before the store is used).
func WithoutMigrations() Option {
	return func(o *options) { o.migrate = false }
}

// WithPoolConfig lets the caller adjust the pool configuration parsed from the URL
// before the pool is created (connection limits, tracers, AfterConnect hooks, …).
func WithPoolConfig(configure func(*pgxpool.Config)) Option {
	return func(o *options) { o.configure = append(o.configure, configure) }
}

// WithClock sets the clock that stamps events appended without a time and
// definition changes (default time.Now). Tests use it to get predictable times.
func WithClock(now func() time.Time) Option {
	return func(o *options) { o.now = now }
}

// Open connects to the PostgreSQL database at rawURL (postgres://… or
// postgresql://…), creates the connection pool and applies pending schema
// migrations (unless WithoutMigrations is given). See the package documentation for
// the URL's parameters.
func Open(ctx context.Context, rawURL string, opts ...Option) (*Store, error) {
	o := options{migrate: true, now: time.Now}
	for _, opt := range opts {
		opt(&o)
	}
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return nil, fmt.Errorf("open postgres store: %q is not a postgres:// or postgresql:// URL", redact(rawURL))
	}
	cfg, err := pgxpool.ParseConfig(rawURL)
	if err != nil {
		return nil, fmt.Errorf("open postgres store: parse URL %q: %w", redact(rawURL), err)
	}
	if !hasParam(u, "pool_max_conn_idle_time") {
		cfg.MaxConnIdleTime = 5 * time.Minute
	}
	for _, configure := range o.configure {
		configure(cfg)
	}
	callerAfterConnect := cfg.AfterConnect
	cfg.AfterConnect = func(ctx context.Context, conn *pgx.Conn) error {
		registerUUID(conn.TypeMap())
		if callerAfterConnect != nil {
			return callerAfterConnect(ctx, conn)
		}
		return nil
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open postgres store %q: %w", redact(rawURL), err)
	}
	s := &Store{pool: pool, now: o.now, closed: make(chan struct{})}
	if o.migrate {
		if _, err := s.Migrate(ctx); err != nil {
			pool.Close()
			return nil, fmt.Errorf("open postgres store %q: %w", redact(rawURL), err)
		}
	} else if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open postgres store %q: %w", redact(rawURL), err)
	}
	return s, nil
}

// Pool returns the store's connection pool, for the packages that keep their own
// tables in the same database (runs, steps, leases).
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Close releases the store's connections, and stops its listeners (their
// channels are closed). It waits for connections in use to be returned to the
// pool.
func (s *Store) Close() error {
	s.closeOnce.Do(func() { close(s.closed) })
	s.pool.Close()
	return nil
}

// Migrate applies pending schema migrations and returns them (none when the schema
// is current). Concurrent callers on the same schema are serialized by a
// PostgreSQL session lock, so the second finds nothing left to do.
func (s *Store) Migrate(ctx context.Context) ([]store.Migration, error) {
	db := stdlib.OpenDBFromPool(s.pool)
	defer db.Close() // releases the connections it took; the pool stays open
	applied, err := migrations.Up(ctx, db, migrations.Postgres)
	if err != nil {
		return nil, err
	}
	out := make([]store.Migration, len(applied))
	for i, a := range applied {
		out[i] = store.Migration{Version: a.Version, Name: a.Name}
	}
	return out, nil
}

// SchemaVersion returns the applied schema version and the number of migrations
// pending.
func (s *Store) SchemaVersion(ctx context.Context) (current int64, pending int, err error) {
	db := stdlib.OpenDBFromPool(s.pool)
	defer db.Close()
	return migrations.Status(ctx, db, migrations.Postgres)
}

// Watermark returns the catalog's current seq. It reads the clock row without
// locking it: a writer in progress holds the lock, but its seqs become visible only
// when it commits, together with its rows.
func (s *Store) Watermark(ctx context.Context) (int64, error) {
	var seq int64
	if err := s.pool.QueryRow(ctx, `SELECT seq FROM catalog_clock WHERE id = 1`).Scan(&seq); err != nil {
		return 0, fmt.Errorf("read watermark: %w", err)
	}
	return seq, nil
}

// writeTx are the options of every transaction that writes the catalog. READ
// COMMITTED, whatever the server's default: each statement after the clock lock
// then sees what the previous writer committed, and waiting for the lock never
// ends in a serialization failure.
var writeTx = pgx.TxOptions{IsoLevel: pgx.ReadCommitted}

// advanceClockSQL advances the catalog clock by $1 seqs and returns the new seq.
// It holds the clock row's lock until the transaction ends: every writer of the
// catalog runs it first, so writers are serialized and commit in seq order.
const advanceClockSQL = `UPDATE catalog_clock SET seq = seq + $1 WHERE id = 1 RETURNING seq`

// advanceClock takes the clock's lock for the rest of tx and advances it by n
// seqs, returning the watermark before: tx owns seqs watermark+1 … watermark+n.
func advanceClock(ctx context.Context, tx pgx.Tx, n int64) (watermark int64, err error) {
	var end int64
	if err := tx.QueryRow(ctx, advanceClockSQL, n).Scan(&end); err != nil {
		return 0, clockError(err)
	}
	return end - n, nil
}

func clockError(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return errors.New("the catalog_clock row is missing: the schema is damaged")
	}
	return fmt.Errorf("advance catalog clock: %w", err)
}

// snapshotTx begins the read-only REPEATABLE READ transaction that readers use, so
// the watermark and the rows they read come from one snapshot, and returns the
// watermark of that snapshot.
func (s *Store) snapshotTx(ctx context.Context) (pgx.Tx, int64, error) {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, 0, err
	}
	var seq int64
	if err := tx.QueryRow(ctx, `SELECT seq FROM catalog_clock WHERE id = 1`).Scan(&seq); err != nil {
		_ = tx.Rollback(ctx)
		return nil, 0, err
	}
	return tx, seq, nil
}

// rollback ends tx when the function that began it returns early; after a commit it
// does nothing.
func rollback(tx pgx.Tx) {
	// A fresh context: the caller's may be canceled, and the connection must go
	// back to the pool without an open transaction.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = tx.Rollback(ctx)
}

func hasParam(u *url.URL, name string) bool {
	_, ok := u.Query()[name]
	return ok
}

// redact hides the password of a URL for error messages.
func redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "(an unparsable URL)" // it may hold a password we cannot find
	}
	if u.User == nil {
		return rawURL
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}
