// Package pgtest gives tests a PostgreSQL database of their own: a fresh schema in
// the database at FRESHET_TEST_DATABASE_URL, dropped when the test ends.
//
// Tests run against a real PostgreSQL, never a mock. When none is reachable the
// test fails, saying which URL was tried and how to start the local server: a
// silently skipped database test is a test that never runs.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvURL names the environment variable holding the test database's URL.
const EnvURL = "FRESHET_TEST_DATABASE_URL"

// DefaultURL is the test database when EnvURL is not set: the local server's
// postgres database, trust authentication.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// startHint says how to start the local server.
const startHint = "start the local server with: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"

// BaseURL returns the URL of the test database, from EnvURL or DefaultURL.
func BaseURL() string {
	if u := os.Getenv(EnvURL); u != "" {
		return u
	}
	return DefaultURL
}

// URL creates a fresh, empty schema (freshet_test_<random hex>) in the test
// database and returns a URL whose connections use it: the schema is set as the
// search_path runtime parameter of every connection, so tables, the migrations'
// version table and temporary lookups all resolve in it. The schema is dropped,
// with everything in it, when the test and its subtests end; close stores opened
// on the URL before (register their Close with t.Cleanup after calling URL).
func URL(t testing.TB) string {
	t.Helper()
	base := BaseURL()
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		t.Fatalf("pgtest: %s=%q is not a postgres:// URL", EnvURL, base)
	}
	schema := "freshet_test_" + randomHex(t, 8)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("pgtest: cannot reach PostgreSQL at %s (set %s to use another): %v\n%s",
			redact(u), EnvURL, err, startHint)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{schema}.Sanitize()); err != nil {
		t.Fatalf("pgtest: create schema %s at %s: %v", schema, redact(u), err)
	}
	t.Cleanup(func() { dropSchema(t, base, schema) })

	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

func dropSchema(t testing.TB, base, schema string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Errorf("pgtest: drop schema %s: %v", schema, err)
		return
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
		t.Errorf("pgtest: drop schema %s: %v", schema, err)
	}
}

func randomHex(t testing.TB, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("pgtest: random schema name: %v", err)
	}
	return hex.EncodeToString(b)
}

// redact hides a password in u for messages.
func redact(u *url.URL) string {
	c := *u
	if c.User != nil {
		if _, ok := c.User.Password(); ok {
			c.User = url.UserPassword(c.User.Username(), "xxxxx")
		}
	}
	return c.String()
}
