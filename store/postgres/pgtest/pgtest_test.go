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
