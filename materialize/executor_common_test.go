package materialize

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/freshetdev/freshet/assets"
	"github.com/freshetdev/freshet/store"
)

// exLine is one line an executor logged.
type exLine struct {
	stream store.LogStream
	text   string
}

// exSink records log lines; onLine, when set, sees each line as it comes (to
// cancel a step once it has visibly started, without sleeping).
type exSink struct {
	mu     sync.Mutex
	lines  []exLine
	onLine func(exLine)
}

func (s *exSink) Line(stream store.LogStream, text string) {
	s.mu.Lock()
	s.lines = append(s.lines, exLine{stream, text})
	f := s.onLine
	s.mu.Unlock()
	if f != nil {
		f(exLine{stream, text})
	}
}

// of returns the texts of one stream, in order.
func (s *exSink) of(stream store.LogStream) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, l := range s.lines {
		if l.stream == stream {
			out = append(out, l.text)
		}
	}
	return out
}

// has reports whether some line of stream contains sub.
func (s *exSink) has(stream store.LogStream, sub string) bool {
	for _, l := range s.of(stream) {
		if strings.Contains(l, sub) {
			return true
		}
	}
	return false
}

// cancelOn returns a context canceled with cause as soon as a line of stream
// containing sub is logged.
func (s *exSink) cancelOn(t *testing.T, stream store.LogStream, sub string, cause error) context.Context {
	ctx, cancel := context.WithCancelCause(context.Background())
	t.Cleanup(func() { cancel(nil) })
	var once sync.Once
	s.onLine = func(l exLine) {
		if l.stream == stream && strings.Contains(l.text, sub) {
			once.Do(func() { cancel(cause) })
		}
	}
	return ctx
}

var (
	exRunID  = uuid.MustParse("11111111-2222-3333-4444-555555555555")
	exStepID = uuid.MustParse("66666666-7777-8888-9999-aaaaaaaaaaaa")
)

// exInv is an invocation of asset sales/orders over daily partitions keys
// (unpartitioned when keys is empty), in dir.
func exInv(dir string, keys ...string) Invocation {
	inv := Invocation{
		Asset:      &assets.Asset{Key: "sales/orders"},
		Partitions: []string{""},
		RunID:      exRunID,
		StepID:     exStepID,
		Attempt:    2,
		Dir:        dir,
	}
	if len(keys) > 0 {
		inv.Partitions = keys
		first, _ := time.Parse(time.DateOnly, keys[0])
		last, _ := time.Parse(time.DateOnly, keys[len(keys)-1])
		inv.Start, inv.End = first, last.AddDate(0, 0, 1)
	}
	return inv
}

// exWrite writes a file into dir and returns its path.
func exWrite(t *testing.T, dir, name, content string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestExecutorFor(t *testing.T) {
	t.Parallel()
	e := &Executors{Connections: map[string]assets.Connection{
		"wh":    {Postgres: &assets.PostgresConnection{URLEnv: "WH_URL"}},
		"other": {},
	}}
	defer e.Close()
	fn := func(context.Context, assets.StepInput) (assets.StepOutput, error) { return assets.StepOutput{}, nil }
	tests := []struct {
		name    string
		compute assets.Compute
		wantErr string
	}{
		{"command", assets.CommandCompute{Argv: []string{"true"}}, ""},
		{"command pointer", &assets.CommandCompute{Argv: []string{"true"}}, ""},
		{"empty argv", assets.CommandCompute{}, "argv is empty"},
		{"sql", assets.SQLCompute{File: "t.sql", Connection: "wh"}, ""},
		{"sql undefined connection", assets.SQLCompute{File: "t.sql", Connection: "nope"}, `connection "nope" is not defined`},
		{"sql not postgres", assets.SQLCompute{File: "t.sql", Connection: "other"}, "not a postgres connection"},
		{"sql no file", assets.SQLCompute{Connection: "wh"}, "no file"},
		{"http", assets.HTTPCompute{URL: "https://example.com/hook"}, ""},
		{"http relative URL", assets.HTTPCompute{URL: "/hook"}, "absolute http"},
		{"http no URL", assets.HTTPCompute{}, "no URL"},
		{"func", assets.FuncCompute{Name: "f", Fn: fn}, ""},
		{"func nil", assets.FuncCompute{Name: "f"}, "no function"},
		{"source", nil, "source asset"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ex, err := e.For(tt.compute)
			if tt.wantErr == "" {
				if err != nil || ex == nil {
					t.Fatalf("For: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("For: error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestExecutorSubstitute(t *testing.T) {
	t.Parallel()
	vars := map[string]string{"partition": "2026-04-08", "asset": "a/b", "evil": "{partition}"}
	tests := []struct{ in, want string }{
		{"{partition}", "2026-04-08"},
		{"--date={partition}", "--date=2026-04-08"},
		{"{asset}:{partition}", "a/b:2026-04-08"},
		{"{unknown}", "{unknown}"},
		{"{{partition}}", "{2026-04-08}"},
		{`{"a": 1}`, `{"a": 1}`},
		{"{", "{"},
		{"}{", "}{"},
		{"{evil}", "{partition}"}, // substituted values are not substituted again
		{"", ""},
	}
	for _, tt := range tests {
		if got := substitute(tt.in, vars); got != tt.want {
			t.Errorf("substitute(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestExecutorLineWriter(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		max    int
		writes []string
		want   []string
	}{
		{"lines", 100, []string{"a\nb\n"}, []string{"a", "b"}},
		{"last line without newline", 100, []string{"a\nb"}, []string{"a", "b"}},
		{"split across writes", 100, []string{"he", "llo\nwo", "rld\n"}, []string{"hello", "world"}},
		{"empty lines kept", 100, []string{"\n\n"}, []string{"", ""}},
		{"crlf", 100, []string{"a\r\nb\r\n"}, []string{"a", "b"}},
		{"long line split", 4, []string{"abcdefghij\n"}, []string{"abcd", "efgh", "ij"}},
		{"long line across writes", 4, []string{"abc", "def", "ghi"}, []string{"abcd", "efgh", "i"}},
		{"split at a character boundary", 4, []string{"abcé\n"}, []string{"abc", "é"}},
		{"invalid utf-8 and nul", 100, []string{"a\xffb\x00c\n"}, []string{"a\uFFFDb\uFFFDc"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sink := &exSink{}
			w := &lineWriter{sink: sink, stream: store.Stdout, max: tt.max}
			for _, s := range tt.writes {
				w.Write([]byte(s))
			}
			w.Flush()
			got := sink.of(store.Stdout)
			if strings.Join(got, "|") != strings.Join(tt.want, "|") || len(got) != len(tt.want) {
				t.Fatalf("lines %q, want %q", got, tt.want)
			}
		})
	}
}

func TestExecutorOutputJSON(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    Output
		wantErr string
	}{
		{`{}`, Output{}, ""},
		{`{"data_version": "abc"}`, Output{DataVersion: "abc"}, ""},
		{`{"data_version": null, "metadata": null}`, Output{}, ""},
		{`{"metadata": {"rows": 3}}`, Output{Metadata: json.RawMessage(`{"rows": 3}`)}, ""},
		{`{"data_version": 42}`, Output{}, "data_version must be a string, not a number"},
		{`{"metadata": [1]}`, Output{}, "metadata must be an object, not an array"},
		{`{"metadata": "x"}`, Output{}, "metadata must be an object, not a string"},
	}
	for _, tt := range tests {
		var o stepOutput
		if err := json.Unmarshal([]byte(tt.in), &o); err != nil {
			t.Fatal(err)
		}
		got, err := o.toOutput()
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%s: error %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got.DataVersion != tt.want.DataVersion || string(got.Metadata) != string(tt.want.Metadata) {
			t.Errorf("%s: got %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
}

func TestExecutorExitErrorMessage(t *testing.T) {
	t.Parallel()
	e := &ExitError{Code: 3, Stderr: "boom"}
	if got := e.Error(); got != "command exited with status 3; stderr ends with:\nboom" {
		t.Errorf("Error() = %q", got)
	}
	e = &ExitError{Code: -1, Signal: "SIGKILL"}
	if got := e.Error(); got != "command killed by signal SIGKILL" {
		t.Errorf("Error() = %q", got)
	}
}
