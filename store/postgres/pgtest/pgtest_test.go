package pgtest

import (
	"fmt"
	"net/url"
	"runtime"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// The URL's connections live in a fresh schema, gone after the test.
func TestURLGivesAFreshSchema(t *testing.T) {
	var schema string
	t.Run("use", func(t *testing.T) {
		conn, err := pgx.Connect(t.Context(), URL(t))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(t.Context())
		var tables int
		err = conn.QueryRow(t.Context(), `SELECT current_schema(),
			(SELECT count(*) FROM pg_tables WHERE schemaname = current_schema())`).Scan(&schema, &tables)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(schema, "freshet_test_") || tables != 0 {
			t.Errorf("connected to schema %q holding %d tables; want a fresh freshet_test_ schema", schema, tables)
		}
		if _, err := conn.Exec(t.Context(), `CREATE TABLE t (x int)`); err != nil {
			t.Fatalf("create a table in the schema: %v", err)
		}
	})
	conn, err := pgx.Connect(t.Context(), BaseURL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())
	var exists bool
	if err := conn.QueryRow(t.Context(), `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`, schema).Scan(&exists); err != nil {
		t.Fatal(err)
	}
	if exists {
		t.Errorf("schema %s still exists after the test", schema)
	}
}

// fatalRecorder stands in for a test to catch what URL says when it fails.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (r *fatalRecorder) Helper() {}

func (r *fatalRecorder) Fatalf(format string, args ...any) {
	r.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// Without a server the test fails, saying which URL and how to start one.
func TestURLFailsClearlyWithoutServer(t *testing.T) {
	unreachable := "postgres://postgres:pw@127.0.0.1:1/postgres?sslmode=disable&connect_timeout=5"
	t.Setenv(EnvURL, unreachable)
	r := &fatalRecorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		URL(r)
	}()
	<-done
	u, _ := url.Parse(unreachable)
	for _, want := range []string{redact(u), EnvURL, "pg_ctlcluster --skip-systemctl-redirect"} {
		if !strings.Contains(r.msg, want) {
			t.Errorf("failure message %q does not mention %q", r.msg, want)
		}
	}
	if strings.Contains(r.msg, "pw@") {
		t.Errorf("failure message %q shows the password", r.msg)
	}
}

// A server of the test's own keeps committed data across a restart.
func TestStartServerAndRestart(t *testing.T) {
	t.Parallel()
	srv := StartServer(t)
	ctx := t.Context()
	conn, err := pgx.Connect(ctx, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `CREATE TABLE kept (x int); INSERT INTO kept VALUES (42)`); err != nil {
		t.Fatal(err)
	}
	srv.Restart()
	if _, err := conn.Exec(ctx, `SELECT 1`); err == nil {
		t.Error("a connection survived the restart")
	}
	conn.Close(ctx)
	conn, err = pgx.Connect(ctx, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var x int
	if err := conn.QueryRow(ctx, `SELECT x FROM kept`).Scan(&x); err != nil || x != 42 {
		t.Errorf("after the restart: %d, %v", x, err)
	}
}
