package materialize

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/freshetdev/freshet/assets"
)

// How an SQL file runs
//
// A file holds several statements (DELETE the partition, then INSERT it) and
// must run in one transaction with real bind parameters. PostgreSQL offers two
// ways to send SQL, and only one fits:
//
//   - The simple query protocol runs a whole multi-statement string, but it has
//     no parameters: pgx would interpolate @partition into the text client-side,
//     which is string formatting by another name, and which the design forbids.
//     Using it "only when there are no parameters" would give one file two
//     behaviours (one implicit transaction and one command tag for the whole
//     string versus per statement), so it is not used for files at all.
//   - The extended protocol binds parameters server-side, but a Parse message
//     holds exactly one statement ("cannot insert multiple commands into a
//     prepared statement").
//
// So the file is split into statements on top-level semicolons by a lexer that
// follows PostgreSQL's (and psql's) rules: '...' strings with '' escapes, E'...'
// strings with backslash escapes, "..." identifiers, $tag$...$tag$ dollar quotes,
// -- and nested /* */ comments, semicolons inside parentheses, and psql's
// heuristic for CREATE FUNCTION/PROCEDURE ... BEGIN ATOMIC ... END bodies. Each
// statement is then executed on one transaction's connection with
// pgx.NamedArgs, which rewrites @name into $n and binds the values (the rewrite
// itself uses pgx's own lexer, which agrees with ours on quotes, comments and
// dollar quotes). Splitting also gives each statement its line in the file, for
// error messages and the per-statement log lines.

// The bind parameters of SQL compute.
var sqlParams = []string{"partition", "partition_start", "partition_end"}

// sqlExecutor runs an SQL file on a named PostgreSQL connection.
type sqlExecutor struct {
	e *Executors
	c assets.SQLCompute
}

func (e *Executors) sqlExecutor(c assets.SQLCompute) (Executor, error) {
	if c.File == "" {
		return nil, errors.New("sql compute has no file")
	}
	if c.Connection == "" {
		return nil, fmt.Errorf("sql compute %s names no connection", c.File)
	}
	conn, ok := e.connection(c.Connection)
	if !ok {
		return nil, fmt.Errorf("sql compute %s: connection %q is not defined", c.File, c.Connection)
	}
	if conn.Postgres == nil {
		return nil, fmt.Errorf("sql compute %s: connection %q is not a postgres connection", c.File, c.Connection)
	}
	return &sqlExecutor{e: e, c: c}, nil
}

// pool returns the connection pool of the named connection, creating it on first
// use: a worker that never runs SQL never connects, and one that does reuses its
// connections across steps. The URL is resolved when the pool is created, so a
// missing environment variable fails the attempt (and a later one, once it is
// set, succeeds) rather than the worker.
func (e *Executors) pool(name string) (*pgxpool.Pool, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, errors.New("the executors are closed")
	}
	if p := e.pools[name]; p != nil {
		return p, nil
	}
	conn, ok := e.Connections[name]
	if !ok || conn.Postgres == nil {
		return nil, fmt.Errorf("connection %q is not defined", name)
	}
	u := conn.Postgres.URL
	if u == "" {
		if conn.Postgres.URLEnv == "" {
			return nil, fmt.Errorf("connection %q has neither url nor url_env", name)
		}
		u = e.getenv(conn.Postgres.URLEnv)
		if u == "" {
			return nil, fmt.Errorf("connection %q: environment variable %s (its url_env) is not set", name, conn.Postgres.URLEnv)
		}
	}
	cfg, err := pgxpool.ParseConfig(u)
	if err != nil {
		return nil, fmt.Errorf("connection %q: %w", name, err)
	}
	cc := cfg.ConnConfig
	// DescribeExec lets the server infer each parameter's type from where it is
	// used (a date column, a timestamptz, text) and caches nothing: a transform
	// file is ad hoc SQL whose tables may be recreated between runs, which is
	// what breaks cached prepared statements.
	cc.DefaultQueryExecMode = pgx.QueryExecModeDescribeExec
	if cc.RuntimeParams["application_name"] == "" {
		cc.RuntimeParams["application_name"] = "freshet"
	}
	// On cancel, ask the server to cancel the running statement (so its locks
	// and work go away now) instead of only dropping the socket, which leaves a
	// long query running until it next talks to the client.
	cc.BuildContextWatcherHandler = func(c *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.CancelRequestContextWatcherHandler{Conn: c, DeadlineDelay: 5 * time.Second}
	}
	p, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		return nil, fmt.Errorf("connection %q: %w", name, err)
	}
	if e.pools == nil {
		e.pools = make(map[string]*pgxpool.Pool)
	}
	e.pools[name] = p
	return p, nil
}

// Execute reads the file (now, so an edit applies to the next attempt), splits
// it, and runs its statements in one transaction with the bind parameters
// @partition (the first key), @partition_start and @partition_end (the step's
// window, NULL when unpartitioned). The window bounds are bound as time.Time in
// their own location: against timestamptz they compare by instant, against a
// date or timestamp by the wall clock of the asset's timezone, which is what a
// partition means. Any error rolls the transaction back, so a failed attempt
// leaves nothing half-written; the engine assigns the data version.
func (x *sqlExecutor) Execute(ctx context.Context, inv Invocation, log LogSink) (Output, error) {
	log = sinkOrDiscard(log)
	file := x.c.File
	if ctx.Err() != nil {
		return Output{}, stopped(ctx, file+" not run")
	}
	src, err := os.ReadFile(resolvePath(inv.Dir, file))
	if err != nil {
		return Output{}, fmt.Errorf("read SQL file: %w", err)
	}
	stmts, err := splitSQL(string(src))
	if err != nil {
		return Output{}, fmt.Errorf("%s:%w", file, err)
	}
	if len(stmts) == 0 {
		return Output{}, fmt.Errorf("%s holds no SQL statement", file)
	}
	for _, s := range stmts {
		if err := s.check(); err != nil {
			return Output{}, fmt.Errorf("%s:%w", file, err)
		}
	}

	args := pgx.NamedArgs{"partition": nil, "partition_start": nil, "partition_end": nil}
	if inv.keys() != nil {
		args["partition"] = inv.partition()
	}
	if !inv.Start.IsZero() {
		args["partition_start"] = inv.Start
	}
	if !inv.End.IsZero() {
		args["partition_end"] = inv.End
	}

	pool, err := x.e.pool(x.c.Connection)
	if err != nil {
		return Output{}, err
	}
	systemf(log, "running %s on connection %s: %d statement%s in one transaction", file, x.c.Connection, len(stmts), plural1(len(stmts)))
	tx, err := pool.Begin(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return Output{}, stopped(ctx, file+" not run")
		}
		return Output{}, fmt.Errorf("%s: connection %q: %w", file, x.c.Connection, err)
	}
	rollback := func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
		defer cancel()
		_ = tx.Rollback(rctx)
	}

	for i, s := range stmts {
		// Rewrite here rather than inside Exec so the error position PostgreSQL
		// reports can be mapped back to a line of the text actually sent.
		sql, sqlArgs, err := args.RewriteQuery(ctx, nil, s.text, nil)
		if err != nil {
			rollback()
			return Output{}, fmt.Errorf("%s:%d: %w", file, s.line, err)
		}
		began := time.Now()
		tag, err := tx.Exec(ctx, sql, sqlArgs...)
		if err != nil {
			rollback()
			if ctx.Err() != nil {
				return Output{}, stopped(ctx, fmt.Sprintf("%s:%d: statement %d stopped, transaction rolled back", file, s.line, i+1))
			}
			return Output{}, sqlError(file, i+1, s, sql, err)
		}
		msg := fmt.Sprintf("%s:%d: %s", file, s.line, tag.String())
		if hasRowCount(tag) {
			msg += fmt.Sprintf(" (%d row%s, %v)", tag.RowsAffected(), plural1(int(tag.RowsAffected())), time.Since(began).Round(time.Millisecond))
		} else {
			msg += fmt.Sprintf(" (%v)", time.Since(began).Round(time.Millisecond))
		}
		systemf(log, "%s", msg)
	}
	if err := tx.Commit(ctx); err != nil {
		rollback()
		if ctx.Err() != nil {
			return Output{}, stopped(ctx, file+": commit stopped, transaction rolled back")
		}
		return Output{}, fmt.Errorf("%s: commit: %w", file, err)
	}
	systemf(log, "%s committed", file)
	return Output{}, nil
}

// sqlError names the file, the line (from PostgreSQL's error position when it
// gives one, else the statement's first line) and PostgreSQL's own explanation.
func sqlError(file string, n int, s sqlStatement, sent string, err error) error {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return fmt.Errorf("%s:%d: statement %d: %w", file, s.line, n, err)
	}
	line := s.line
	where := fmt.Sprintf("statement %d", n)
	if pe.Position > 0 {
		line += linesBefore(sent, int(pe.Position))
	} else {
		where += " (starting at this line)"
	}
	var extra strings.Builder
	for _, kv := range [][2]string{{"DETAIL", pe.Detail}, {"HINT", pe.Hint}, {"CONTEXT", pe.Where}} {
		if kv[1] != "" {
			extra.WriteString("\n" + kv[0] + ": " + kv[1])
		}
	}
	return fmt.Errorf("%s:%d: %s: %w%s", file, line, where, pe, extra.String())
}

// linesBefore counts the newlines before the 1-based character position pos of s
// (PostgreSQL counts characters, not bytes).
func linesBefore(s string, pos int) int {
	n, chars := 0, 0
	for _, r := range s {
		chars++
		if chars >= pos {
			break
		}
		if r == '\n' {
			n++
		}
	}
	return n
}

// hasRowCount reports whether a command tag carries a row count.
func hasRowCount(tag pgconn.CommandTag) bool {
	if tag.Insert() || tag.Update() || tag.Delete() || tag.Select() {
		return true
	}
	s := tag.String()
	for _, p := range []string{"MERGE ", "COPY ", "FETCH ", "MOVE "} {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

func plural1(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// sqlStatement is one statement of an SQL file.
type sqlStatement struct {
	text   string // from its first token to before its terminating semicolon
	line   int    // the 1-based line of its first token
	params []sqlParam
	words  []string // its first three identifiers or keywords, lowercased
}

// sqlParam is one @name placeholder of a statement.
type sqlParam struct {
	name string
	line int
}

// check rejects what cannot work in a file run as one transaction: unknown
// parameters (pgx would silently bind NULL to a misspelt @partiton, and the
// DELETE would delete nothing), and transaction control, which would commit half
// the file or nest a transaction.
func (s sqlStatement) check() error {
	for _, p := range s.params {
		known := false
		for _, k := range sqlParams {
			known = known || p.name == k
		}
		if !known {
			return fmt.Errorf("%d: unknown parameter @%s: the parameters are @partition, @partition_start and @partition_end (for an @ operator, put a space after it)", p.line, p.name)
		}
	}
	w := append(s.words, "", "", "")
	control := false
	switch w[0] {
	case "begin", "commit", "end", "abort":
		control = true
	case "start":
		control = w[1] == "transaction"
	case "prepare":
		control = w[1] == "transaction"
	case "rollback":
		// ROLLBACK [WORK | TRANSACTION] TO [SAVEPOINT] x is fine inside a transaction.
		next := w[1]
		if next == "work" || next == "transaction" {
			next = w[2]
		}
		control = next != "to"
	}
	if control {
		return fmt.Errorf("%d: %s: the file already runs in one transaction, which Freshet commits or rolls back; remove the transaction control", s.line, strings.ToUpper(w[0]))
	}
	return nil
}

// splitSQL splits an SQL file into statements on top-level semicolons (see "How
// an SQL file runs" above). Statements that hold only comments are dropped. An
// unterminated string, identifier, dollar quote or comment is an error naming the
// line where it starts: PostgreSQL would otherwise report it against a statement
// the split made up.
func splitSQL(src string) ([]sqlStatement, error) {
	var (
		stmts      []sqlStatement
		cur        sqlStatement
		start      = -1 // byte offset of the current statement's first token
		line       = 1
		paren      int
		beginDepth int
		// psql's heuristic: the initials of the statement's first identifiers
		// when they are create/or/replace/function/procedure.
		initials [4]byte
		idents   int
	)
	mark := func(i int) {
		if start < 0 {
			start = i
			cur = sqlStatement{line: line}
		}
	}
	finish := func(end int) {
		if start >= 0 {
			cur.text = strings.TrimRightFunc(src[start:end], unicode.IsSpace)
			stmts = append(stmts, cur)
		}
		start, paren, beginDepth, idents = -1, 0, 0, 0
		initials = [4]byte{}
	}
	// skipTo advances i to j, counting newlines.
	skipTo := func(i, j int) int {
		line += strings.Count(src[i:j], "\n")
		return j
	}
	unterminated := func(what string, at int) error {
		return fmt.Errorf("%d: unterminated %s", at, what)
	}

	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == '\n':
			line++
			i++
		case c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v':
			i++
		case c == '-' && i+1 < len(src) && src[i+1] == '-':
			j := strings.IndexByte(src[i:], '\n')
			if j < 0 {
				i = len(src)
			} else {
				i += j // the newline is counted by the loop
			}
		case c == '/' && i+1 < len(src) && src[i+1] == '*':
			at, depth, j := line, 0, i
			for j < len(src) {
				if strings.HasPrefix(src[j:], "/*") {
					depth++
					j += 2
				} else if strings.HasPrefix(src[j:], "*/") {
					depth--
					j += 2
					if depth == 0 {
						break
					}
				} else {
					j++
				}
			}
			if depth > 0 {
				return nil, unterminated("/* comment", at)
			}
			i = skipTo(i, j)
		case c == '\'' || c == '"':
			mark(i)
			at := line
			j, ok := scanQuoted(src, i+1, c, false)
			if !ok {
				return nil, unterminated(map[byte]string{'\'': "quoted string", '"': "quoted identifier"}[c], at)
			}
			i = skipTo(i, j)
		case c == '$':
			mark(i)
			if tag, ok := dollarTag(src[i:]); ok {
				at := line
				k := strings.Index(src[i+len(tag):], tag)
				if k < 0 {
					return nil, unterminated("dollar-quoted string "+tag, at)
				}
				i = skipTo(i, i+len(tag)+k+len(tag))
				break
			}
			// $1 (a positional parameter) or a lone $.
			i++
			for i < len(src) && src[i] >= '0' && src[i] <= '9' {
				i++
			}
		case c == '@' && i+1 < len(src) && (isLetterByte(src[i+1]) || src[i+1] == '_'):
			mark(i)
			j := i + 1
			for j < len(src) && (isLetterByte(src[j]) || src[j] >= '0' && src[j] <= '9' || src[j] == '_') {
				j++
			}
			cur.params = append(cur.params, sqlParam{name: src[i+1 : j], line: line})
			i = j
		case isIdentStart(c):
			mark(i)
			j := i + 1
			for j < len(src) && (isIdentStart(src[j]) || src[j] >= '0' && src[j] <= '9' || src[j] == '$') {
				j++
			}
			if j == i+1 && (c == 'e' || c == 'E') && j < len(src) && src[j] == '\'' {
				// E'...': an escape string, where \' does not end the string.
				at := line
				k, ok := scanQuoted(src, j+1, '\'', true)
				if !ok {
					return nil, unterminated("quoted string", at)
				}
				i = skipTo(i, k)
				break
			}
			word := strings.ToLower(src[i:j])
			if len(cur.words) < 3 {
				cur.words = append(cur.words, word)
			}
			// psql (psqlscan.l): inside CREATE [OR REPLACE] FUNCTION|PROCEDURE, at
			// parenthesis depth 0, BEGIN ... END (and CASE ... END within it) nest, and
			// semicolons inside do not end the statement (BEGIN ATOMIC bodies).
			switch word {
			case "create", "function", "procedure", "or", "replace":
				if idents < len(initials) {
					initials[idents] = word[0]
				}
			}
			idents++
			if initials[0] == 'c' && (initials[1] == 'f' || initials[1] == 'p' ||
				initials[1] == 'o' && initials[2] == 'r' && (initials[3] == 'f' || initials[3] == 'p')) && paren == 0 {
				switch word {
				case "begin":
					beginDepth++
				case "case":
					if beginDepth >= 1 {
						beginDepth++
					}
				case "end":
					if beginDepth > 0 {
						beginDepth--
					}
				}
			}
			i = j
		case c >= '0' && c <= '9':
			mark(i)
			// A number, with whatever letters follow it (1e5, 0x1F, 1_000): they are
			// not the start of an identifier, nor of an E'' string.
			for i < len(src) && (isIdentStart(src[i]) || src[i] >= '0' && src[i] <= '9' || src[i] == '.') {
				i++
			}
		case c == '(' || c == '[':
			mark(i)
			paren++
			i++
		case c == ')' || c == ']':
			mark(i)
			if paren > 0 {
				paren--
			}
			i++
		case c == ';':
			if paren == 0 && beginDepth == 0 {
				finish(i)
			} else {
				mark(i)
			}
			i++
		default:
			mark(i)
			i++
		}
	}
	finish(len(src))
	return stmts, nil
}

// scanQuoted scans a quoted string or identifier whose body starts at i, closed
// by q; a doubled q is an escaped one, and with backslashes a backslash escapes
// the next byte. It returns the offset after the closing quote.
func scanQuoted(src string, i int, q byte, backslashes bool) (int, bool) {
	for i < len(src) {
		switch src[i] {
		case '\\':
			if backslashes {
				i += 2
				continue
			}
		case q:
			if i+1 < len(src) && src[i+1] == q {
				i += 2
				continue
			}
			return i + 1, true
		}
		i++
	}
	return len(src), false
}

// dollarTag returns the opening $tag$ at the start of s: $$ or $ident$, where the
// tag follows identifier rules without $. "$1" is a parameter, not a tag.
func dollarTag(s string) (string, bool) {
	if len(s) < 2 {
		return "", false
	}
	if s[1] == '$' {
		return "$$", true
	}
	if !isIdentStart(s[1]) {
		return "", false
	}
	for j := 2; j < len(s); j++ {
		switch c := s[j]; {
		case c == '$':
			return s[:j+1], true
		case isIdentStart(c) || c >= '0' && c <= '9':
		default:
			return "", false
		}
	}
	return "", false
}

func isLetterByte(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// isIdentStart is PostgreSQL's ident_start: a letter, _ or any non-ASCII byte.
func isIdentStart(c byte) bool { return isLetterByte(c) || c == '_' || c >= utf8.RuneSelf }
