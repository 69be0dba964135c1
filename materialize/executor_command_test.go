package materialize

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/freshetdev/freshet/assets"
	"github.com/freshetdev/freshet/store"
)

// exRun runs a command compute whose program is the POSIX sh script body,
// written as run.sh into a fresh definitions directory.
func exRun(t *testing.T, e *Executors, ctx context.Context, body string, args []string, c assets.CommandCompute, inv Invocation, sink *exSink) (Output, error) {
	t.Helper()
	if inv.Dir == "" {
		inv.Dir = t.TempDir()
	}
	script := exWrite(t, inv.Dir, filepath.Join(c.Dir, "run.sh"), "#!/bin/sh\n"+body, 0o755)
	if c.Argv == nil {
		c.Argv = append([]string{script}, args...)
	}
	ex, err := e.For(c)
	if err != nil {
		t.Fatalf("For: %v", err)
	}
	return ex.Execute(ctx, inv, sink)
}

func TestExecutorCommandPlaceholdersAndEnv(t *testing.T) {
	t.Parallel()
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	berlinInv := exInv("", "2026-04-08")
	berlinInv.Start = time.Date(2026, 4, 8, 0, 0, 0, 0, berlin)
	berlinInv.End = time.Date(2026, 4, 9, 0, 0, 0, 0, berlin)

	tests := []struct {
		name       string
		inv        Invocation
		wantArgs   []string // {asset} {partition} {start} {end} {run_id}
		wantKeys   string
		wantStartE string
	}{
		{
			name:     "unpartitioned",
			inv:      exInv(""),
			wantArgs: []string{"sales/orders", "", "", "", exRunID.String()},
		},
		{
			name:     "one daily partition",
			inv:      exInv("", "2026-04-08"),
			wantArgs: []string{"sales/orders", "2026-04-08", "2026-04-08T00:00:00Z", "2026-04-09T00:00:00Z", exRunID.String()},
			wantKeys: "2026-04-08",
		},
		{
			name:     "batch",
			inv:      exInv("", "2026-04-08", "2026-04-09", "2026-04-10"),
			wantArgs: []string{"sales/orders", "2026-04-08", "2026-04-08T00:00:00Z", "2026-04-11T00:00:00Z", exRunID.String()},
			wantKeys: "2026-04-08,2026-04-09,2026-04-10",
		},
		{
			name:     "timezone keeps its offset",
			inv:      berlinInv,
			wantArgs: []string{"sales/orders", "2026-04-08", "2026-04-08T00:00:00+02:00", "2026-04-09T00:00:00+02:00", exRunID.String()},
			wantKeys: "2026-04-08",
		},
	}
	body := `for a in "$@"; do echo "arg=$a"; done
echo "pwd=$(pwd)"
env | grep -E '^(FRESHET_|MY_|PATH=)' | sort
`
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sink := &exSink{}
			c := assets.CommandCompute{
				Dir: "sub",
				Env: map[string]string{"MY_VAR": "x y", "FRESHET_ASSET": "shadowed"},
			}
			inv := tt.inv
			inv.Dir = t.TempDir()
			exWrite(t, inv.Dir, "sub/run.sh", "#!/bin/sh\n"+body, 0o755)
			// A relative program runs from the working directory (Dir, under the
			// definitions); arguments containing spaces or braces stay one argument.
			c.Argv = []string{"./run.sh", "{asset}", "{partition}", "{start}", "{end}", "{run_id}", "--x={unknown}", "a b", "{partition}/{partition}"}
			ex, err := (&Executors{}).For(c)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := ex.Execute(context.Background(), inv, sink); err != nil {
				t.Fatalf("Execute: %v", err)
			}
			out := sink.of(store.Stdout)
			var args []string
			env := map[string]string{}
			for _, l := range out {
				if a, ok := strings.CutPrefix(l, "arg="); ok {
					args = append(args, a)
				} else if k, v, ok := strings.Cut(l, "="); ok {
					env[k] = v
				}
			}
			p := tt.wantArgs[1]
			want := append(slices.Clone(tt.wantArgs), "--x={unknown}", "a b", p+"/"+p)
			if !slices.Equal(args, want) {
				t.Errorf("args %q, want %q", args, want)
			}
			wantEnv := map[string]string{
				"FRESHET_ASSET":           "sales/orders",
				"FRESHET_PARTITION":       tt.wantArgs[1],
				"FRESHET_PARTITION_START": tt.wantArgs[2],
				"FRESHET_PARTITION_END":   tt.wantArgs[3],
				"FRESHET_PARTITION_KEYS":  tt.wantKeys,
				"FRESHET_RUN_ID":          exRunID.String(),
				"FRESHET_STEP_ID":         exStepID.String(),
				"FRESHET_ATTEMPT":         "2",
				"MY_VAR":                  "x y",
				"PATH":                    os.Getenv("PATH"),
			}
			for k, v := range wantEnv {
				if got, ok := env[k]; !ok || got != v {
					t.Errorf("%s=%q (set: %v), want %q", k, got, ok, v)
				}
			}
			if !strings.HasPrefix(env["FRESHET_OUTPUT"], os.TempDir()) {
				t.Errorf("FRESHET_OUTPUT=%q, want a file in %s", env["FRESHET_OUTPUT"], os.TempDir())
			}
			if got, want := env["pwd"], filepath.Join(inv.Dir, "sub"); got != want {
				t.Errorf("working directory %q, want %q", got, want)
			}
			if !sink.has(store.System, "running ./run.sh sales/orders") || !sink.has(store.System, "'a b'") {
				t.Errorf("no command line in the system log: %q", sink.of(store.System))
			}
		})
	}
}

func TestExecutorCommandOutputFile(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		content string // written to FRESHET_OUTPUT; "-" writes nothing
		want    Output
		wantErr string
	}{
		{name: "not written", content: "-"},
		{name: "empty", content: ""},
		{name: "whitespace", content: " \n"},
		{name: "data version", content: `{"data_version": "sha256:abc"}`, want: Output{DataVersion: "sha256:abc"}},
		{name: "metadata", content: "{\n  \"data_version\": \"7\",\n  \"metadata\": {\"rows\": 42, \"path\": \"s3://b/k\"}\n}\n",
			want: Output{DataVersion: "7", Metadata: []byte(`{"rows": 42, "path": "s3://b/k"}`)}},
		{name: "not JSON", content: "rows=42", wantErr: "invalid JSON at line 1"},
		{name: "syntax error line", content: "{\n\"data_version\": \"a\",\n\"metadata\": {,}\n}", wantErr: "invalid JSON at line 3"},
		{name: "truncated", content: `{"data_version": "a"`, wantErr: "unexpected end"},
		{name: "array", content: `[1, 2]`, wantErr: "must hold a JSON object like"},
		{name: "number data version", content: `{"data_version": 42}`, wantErr: "data_version must be a string, not a number"},
		{name: "metadata not an object", content: `{"metadata": [1]}`, wantErr: "metadata must be an object, not an array"},
		{name: "misspelt field", content: `{"dataversion": "a"}`, wantErr: `unknown field "dataversion"`},
		{name: "trailing data", content: `{} {}`, wantErr: "unexpected data after the JSON object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sink := &exSink{}
			body := `echo "output=$FRESHET_OUTPUT"` + "\n"
			if tt.content != "-" {
				body += `printf '%s' "$CONTENT" > "$FRESHET_OUTPUT"` + "\n"
			}
			c := assets.CommandCompute{Env: map[string]string{"CONTENT": tt.content}}
			out, err := exRun(t, &Executors{}, context.Background(), body, nil, c, exInv(""), sink)
			path := strings.TrimPrefix(sink.of(store.Stdout)[0], "output=")
			if _, statErr := os.Stat(path); !errors.Is(statErr, os.ErrNotExist) {
				t.Errorf("output file %s not removed after the step: %v", path, statErr)
			}
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("no error, want %q", tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), "FRESHET_OUTPUT file "+path) {
					t.Fatalf("error %q, want it to name %s and contain %q", err, path, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Execute: %v", err)
			}
			if out.DataVersion != tt.want.DataVersion || string(out.Metadata) != string(tt.want.Metadata) {
				t.Fatalf("output %q %s, want %q %s", out.DataVersion, out.Metadata, tt.want.DataVersion, tt.want.Metadata)
			}
		})
	}
}

func TestExecutorCommandFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		body       string
		mode       os.FileMode
		compute    assets.CommandCompute // Argv nil: the script
		wantCode   int
		wantSignal string
		wantErr    string // for errors that are not an ExitError
		wantStderr []string
		notStderr  []string
	}{
		{
			name:       "exit status and stderr tail",
			body:       "echo to stdout\ni=1\nwhile [ $i -le 30 ]; do echo \"problem $i\" >&2; i=$((i+1)); done\nexit 3\n",
			wantCode:   3,
			wantStderr: []string{"problem 11", "problem 30"},
			notStderr:  []string{"problem 10\n", "to stdout"},
		},
		{
			name:       "killed by a signal",
			body:       "echo dying >&2\nkill -KILL $$\n",
			wantCode:   -1,
			wantSignal: "SIGKILL",
			wantStderr: []string{"dying"},
		},
		{
			name:     "exit status without stderr",
			body:     "exit 1\n",
			wantCode: 1,
		},
		{name: "program not in PATH", compute: assets.CommandCompute{Argv: []string{"freshet-no-such-program", "x"}},
			wantErr: `program "freshet-no-such-program" not found in PATH`},
		{name: "relative program missing", compute: assets.CommandCompute{Argv: []string{"./nope.sh"}},
			wantErr: `program "./nope.sh" not found (no file `},
		{name: "not executable", body: "exit 0\n", mode: 0o644, wantErr: "is not executable"},
		{name: "script without #!", body: "-", wantErr: "needs a #! line"},
		{name: "missing working directory", body: "exit 0\n", compute: assets.CommandCompute{Argv: []string{"true"}, Dir: "nodir"},
			wantErr: "working directory of the command"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			c := tt.compute
			if c.Argv == nil {
				mode := tt.mode
				if mode == 0 {
					mode = 0o755
				}
				content := "#!/bin/sh\n" + tt.body
				if tt.body == "-" {
					content = "echo no interpreter line\n"
				}
				c.Argv = []string{exWrite(t, dir, "run.sh", content, mode)}
			}
			ex, err := (&Executors{}).For(c)
			if err != nil {
				t.Fatal(err)
			}
			sink := &exSink{}
			_, err = ex.Execute(context.Background(), exInv(dir), sink)
			if err == nil {
				t.Fatal("no error")
			}
			var ee *ExitError
			if tt.wantErr != "" {
				if errors.As(err, &ee) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %q, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if !errors.As(err, &ee) {
				t.Fatalf("error %T %q, want an *ExitError", err, err)
			}
			if ee.Code != tt.wantCode || ee.Signal != tt.wantSignal {
				t.Errorf("code %d signal %q, want %d %q", ee.Code, ee.Signal, tt.wantCode, tt.wantSignal)
			}
			for _, s := range tt.wantStderr {
				if !strings.Contains(ee.Stderr, s) || !strings.Contains(err.Error(), s) {
					t.Errorf("stderr tail %q (error %q) lacks %q", ee.Stderr, err, s)
				}
			}
			for _, s := range tt.notStderr {
				if strings.Contains(ee.Stderr+"\n", s) {
					t.Errorf("stderr tail %q holds %q", ee.Stderr, s)
				}
			}
			if tt.name == "exit status and stderr tail" {
				if got := sink.of(store.Stderr); len(got) != 30 || got[0] != "problem 1" {
					t.Errorf("stderr lines %q, want all 30", got)
				}
				if got := sink.of(store.Stdout); !slices.Equal(got, []string{"to stdout"}) {
					t.Errorf("stdout lines %q", got)
				}
			}
		})
	}
}

var errExTestCancel = errors.New("canceled by the test")

func TestExecutorCommandCancelSendsSIGTERM(t *testing.T) {
	t.Parallel()
	sink := &exSink{}
	ctx := sink.cancelOn(t, store.Stdout, "ready", errExTestCancel)
	body := `trap 'echo "got TERM"; exit 0' TERM
echo ready
while :; do sleep 1; done
`
	// A long grace: the script must end on SIGTERM, never need the SIGKILL.
	_, err := exRun(t, &Executors{Grace: 10 * time.Minute}, ctx, body, nil, assets.CommandCompute{}, exInv(""), sink)
	if !errors.Is(err, errExTestCancel) {
		t.Fatalf("error %v, want one wrapping the cause", err)
	}
	if !sink.has(store.Stdout, "got TERM") {
		t.Errorf("the script's TERM trap did not run; stdout %q", sink.of(store.Stdout))
	}
	if sink.has(store.System, "SIGKILL") {
		t.Errorf("SIGKILL was needed: %q", sink.of(store.System))
	}
}

func TestExecutorCommandSIGKILLAfterGrace(t *testing.T) {
	t.Parallel()
	sink := &exSink{}
	ctx := sink.cancelOn(t, store.Stdout, "ready", errExTestCancel)
	body := `trap '' TERM
echo ready
while :; do sleep 1; done
`
	_, err := exRun(t, &Executors{Grace: 100 * time.Millisecond}, ctx, body, nil, assets.CommandCompute{}, exInv(""), sink)
	if !errors.Is(err, errExTestCancel) {
		t.Fatalf("error %v, want one wrapping the cause", err)
	}
	if !strings.Contains(err.Error(), "SIGKILL") {
		t.Errorf("error %q does not say the command was killed", err)
	}
	if !sink.has(store.System, "sending SIGKILL") {
		t.Errorf("no SIGKILL in the system log: %q", sink.of(store.System))
	}
}

func TestExecutorCommandTimeoutCause(t *testing.T) {
	t.Parallel()
	errTimedOut := errors.New("step timed out")
	ctx, cancel := context.WithTimeoutCause(context.Background(), 50*time.Millisecond, errTimedOut)
	defer cancel()
	_, err := exRun(t, &Executors{}, ctx, "exec sleep 600\n", nil, assets.CommandCompute{}, exInv(""), &exSink{})
	if !errors.Is(err, errTimedOut) {
		t.Fatalf("error %v, want one wrapping the timeout cause", err)
	}
}

func TestExecutorCommandCanceledBeforeStart(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(errExTestCancel)
	dir := t.TempDir()
	marker := filepath.Join(dir, "ran")
	_, err := exRun(t, &Executors{}, ctx, "touch "+marker+"\n", nil, assets.CommandCompute{}, exInv(dir), &exSink{})
	if !errors.Is(err, errExTestCancel) {
		t.Fatalf("error %v, want the cause", err)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("the command ran although ctx had ended")
	}
}

// exProcessGone reports whether pid has exited (it may linger as a zombie when
// no init reaps orphans).
func exProcessGone(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return syscall.Kill(pid, 0) != nil
	}
	i := strings.LastIndexByte(string(stat), ')')
	return i >= 0 && strings.HasPrefix(string(stat[i+1:]), " Z")
}

func TestExecutorCommandLeftoverChildren(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		body     string
		wantKill bool
	}{
		{
			// The child inherits stdout: reading "until EOF" would wait 10 minutes.
			name: "background child holding stdout",
			body: "sleep 600 &\necho \"child=$!\"\necho done\n",
		},
		{
			// The script waits until the child ignores SIGTERM: exiting before, it
			// would let the SIGTERM for its leftovers kill a child not yet trapping.
			name:     "background child ignoring SIGTERM",
			body:     "(trap '' TERM; : > trapped; exec sleep 600) &\necho \"child=$!\"\nwhile [ ! -e trapped ]; do sleep 0.01; done\necho done\n",
			wantKill: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sink := &exSink{}
			_, err := exRun(t, &Executors{Grace: 200 * time.Millisecond}, context.Background(), tt.body, nil, assets.CommandCompute{}, exInv(""), sink)
			if err != nil {
				t.Fatalf("Execute: %v", err)
			}
			out := sink.of(store.Stdout)
			if len(out) != 2 || out[1] != "done" {
				t.Fatalf("stdout %q", out)
			}
			pid, _ := strconv.Atoi(strings.TrimPrefix(out[0], "child="))
			if !exProcessGone(pid) {
				syscall.Kill(pid, syscall.SIGKILL)
				t.Errorf("child %d still running after Execute returned", pid)
			}
			if !sink.has(store.System, "left processes running") {
				t.Errorf("system log does not mention the leftover: %q", sink.of(store.System))
			}
			if got := sink.has(store.System, "sending SIGKILL"); got != tt.wantKill {
				t.Errorf("SIGKILL sent: %v, want %v (%q)", got, tt.wantKill, sink.of(store.System))
			}
		})
	}
}

func TestExecutorCommandDetachedChildHoldingStdout(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("setsid"); err != nil {
		t.Skip("setsid not installed")
	}
	sink := &exSink{}
	// setsid puts the child outside the step's process group, so it survives;
	// it still holds stdout, which must not keep Execute waiting.
	// The script waits until the child is in its own session (the pid file is
	// written after setsid), so the child is never caught in the step's group.
	body := `setsid sh -c 'echo $$ > detached.pid; exec sleep 600' &
while [ ! -s detached.pid ]; do sleep 0.01; done
echo "child=$(cat detached.pid)"
`
	_, err := exRun(t, &Executors{}, context.Background(), body, nil, assets.CommandCompute{}, exInv(""), sink)
	out := sink.of(store.Stdout)
	if len(out) > 0 {
		if pid, _ := strconv.Atoi(strings.TrimPrefix(out[0], "child=")); pid > 0 {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	if err != nil {
		t.Fatalf("Execute: %v", err)
	}
	if !sink.has(store.System, "still open") {
		t.Errorf("system log does not say the pipes were closed: %q", sink.of(store.System))
	}
}

func TestExecutorCommandLongLines(t *testing.T) {
	t.Parallel()
	sink := &exSink{}
	body := `printf '%s\n' 0123456789abcdefghijXYZ
printf 'short\n'
printf 'ab\n' >&2
printf 'tail-without-newline'
`
	_, err := exRun(t, &Executors{MaxLineBytes: 10}, context.Background(), body, nil, assets.CommandCompute{}, exInv(""), sink)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"0123456789", "abcdefghij", "XYZ", "short", "tail-witho", "ut-newline"}
	if got := sink.of(store.Stdout); !slices.Equal(got, want) {
		t.Errorf("stdout %q, want %q", got, want)
	}
	if got := sink.of(store.Stderr); !slices.Equal(got, []string{"ab"}) {
		t.Errorf("stderr %q", got)
	}
}
