package materialize

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/freshetdev/freshet/assets"
	"github.com/freshetdev/freshet/store"
	"github.com/freshetdev/freshet/store/postgres/pgtest"
)

func TestExecutorSQLSplit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		src   string
		want  []string
		lines []int
	}{
		{"two statements", "SELECT 1; SELECT 2;", []string{"SELECT 1", "SELECT 2"}, []int{1, 1}},
		{"no final semicolon", "SELECT 1;\n\nSELECT 2\n", []string{"SELECT 1", "SELECT 2"}, []int{1, 3}},
		{"semicolons in strings", "SELECT ';' ; SELECT 'it''s; fine';", []string{"SELECT ';'", "SELECT 'it''s; fine'"}, nil},
		{"escape string", `SELECT E'\';' ; SELECT 2`, []string{`SELECT E'\';'`, "SELECT 2"}, nil},
		{"standard string keeps backslash", `SELECT '\'; SELECT 2`, []string{`SELECT '\'`, "SELECT 2"}, nil},
		{"quoted identifier", `SELECT 1 AS "a;""b"; SELECT 2`, []string{`SELECT 1 AS "a;""b"`, "SELECT 2"}, nil},
		{"dollar quotes", "DO $$ BEGIN PERFORM 1; END $$;\nSELECT $fn$ a; $$ b; $fn$;",
			[]string{"DO $$ BEGIN PERFORM 1; END $$", "SELECT $fn$ a; $$ b; $fn$"}, []int{1, 2}},
		{"identifier with dollar and positional parameter", "SELECT a$b, $1 FROM t; SELECT 2",
			[]string{"SELECT a$b, $1 FROM t", "SELECT 2"}, nil},
		{"comments", "-- head; comment\nSELECT 1 /* a; /* nested; */ b; */ ;\n-- tail;\nSELECT 2 -- trailing; comment\n",
			[]string{"SELECT 1 /* a; /* nested; */ b; */", "SELECT 2 -- trailing; comment"}, []int{2, 4}},
		{"comment-only statements dropped", "-- only a comment\n;\n/* x */ ;\n", nil, nil},
		{"parentheses", "CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO a VALUES (1); INSERT INTO b VALUES (2)); SELECT 3",
			[]string{"CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO a VALUES (1); INSERT INTO b VALUES (2))", "SELECT 3"}, nil},
		{"begin atomic", "CREATE FUNCTION f() RETURNS int LANGUAGE sql\nBEGIN ATOMIC\n  SELECT 1;\n  SELECT CASE WHEN true THEN 2 END;\nEND;\nSELECT f();",
			[]string{"CREATE FUNCTION f() RETURNS int LANGUAGE sql\nBEGIN ATOMIC\n  SELECT 1;\n  SELECT CASE WHEN true THEN 2 END;\nEND", "SELECT f()"}, []int{1, 6}},
		{"begin atomic procedure", "create or replace procedure p() language sql begin atomic insert into t values (1); end; call p()",
			[]string{"create or replace procedure p() language sql begin atomic insert into t values (1); end", "call p()"}, nil},
		{"case outside functions", "SELECT CASE WHEN x THEN 1 END; SELECT 2", []string{"SELECT CASE WHEN x THEN 1 END", "SELECT 2"}, nil},
		{"numbers", "SELECT 1e5, 0x1F, 1_000, .5; SELECT 2", []string{"SELECT 1e5, 0x1F, 1_000, .5", "SELECT 2"}, nil},
		{"multiline string counts lines", "SELECT 'a\nb\nc';\nSELECT 2;", []string{"SELECT 'a\nb\nc'", "SELECT 2"}, []int{1, 4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stmts, err := splitSQL(tt.src)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			var lines []int
			for _, s := range stmts {
				got = append(got, s.text)
				lines = append(lines, s.line)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("statements %q, want %q", got, tt.want)
			}
			if tt.lines != nil && !slices.Equal(lines, tt.lines) {
				t.Fatalf("lines %v, want %v", lines, tt.lines)
			}
		})
	}
}

func TestExecutorSQLSplitErrors(t *testing.T) {
	t.Parallel()
	tests := []struct{ src, want string }{
		{"SELECT 'abc", "1: unterminated quoted string"},
		{"SELECT 1;\nSELECT \"abc", "2: unterminated quoted identifier"},
		{"SELECT 1;\n\n/* open /* nested */", "3: unterminated /* comment"},
		{"DO $body$ BEGIN END $$", "1: unterminated dollar-quoted string $body$"},
		{"SELECT E'\\'", "1: unterminated quoted string"},
	}
	for _, tt := range tests {
		_, err := splitSQL(tt.src)
		if err == nil || err.Error() != tt.want {
			t.Errorf("splitSQL(%q): error %v, want %q", tt.src, err, tt.want)
		}
	}
}

func TestExecutorSQLCheck(t *testing.T) {
	t.Parallel()
	tests := []struct{ src, wantErr string }{
		{"DELETE FROM t WHERE d >= @partition_start AND d < @partition_end AND k = @partition", ""},
		{"SELECT '@nope', $$@nope$$, \"@nope\" -- @nope\n", ""},
		{"SELECT @ -5, a @> b", ""},
		{"SELECT 1;\nDELETE FROM t WHERE d = @partiton", "2: unknown parameter @partiton"},
		{"BEGIN; SELECT 1; COMMIT", "1: BEGIN: the file already runs in one transaction"},
		{"start transaction", "START"},
		{"SELECT 1;\nCOMMIT;", "2: COMMIT"},
		{"END", "END"},
		{"ROLLBACK", "ROLLBACK"},
		{"ROLLBACK AND CHAIN", "ROLLBACK"},
		{"SAVEPOINT a; ROLLBACK TO SAVEPOINT a; ROLLBACK WORK TO a; RELEASE a", ""},
	}
	for _, tt := range tests {
		stmts, err := splitSQL(tt.src)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range stmts {
			if err = s.check(); err != nil {
				break
			}
		}
		if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) && !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("%q: error %v, want %q", tt.src, err, tt.wantErr)
		}
	}
}

// exSQL gives a test a fresh PostgreSQL schema, executors whose connection "wh"
// reaches it through an environment variable, and a definitions directory.
func exSQL(t *testing.T) (e *Executors, url, dir string) {
	t.Helper()
	url = pgtest.URL(t)
	e = &Executors{
		Connections: map[string]assets.Connection{
			"wh":      {Postgres: &assets.PostgresConnection{URLEnv: "WH_URL"}},
			"missing": {Postgres: &assets.PostgresConnection{URLEnv: "NOT_SET_URL"}},
		},
		Getenv: func(k string) string {
			if k == "WH_URL" {
				return url
			}
			return ""
		},
	}
	t.Cleanup(e.Close) // before pgtest drops the schema
	return e, url, t.TempDir()
}

func exQuery[T any](t *testing.T, url, sql string, args ...any) []T {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, _ := conn.Query(ctx, sql, args...)
	out, err := pgx.CollectRows(rows, pgx.RowTo[T])
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return out
}

func exSQLRun(t *testing.T, e *Executors, ctx context.Context, file string, inv Invocation, sink *exSink) error {
	t.Helper()
	ex, err := e.For(assets.SQLCompute{File: file, Connection: "wh"})
	if err != nil {
		t.Fatal(err)
	}
	out, err := ex.Execute(ctx, inv, sink)
	if err == nil && out.DataVersion != "" {
		t.Errorf("SQL reported data version %q; the engine assigns it", out.DataVersion)
	}
	return err
}

const exTransform = `-- Rebuild one day of daily_orders: delete the partition, insert it again.
CREATE TABLE IF NOT EXISTS daily_orders (
    day        date NOT NULL,
    n          int NOT NULL,
    note       text,
    loaded_for timestamptz
);

DELETE FROM daily_orders
WHERE day >= @partition_start AND day < @partition_end; -- a date column: the window's local dates

INSERT INTO daily_orders (day, n, note, loaded_for)
SELECT @partition::date, g, 'semi;colon ''quoted'' @partition', @partition_start::timestamptz
FROM generate_series(1, 3) AS g
WHERE @partition_start < @partition_end;

DO $body$
BEGIN
    PERFORM 1; -- PL/pgSQL inside a dollar quote
END
$body$;
`

func TestExecutorSQLIdempotentPartitions(t *testing.T) {
	t.Parallel()
	e, url, dir := exSQL(t)
	exWrite(t, dir, "sql/transform.sql", exTransform, 0o644)
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	day := func(d int) Invocation {
		inv := exInv(dir, time.Date(2026, 4, d, 0, 0, 0, 0, time.UTC).Format(time.DateOnly))
		inv.Start = time.Date(2026, 4, d, 0, 0, 0, 0, berlin)
		inv.End = time.Date(2026, 4, d+1, 0, 0, 0, 0, berlin)
		return inv
	}

	first := &exSink{}
	if err := exSQLRun(t, e, context.Background(), "sql/transform.sql", day(8), first); err != nil {
		t.Fatalf("first run: %v", err)
	}
	again := &exSink{}
	if err := exSQLRun(t, e, context.Background(), "sql/transform.sql", day(8), again); err != nil {
		t.Fatalf("second run: %v", err)
	}
	if err := exSQLRun(t, e, context.Background(), "sql/transform.sql", day(9), &exSink{}); err != nil {
		t.Fatalf("next day: %v", err)
	}

	got := exQuery[string](t, url, `SELECT day::text || ' ' || count(*) || ' ' || min(note) || ' ' || (min(loaded_for) AT TIME ZONE 'UTC')::text
		FROM daily_orders GROUP BY day ORDER BY day`)
	want := []string{
		"2026-04-08 3 semi;colon 'quoted' @partition 2026-04-07 22:00:00",
		"2026-04-09 3 semi;colon 'quoted' @partition 2026-04-08 22:00:00",
	}
	if !slices.Equal(got, want) {
		t.Errorf("rows %q, want %q", got, want)
	}

	wantFirst := []string{
		"running sql/transform.sql on connection wh: 4 statements in one transaction",
		"sql/transform.sql:2: CREATE TABLE",
		"sql/transform.sql:9: DELETE 0 (0 rows",
		"sql/transform.sql:12: INSERT 0 3 (3 rows",
		"sql/transform.sql:17: DO",
		"sql/transform.sql committed",
	}
	sys := first.of(store.System)
	if len(sys) != len(wantFirst) {
		t.Fatalf("system lines %q, want %d", sys, len(wantFirst))
	}
	for i, w := range wantFirst {
		if !strings.HasPrefix(sys[i], w) {
			t.Errorf("system line %d %q, want it to start with %q", i, sys[i], w)
		}
	}
	if !again.has(store.System, "sql/transform.sql:9: DELETE 3 (3 rows") {
		t.Errorf("second run did not delete the partition: %q", again.of(store.System))
	}
}

func TestExecutorSQLUnpartitionedParamsAreNull(t *testing.T) {
	t.Parallel()
	e, url, dir := exSQL(t)
	exWrite(t, dir, "all.sql", `CREATE TABLE summary (p_null bool, s_null bool, e_null bool);
INSERT INTO summary VALUES (@partition::text IS NULL, @partition_start::timestamptz IS NULL, @partition_end::date IS NULL)`, 0o644)
	if err := exSQLRun(t, e, context.Background(), "all.sql", exInv(dir), &exSink{}); err != nil {
		t.Fatal(err)
	}
	if got := exQuery[string](t, url, `SELECT concat_ws(',', p_null, s_null, e_null) FROM summary`); !slices.Equal(got, []string{"t,t,t"}) {
		t.Errorf("got %q", got)
	}
}

func TestExecutorSQLErrors(t *testing.T) {
	t.Parallel()
	e, url, _ := exSQL(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `CREATE TABLE t (d date, n int)`); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)

	tests := []struct {
		name    string
		sql     string
		wantErr []string
	}{
		{
			name: "error position maps to the file's line",
			sql: `INSERT INTO t VALUES ('2026-01-01', 1);
-- the next statement fails on its third line, after a rewritten parameter
SELECT @partition_start::timestamptz,
       n,
       nope
FROM t;`,
			wantErr: []string{"bad.sql:5: statement 2:", `column "nope" does not exist`, "SQLSTATE 42703"},
		},
		{
			name:    "error without a position names the statement's line",
			sql:     "INSERT INTO t VALUES ('2026-01-01', 1);\n\nSELECT 1 / (n - 1) FROM t;",
			wantErr: []string{"bad.sql:3: statement 2 (starting at this line):", "division by zero"},
		},
		{
			name:    "constraint detail",
			sql:     "INSERT INTO t VALUES ('2026-01-01', 1);\nALTER TABLE t ADD PRIMARY KEY (n);\nINSERT INTO t VALUES ('2026-01-02', 1);",
			wantErr: []string{"bad.sql:3:", "duplicate key", "DETAIL: Key (n)=(1) already exists."},
		},
		{
			name:    "unknown parameter",
			sql:     "INSERT INTO t VALUES ('2026-01-01', 1);\nDELETE FROM t WHERE d = @day;",
			wantErr: []string{"bad.sql:2: unknown parameter @day"},
		},
		{
			name:    "transaction control",
			sql:     "BEGIN;\nINSERT INTO t VALUES ('2026-01-01', 1);\nCOMMIT;",
			wantErr: []string{"bad.sql:1: BEGIN: the file already runs in one transaction"},
		},
		{
			name:    "unterminated string",
			sql:     "INSERT INTO t VALUES ('2026-01-01', 1);\nSELECT 'oops;",
			wantErr: []string{"bad.sql:2: unterminated quoted string"},
		},
		{
			name:    "empty file",
			sql:     "-- nothing yet\n",
			wantErr: []string{"bad.sql holds no SQL statement"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := t.TempDir()
			exWrite(t, d, "bad.sql", tt.sql, 0o644)
			err := exSQLRun(t, e, ctx, "bad.sql", exInv(d, "2026-04-08"), &exSink{})
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			// Every failure rolls back: the INSERT before it left nothing.
			if n := exQuery[int64](t, url, `SELECT count(*) FROM t`); n[0] != 0 {
				t.Errorf("%d rows left after a failed file", n[0])
			}
		})
	}

	t.Run("missing file", func(t *testing.T) {
		err := exSQLRun(t, e, ctx, "nope.sql", exInv(t.TempDir()), &exSink{})
		if err == nil || !strings.Contains(err.Error(), "nope.sql") {
			t.Errorf("error %v", err)
		}
	})
}

func TestExecutorSQLMissingEnvVar(t *testing.T) {
	t.Parallel()
	e, _, dir := exSQL(t)
	exWrite(t, dir, "x.sql", "SELECT 1", 0o644)
	ex, err := e.For(assets.SQLCompute{File: "x.sql", Connection: "missing"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = ex.Execute(context.Background(), exInv(dir), &exSink{})
	if err == nil || !strings.Contains(err.Error(), `connection "missing"`) || !strings.Contains(err.Error(), "NOT_SET_URL") {
		t.Fatalf("error %v, want one naming the connection and the variable", err)
	}
}

func TestExecutorSQLCancel(t *testing.T) {
	t.Parallel()
	e, url, dir := exSQL(t)
	exWrite(t, dir, "slow.sql", "SELECT 1;\nSELECT pg_sleep(600), 'freshet executor cancel test';", 0o644)
	sink := &exSink{}
	ctx := sink.cancelOn(t, store.System, "slow.sql:1: SELECT 1", errExTestCancel)
	err := exSQLRun(t, e, ctx, "slow.sql", exInv(dir), sink)
	if !errors.Is(err, errExTestCancel) {
		t.Fatalf("error %v, want one wrapping the cause", err)
	}
	// The statement was canceled on the server, not just abandoned by the client.
	running := exQuery[int64](t, url, `SELECT count(*) FROM pg_stat_activity
		WHERE state = 'active' AND query LIKE '%freshet executor cancel test%' AND pid <> pg_backend_pid()`)
	if running[0] != 0 {
		t.Errorf("the canceled statement still runs on the server")
	}
}

func TestExecutorSQLClosed(t *testing.T) {
	t.Parallel()
	e, _, dir := exSQL(t)
	exWrite(t, dir, "x.sql", "SELECT 1", 0o644)
	if err := exSQLRun(t, e, context.Background(), "x.sql", exInv(dir), &exSink{}); err != nil {
		t.Fatal(err)
	}
	e.Close()
	err := exSQLRun(t, e, context.Background(), "x.sql", exInv(dir), &exSink{})
	if err == nil || !strings.Contains(err.Error(), "closed") {
		t.Fatalf("error %v after Close", err)
	}
}
