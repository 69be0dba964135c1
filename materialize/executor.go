package materialize

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/freshetdev/freshet/assets"
	"github.com/freshetdev/freshet/store"
)

// Invocation is one attempt of one step, as an executor sees it.
type Invocation struct {
	Asset *assets.Asset
	// Partitions are the step's partition keys in order; [""] for an unpartitioned
	// asset. A batch step has several contiguous keys.
	Partitions []string
	// Start and End are the window from the first partition's start to the last
	// one's end; zero when unpartitioned. They keep the location they are given in
	// (normally the asset's timezone), so RFC 3339 renderings carry its offset.
	Start, End    time.Time
	RunID, StepID uuid.UUID
	Attempt       int
	// Dir is the definitions' directory: the base of relative paths (command Dir,
	// sql File) and the default working directory of commands.
	Dir string
}

// Output is what a step reported. Both fields are optional: an empty DataVersion
// asks the engine for a fresh unique one.
type Output struct {
	DataVersion string
	Metadata    json.RawMessage // a JSON object, or nil
}

// LogSink receives a step's log lines as they come. Executors call Line from
// several goroutines at once (stdout and stderr are read concurrently), so an
// implementation must be safe for concurrent use.
type LogSink interface {
	Line(stream store.LogStream, text string)
}

// Executor runs one attempt of a step. Execute returns when the work ended, never
// earlier: a retry must not race with a previous attempt that is still running.
// When ctx ends (cancel or timeout; the engine sets the cause with
// context.WithCancelCause or context.WithTimeoutCause) the work is stopped and the
// returned error wraps context.Cause(ctx), so the engine can tell a timeout from a
// cancel from a failure with errors.Is.
type Executor interface {
	Execute(ctx context.Context, inv Invocation, log LogSink) (Output, error)
}

// ExitError is a command that exited non-zero or died by a signal.
type ExitError struct {
	// Code is the exit status, or -1 when the process was killed by a signal.
	Code int
	// Signal names the signal that killed the process ("SIGKILL"), or is empty.
	Signal string
	// Stderr holds the last lines the command wrote to stderr: usually the reason,
	// so the error message explains the failure without opening the log.
	Stderr string
}

func (e *ExitError) Error() string {
	msg := "command " + e.status()
	if e.Stderr != "" {
		msg += "; stderr ends with:\n" + e.Stderr
	}
	return msg
}

// status says how the process ended: "exited with status 3", "killed by signal SIGKILL".
func (e *ExitError) status() string {
	if e.Signal != "" {
		return "killed by signal " + e.Signal
	}
	return fmt.Sprintf("exited with status %d", e.Code)
}

// Defaults of Executors' zero fields.
const (
	defaultGrace        = 10 * time.Second
	defaultMaxLineBytes = 64 << 10
)

// Executors picks the executor of an asset's compute kind and owns what executors
// share across steps: the SQL connection pools, the HTTP client, the settings.
// The zero value is ready to use; Executors is safe for concurrent use.
type Executors struct {
	// Connections are the named database connections of the definitions.
	Connections map[string]assets.Connection
	// Getenv resolves a connection's URLEnv; nil means os.Getenv. It is a field so
	// tests and embedding programs need not touch the process environment.
	Getenv func(string) string
	// Grace is how long a stopped command (and anything it left running in its
	// process group) gets between SIGTERM and SIGKILL; 0 means 10s.
	Grace time.Duration
	// HTTPClient sends the requests of HTTP compute; nil means a client with
	// connect and TLS timeouts but no overall timeout (the step's timeout bounds a
	// call, and a synchronous job endpoint may legitimately take that long).
	HTTPClient *http.Client
	// MaxLineBytes caps a log line; longer lines are split into several, so one
	// runaway line (a progress bar, a minified blob) cannot exhaust memory. 0 means 64 KiB.
	MaxLineBytes int

	mu       sync.Mutex
	pools    map[string]*pgxpool.Pool
	retired  []*pgxpool.Pool // pools of connections redefined since: closed by Close
	outDir   string          // where commands' FRESHET_OUTPUT files go; made on first use
	closed   bool
	httpOnce sync.Once
	http     *http.Client
}

// For returns the executor of compute c. It rejects what can never run (no argv,
// an undefined connection, no URL, no function) before any attempt is made.
func (e *Executors) For(c assets.Compute) (Executor, error) {
	switch c := c.(type) {
	case nil:
		return nil, errors.New("no compute: a source asset cannot be materialized")
	case assets.CommandCompute:
		return e.commandExecutor(c)
	case *assets.CommandCompute:
		return e.commandExecutor(*c)
	case assets.SQLCompute:
		return e.sqlExecutor(c)
	case *assets.SQLCompute:
		return e.sqlExecutor(*c)
	case assets.HTTPCompute:
		return e.httpExecutor(c)
	case *assets.HTTPCompute:
		return e.httpExecutor(*c)
	case assets.FuncCompute:
		return e.funcExecutor(c)
	case *assets.FuncCompute:
		return e.funcExecutor(*c)
	default:
		return nil, fmt.Errorf("no executor for compute kind %q", c.Kind())
	}
}

// SetConnections switches to the named connections of reloaded definitions. A
// connection whose definition changed or went gets a new pool at its next use;
// its old pool stays open for the steps still using it, until Close.
func (e *Executors) SetConnections(conns map[string]assets.Connection) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for name, p := range e.pools {
		if !sameConnection(conns[name], e.Connections[name]) {
			e.retired = append(e.retired, p)
			delete(e.pools, name)
		}
	}
	e.Connections = conns
}

func sameConnection(a, b assets.Connection) bool {
	if a.Postgres == nil || b.Postgres == nil {
		return a.Postgres == b.Postgres
	}
	return *a.Postgres == *b.Postgres
}

// connection returns the named connection's definition.
func (e *Executors) connection(name string) (assets.Connection, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	c, ok := e.Connections[name]
	return c, ok
}

// Close closes the SQL connection pools. Steps still running on them fail; an
// SQL executor used after Close reports that the executors are closed.
func (e *Executors) Close() {
	e.mu.Lock()
	pools, retired, outDir := e.pools, e.retired, e.outDir
	e.pools, e.retired, e.outDir = nil, nil, ""
	e.closed = true
	e.mu.Unlock()
	for _, p := range pools {
		p.Close()
	}
	for _, p := range retired {
		p.Close()
	}
	if outDir != "" {
		_ = os.RemoveAll(outDir)
	}
}

// outputSeq makes FRESHET_OUTPUT names unique within the process even when one
// attempt's command runs twice (the observe command of a source, say).
var outputSeq atomic.Int64

// outputDir returns the private directory (mode 0700, in os.TempDir) of the
// commands' FRESHET_OUTPUT files, making it on first use; Close removes it.
func (e *Executors) outputDir() (string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.outDir != "" {
		return e.outDir, nil
	}
	if e.closed {
		return "", errors.New("the executors are closed")
	}
	dir, err := os.MkdirTemp("", "freshet-output-")
	if err != nil {
		return "", fmt.Errorf("create the directory of FRESHET_OUTPUT files: %w", err)
	}
	e.outDir = dir
	return dir, nil
}

func (e *Executors) grace() time.Duration {
	if e.Grace > 0 {
		return e.Grace
	}
	return defaultGrace
}

func (e *Executors) maxLineBytes() int {
	if e.MaxLineBytes > 0 {
		return e.MaxLineBytes
	}
	return defaultMaxLineBytes
}

func (e *Executors) getenv(name string) string {
	if e.Getenv != nil {
		return e.Getenv(name)
	}
	return os.Getenv(name)
}

// keys returns the step's real partition keys: nil for an unpartitioned asset,
// whose single partition has the internal key "".
func (inv *Invocation) keys() []string {
	if len(inv.Partitions) == 0 || len(inv.Partitions) == 1 && inv.Partitions[0] == "" {
		return nil
	}
	return inv.Partitions
}

// partition returns the first partition key, the one {partition} and @partition
// stand for ("" when unpartitioned). A batch step also gets the whole window and
// the list of keys, which is what batch-aware code should use.
func (inv *Invocation) partition() string {
	if len(inv.Partitions) == 0 {
		return ""
	}
	return inv.Partitions[0]
}

func (inv *Invocation) assetKey() string {
	if inv.Asset == nil {
		return ""
	}
	return string(inv.Asset.Key)
}

// formatTime renders a window bound as RFC 3339 in its own location, or "" for
// the zero time of an unpartitioned step.
func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Format(time.RFC3339)
}

// placeholders are the values of the {word} placeholders of command arguments.
func (inv *Invocation) placeholders() map[string]string {
	return map[string]string{
		"asset":     inv.assetKey(),
		"partition": inv.partition(),
		"start":     formatTime(inv.Start),
		"end":       formatTime(inv.End),
		"run_id":    inv.RunID.String(),
	}
}

// substitute replaces each {word} of s whose word is in vars, in one left-to-right
// pass: a substituted value is never scanned again, so a partition key or asset
// key cannot inject another placeholder. Unknown {words} stay as they are, since
// arguments may legitimately contain braces (JSON, jq filters, awk programs).
func substitute(s string, vars map[string]string) string {
	if !strings.Contains(s, "{") {
		return s
	}
	var b strings.Builder
	for {
		i := strings.IndexByte(s, '{')
		if i < 0 {
			break
		}
		j := strings.IndexByte(s[i+1:], '}')
		if j < 0 {
			break
		}
		name := s[i+1 : i+1+j]
		if v, ok := vars[name]; ok {
			b.WriteString(s[:i])
			b.WriteString(v)
			s = s[i+1+j+1:]
			continue
		}
		// Not a placeholder: keep the brace and look for the next one after it, so
		// "{{partition}}" still substitutes the inner placeholder.
		b.WriteString(s[:i+1])
		s = s[i+1:]
	}
	b.WriteString(s)
	return b.String()
}

// stepOutput is the JSON a step reports: the FRESHET_OUTPUT file of a command or
// the response body of an HTTP call.
type stepOutput struct {
	DataVersion *json.RawMessage `json:"data_version"`
	Metadata    *json.RawMessage `json:"metadata"`
}

// toOutput checks the fields' types, which encoding/json cannot say clearly for
// us: data_version must be a string, metadata an object (or null).
func (o stepOutput) toOutput() (Output, error) {
	var out Output
	if o.DataVersion != nil {
		raw := *o.DataVersion
		if !isJSONKind(raw, '"', 'n') {
			return Output{}, fmt.Errorf("data_version must be a string, not %s", jsonKind(raw))
		}
		if err := json.Unmarshal(raw, &out.DataVersion); err != nil {
			return Output{}, fmt.Errorf("data_version: %v", err)
		}
	}
	if o.Metadata != nil {
		raw := *o.Metadata
		switch {
		case isJSONKind(raw, 'n'):
		case isJSONKind(raw, '{'):
			out.Metadata = append(json.RawMessage(nil), raw...)
		default:
			return Output{}, fmt.Errorf("metadata must be an object, not %s", jsonKind(raw))
		}
	}
	return out, nil
}

func isJSONKind(raw json.RawMessage, first ...byte) bool {
	s := strings.TrimLeft(string(raw), " \t\r\n")
	return s != "" && strings.IndexByte(string(first), s[0]) >= 0
}

// jsonKind names the JSON type of raw for error messages.
func jsonKind(raw json.RawMessage) string {
	s := strings.TrimLeft(string(raw), " \t\r\n")
	if s == "" {
		return "empty"
	}
	switch s[0] {
	case '"':
		return "a string"
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	default:
		return "a number"
	}
}

// cleanText makes s storable as a log line or message: valid UTF-8 without NUL
// bytes (PostgreSQL text holds neither), and no trailing carriage return (CRLF
// output). Programs write bytes, the store keeps text; this is where one becomes
// the other.
func cleanText(s string) string {
	s = strings.TrimSuffix(s, "\r")
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	if strings.IndexByte(s, 0) >= 0 {
		s = strings.ReplaceAll(s, "\x00", "\uFFFD")
	}
	return s
}

// lineWriter turns a byte stream into log lines: one Line per '\n'-terminated
// line, a final unterminated line on flush, and lines longer than max split into
// several (cut at a UTF-8 character boundary). It is an io.Writer so any output
// stream can be pointed at it; it is not safe for concurrent Writes, and each
// stream gets its own.
type lineWriter struct {
	sink   LogSink
	stream store.LogStream
	max    int
	buf    []byte
	// tail, when set, keeps the last lines written (the stderr of a command, for
	// its ExitError).
	tail *tailLines
}

func (w *lineWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := indexByte(p, '\n')
		if i < 0 {
			w.buf = append(w.buf, p...)
			w.emitFull()
			break
		}
		w.buf = append(w.buf, p[:i]...)
		w.emitFull()
		w.emit(w.buf)
		w.buf = w.buf[:0]
		p = p[i+1:]
	}
	return n, nil
}

// emitFull emits max-byte pieces while the pending line is longer than max, so
// memory stays bounded however long the line.
func (w *lineWriter) emitFull() {
	for len(w.buf) > w.max {
		cut := w.max
		// Back off to the start of a UTF-8 character (at most 3 bytes) so the
		// pieces do not each end in a broken character.
		for k := cut; k > cut-utf8.UTFMax && k > 0; k-- {
			if utf8.RuneStart(w.buf[k]) {
				cut = k
				break
			}
		}
		w.emit(w.buf[:cut])
		w.buf = append(w.buf[:0], w.buf[cut:]...)
	}
}

func (w *lineWriter) emit(b []byte) {
	text := cleanText(string(b))
	w.sink.Line(w.stream, text)
	if w.tail != nil {
		w.tail.add(text)
	}
}

// Flush emits the last line if it had no newline.
func (w *lineWriter) Flush() {
	if len(w.buf) > 0 {
		w.emit(w.buf)
		w.buf = w.buf[:0]
	}
}

func indexByte(p []byte, c byte) int {
	for i, b := range p {
		if b == c {
			return i
		}
	}
	return -1
}

// tailLines keeps the last lines of a stream, bounded in count and bytes.
type tailLines struct {
	mu       sync.Mutex
	lines    []string
	maxLines int
	maxBytes int
}

func (t *tailLines) add(s string) {
	if len(s) > t.maxBytes {
		s = s[:t.maxBytes] + "…"
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lines = append(t.lines, s)
	if len(t.lines) > t.maxLines {
		t.lines = append(t.lines[:0], t.lines[len(t.lines)-t.maxLines:]...)
	}
}

func (t *tailLines) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	lines := t.lines
	// Drop blank trailing lines and keep the total within maxBytes, newest first.
	for len(lines) > 0 && strings.TrimSpace(lines[len(lines)-1]) == "" {
		lines = lines[:len(lines)-1]
	}
	total, first := 0, len(lines)
	for first > 0 && (first == len(lines) || total+len(lines[first-1]) <= t.maxBytes) {
		total += len(lines[first-1]) + 1
		first--
	}
	return cleanText(strings.Join(lines[first:], "\n"))
}

// systemf writes one of Freshet's own lines into a step's log.
func systemf(log LogSink, format string, args ...any) {
	log.Line(store.System, fmt.Sprintf(format, args...))
}

// discardSink is used when Execute is given a nil LogSink.
type discardSink struct{}

func (discardSink) Line(store.LogStream, string) {}

func sinkOrDiscard(log LogSink) LogSink {
	if log == nil {
		return discardSink{}
	}
	return log
}

// stopped wraps the cause of ctx's end into the error of an attempt that was
// stopped, with what happened to the work.
func stopped(ctx context.Context, what string) error {
	cause := context.Cause(ctx)
	if cause == nil {
		cause = context.Canceled
	}
	return fmt.Errorf("%s: %w", what, cause)
}
