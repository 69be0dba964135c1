package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/freshetdev/freshet/assets"
	"github.com/freshetdev/freshet/migrations"
	"github.com/freshetdev/freshet/store"
)

// Store is the embedded SQLite catalog store. It implements store.Store; every
// method is safe for concurrent use.
type Store struct {
	path string
	// write has exactly one connection: SQLite allows one writer at a time, and
	// queueing writers in Go (instead of in SQLite's busy handler) keeps them
	// fair and never returns SQLITE_BUSY.
	write *sql.DB
	// read is a pool of read-only connections; in WAL mode each read transaction
	// sees a consistent snapshot while the writer goes on.
	read *sql.DB
	now  func() time.Time

	// interned holds code version and dep set ids that are committed. An id once
	// committed never changes, so the cache can only ever miss, never lie.
	internMu sync.Mutex
	interned map[internKey]uint32

	// stmts are the writer's statements, prepared once on the writer connection
	// (see learnStatements); stmtsClosed is set by Close.
	stmtsMu     sync.Mutex
	stmts       map[string]*sql.Stmt
	stmtsClosed bool

	// parsed caches parsed partitions definitions by their stored JSON, which
	// determines them completely.
	parsedMu sync.Mutex
	parsed   map[string]*assets.Partitions

	// listeners are the channels Listen returned that are still open; closed is
	// closed by Close, which ends them all.
	listenMu  sync.Mutex
	listeners map[chan struct{}]struct{}
	closed    chan struct{}
	closeOnce sync.Once
}

var _ store.Store = (*Store)(nil)

// Option configures Open.
type Option func(*config)

type config struct {
	migrate     bool
	busyTimeout time.Duration
	readers     int
	now         func() time.Time
}

// WithoutMigrations opens the database without applying pending migrations, for
// tools that only inspect it; call Migrate to apply them.
func WithoutMigrations() Option { return func(c *config) { c.migrate = false } }

// WithBusyTimeout sets how long a connection waits for a lock held by another
// process (another freshet command on the same file) before failing. Default 10s.
func WithBusyTimeout(d time.Duration) Option { return func(c *config) { c.busyTimeout = d } }

// WithReaders sets the size of the read connection pool. Default 4.
func WithReaders(n int) Option {
	return func(c *config) {
		if n > 0 {
			c.readers = n
		}
	}
}

// WithClock sets the clock used for the times the store records (event times
// left zero, definition change times) and for the engine queue's leases, claims
// and retry backoffs, so tests can move time forward. Default time.Now.
func WithClock(now func() time.Time) Option { return func(c *config) { c.now = now } }

// memoryPath names a private in-memory database instead of a file.
const memoryPath = ":memory:"

// Open opens (creating it if needed) the catalog database at path and applies
// pending migrations. The parent directory is created when missing. path
// ":memory:" opens a private in-memory catalog that lives until Close.
func Open(ctx context.Context, path string, opts ...Option) (*Store, error) {
	cfg := config{migrate: true, busyTimeout: 10 * time.Second, readers: 4, now: time.Now}
	for _, opt := range opts {
		opt(&cfg)
	}
	s := &Store{
		path:     path,
		now:      cfg.now,
		interned: make(map[internKey]uint32),
		parsed:   make(map[string]*assets.Partitions),
		closed:   make(chan struct{}),
	}
	var err error
	if path == memoryPath {
		// A :memory: database belongs to its connection, so readers and the
		// writer must share that one connection.
		s.write, err = sql.Open("sqlite", "file::memory:?"+pragmas(cfg.busyTimeout, false).Encode())
		if err != nil {
			return nil, fmt.Errorf("open in-memory catalog: %w", err)
		}
		s.write.SetMaxOpenConns(1)
		s.write.SetConnMaxLifetime(0)
		s.write.SetConnMaxIdleTime(0)
		s.read = s.write
	} else {
		if path, err = filepath.Abs(path); err != nil {
			return nil, fmt.Errorf("open catalog %s: %w", s.path, err)
		}
		s.path = path
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, fmt.Errorf("open catalog %s: create its folder: %w", path, err)
		}
		if s.write, err = sql.Open("sqlite", dsn(path, pragmas(cfg.busyTimeout, false))); err != nil {
			return nil, fmt.Errorf("open catalog %s: %w", path, err)
		}
		s.write.SetMaxOpenConns(1)
		s.write.SetMaxIdleConns(1)
		s.write.SetConnMaxLifetime(0)
		s.write.SetConnMaxIdleTime(0)
		// The writer connects first: it switches the file to WAL before any
		// reader opens it.
		if err := s.write.PingContext(ctx); err != nil {
			s.write.Close()
			return nil, fmt.Errorf("open catalog %s: %w", path, err)
		}
		if s.read, err = sql.Open("sqlite", dsn(path, pragmas(cfg.busyTimeout, true))); err != nil {
			s.write.Close()
			return nil, fmt.Errorf("open catalog %s: %w", path, err)
		}
		s.read.SetMaxOpenConns(cfg.readers)
		s.read.SetMaxIdleConns(cfg.readers)
		s.read.SetConnMaxIdleTime(5 * time.Minute)
	}
	if cfg.migrate {
		if _, err := s.Migrate(ctx); err != nil {
			s.Close()
			return nil, fmt.Errorf("open catalog %s: %w", s.path, err)
		}
	}
	return s, nil
}

// pragmas returns the connection settings as DSN parameters, so that the driver
// applies them to every connection the pools open.
func pragmas(busyTimeout time.Duration, readOnly bool) url.Values {
	v := url.Values{}
	v.Add("_pragma", "busy_timeout("+strconv.FormatInt(busyTimeout.Milliseconds(), 10)+")")
	v.Add("_pragma", "foreign_keys(1)")
	if readOnly {
		v.Add("_pragma", "query_only(1)")
		return v
	}
	v.Add("_pragma", "journal_mode(WAL)")
	// In WAL mode NORMAL never corrupts the file; a power loss can only drop
	// the last transactions, which the event log's writers retry anyway.
	v.Add("_pragma", "synchronous(NORMAL)")
	// The writer's temporary data stays in memory: the sub-journal of each
	// report's savepoint in FinishSteps (the pages a report changes, kept until
	// it is released) and statement journals, which would otherwise be written
	// to a temporary file page by page (FinishSteps ran at half the speed).
	v.Add("_pragma", "temp_store(MEMORY)")
	// Write transactions take the write lock when they begin, so a transaction
	// never fails half-way upgrading a read lock.
	v.Set("_txlock", "immediate")
	return v
}

// dsn builds a file: URI for path, escaped so that any file name works.
func dsn(path string, params url.Values) string {
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(path)}
	return "file:" + u.EscapedPath() + "?" + params.Encode()
}

// Path returns the database file's absolute path (":memory:" for an in-memory one).
func (s *Store) Path() string { return s.path }

// Close releases the store's connections.
func (s *Store) Close() error {
	// Let SQLite refresh its query planner statistics where they went stale;
	// cheap, and recommended before closing a connection.
	_, _ = s.write.Exec("PRAGMA optimize")
	s.closeListeners()
	var err error
	s.stmtsMu.Lock()
	for _, st := range s.stmts {
		err = errors.Join(err, st.Close())
	}
	s.stmts, s.stmtsClosed = nil, true
	s.stmtsMu.Unlock()
	err = errors.Join(err, s.write.Close())
	if s.read != s.write {
		err = errors.Join(err, s.read.Close())
	}
	if err != nil {
		return fmt.Errorf("close catalog %s: %w", s.path, err)
	}
	return nil
}

// Migrate applies pending schema migrations and returns them.
func (s *Store) Migrate(ctx context.Context) ([]store.Migration, error) {
	applied, err := migrations.Up(ctx, s.write, migrations.SQLite)
	if err != nil {
		// Another process may have migrated the same file at the same moment:
		// then nothing is pending any more and the schema is fine.
		if _, pending, serr := migrations.Status(ctx, s.write, migrations.SQLite); serr != nil || pending > 0 {
			return nil, err
		}
	}
	out := make([]store.Migration, len(applied))
	for i, a := range applied {
		out[i] = store.Migration{Version: a.Version, Name: a.Name}
	}
	return out, nil
}

// SchemaVersion returns the applied schema version and the number of migrations
// pending.
func (s *Store) SchemaVersion(ctx context.Context) (int64, int, error) {
	return migrations.Status(ctx, s.write, migrations.SQLite)
}

// Watermark returns the catalog's current seq.
func (s *Store) Watermark(ctx context.Context) (int64, error) {
	var seq int64
	if err := s.read.QueryRowContext(ctx, `SELECT seq FROM catalog_clock WHERE id = 1`).Scan(&seq); err != nil {
		return 0, fmt.Errorf("read catalog watermark: %w", err)
	}
	return seq, nil
}

// inWriteTx runs fn in a write transaction (BEGIN IMMEDIATE on the one writer
// connection) and commits when fn returns nil; otherwise it rolls back and
// returns fn's error unchanged.
func (s *Store) inWriteTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin write transaction: %w", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// inReadTx runs fn in a read transaction: every query fn makes sees the same
// snapshot of the database.
func (s *Store) inReadTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("begin read transaction: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a read transaction has nothing to undo
	return fn(tx)
}

const advanceClockSQL = `UPDATE catalog_clock SET seq = seq + ? WHERE id = 1 RETURNING seq`

// advanceClock moves the catalog clock n seqs forward and returns the new seq;
// the n seqs after the old one belong to the caller's transaction.
func advanceClock(ctx context.Context, tx *sql.Tx, n int) (int64, error) {
	var seq int64
	err := tx.QueryRowContext(ctx, advanceClockSQL, n).Scan(&seq)
	if err != nil {
		return 0, fmt.Errorf("advance catalog clock: %w", err)
	}
	return seq, nil
}

func readClock(ctx context.Context, q querier) (int64, error) {
	var seq int64
	if err := q.QueryRowContext(ctx, `SELECT seq FROM catalog_clock WHERE id = 1`).Scan(&seq); err != nil {
		return 0, fmt.Errorf("read catalog clock: %w", err)
	}
	return seq, nil
}

// querier is what both *sql.Tx and *sql.DB offer for reading.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// micros and fromMicros convert times to and from their stored form, unix
// microseconds.
func micros(t time.Time) int64 { return t.UnixMicro() }

func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// nullString stores "" as NULL.
func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}
