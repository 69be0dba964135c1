// Package migrations owns the catalog's database schema: one folder of SQL migrations
// per dialect (postgres/, sqlite/), embedded in the binary and applied with goose.
//
// Both dialects describe the same tables. PostgreSQL uses its own types (timestamptz,
// jsonb, uuid); SQLite stores times as unix microseconds, JSON and UUIDs as text.
// Migrations are applied by the store drivers when they open a database and by
// `freshet migrate`. On PostgreSQL a session-level lock serializes processes that
// migrate at once, so the second one finds nothing left to do.
package migrations

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"hash/fnv"
	"io/fs"
	"path"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

//go:embed postgres/*.sql
var postgresFS embed.FS

//go:embed sqlite/*.sql
var sqliteFS embed.FS

// Dialect names a supported database.
type Dialect string

// The supported dialects.
const (
	Postgres Dialect = "postgres"
	SQLite   Dialect = "sqlite"
)

// Applied is one migration applied by Up.
type Applied struct {
	Version int64
	Name    string
}

// Up applies every pending migration of dialect to db and returns those it applied
// (none when the schema is current). The version table, goose_db_version, lives in
// the connection's current schema, so one PostgreSQL database can hold several
// catalogs, one per schema.
func Up(ctx context.Context, db *sql.DB, dialect Dialect) ([]Applied, error) {
	p, err := provider(ctx, db, dialect)
	if err != nil {
		return nil, err
	}
	results, err := p.Up(ctx)
	if err != nil {
		return nil, fmt.Errorf("migrate %s schema: %w", dialect, err)
	}
	applied := make([]Applied, 0, len(results))
	for _, r := range results {
		applied = append(applied, Applied{Version: r.Source.Version, Name: path.Base(r.Source.Path)})
	}
	return applied, nil
}

// Status reports the schema version of db and how many migrations are pending.
func Status(ctx context.Context, db *sql.DB, dialect Dialect) (current int64, pending int, err error) {
	p, err := provider(ctx, db, dialect)
	if err != nil {
		return 0, 0, err
	}
	if current, err = p.GetDBVersion(ctx); err != nil {
		return 0, 0, fmt.Errorf("read %s schema version: %w", dialect, err)
	}
	for _, s := range p.ListSources() {
		if s.Version > current {
			pending++
		}
	}
	return current, pending, nil
}

// Latest returns the newest migration version of dialect.
func Latest(dialect Dialect) (int64, error) {
	fsys, _, err := files(dialect)
	if err != nil {
		return 0, err
	}
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return 0, err
	}
	var latest int64
	for _, e := range entries {
		v, err := goose.NumericComponent(e.Name())
		if err == nil && v > latest {
			latest = v
		}
	}
	return latest, nil
}

func files(dialect Dialect) (fs.FS, goose.Dialect, error) {
	switch dialect {
	case Postgres:
		sub, err := fs.Sub(postgresFS, "postgres")
		return sub, goose.DialectPostgres, err
	case SQLite:
		sub, err := fs.Sub(sqliteFS, "sqlite")
		return sub, goose.DialectSQLite3, err
	}
	return nil, "", fmt.Errorf("unknown database dialect %q (want postgres or sqlite)", dialect)
}

func provider(ctx context.Context, db *sql.DB, dialect Dialect) (*goose.Provider, error) {
	fsys, gd, err := files(dialect)
	if err != nil {
		return nil, err
	}
	opts := []goose.ProviderOption{goose.WithDisableGlobalRegistry(true)}
	if dialect == Postgres {
		// Two processes starting at once must not both apply a migration. The lock
		// is per schema: catalogs in other schemas of the database (one per test,
		// say) migrate independently. A waiter polls every second, not goose's
		// default five.
		lockID, err := schemaLockID(ctx, db)
		if err != nil {
			return nil, err
		}
		locker, err := lock.NewPostgresSessionLocker(lock.WithLockID(lockID), lock.WithLockTimeout(1, 300))
		if err != nil {
			return nil, err
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	}
	p, err := goose.NewProvider(gd, db, fsys, opts...)
	if err != nil {
		return nil, fmt.Errorf("load %s migrations: %w", dialect, err)
	}
	return p, nil
}

// schemaLockID returns the migration lock's id for the connection's current schema
// (where goose_db_version lives).
func schemaLockID(ctx context.Context, db *sql.DB) (int64, error) {
	var schema sql.NullString
	if err := db.QueryRowContext(ctx, "SELECT current_schema()").Scan(&schema); err != nil {
		return 0, fmt.Errorf("read current schema: %w", err)
	}
	h := fnv.New64a()
	h.Write([]byte("goose migrations of schema " + schema.String))
	return int64(h.Sum64()), nil
}
