package materialize

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/freshetdev/freshet/assets"
	"github.com/freshetdev/freshet/store"
)

// Limits of the command executor.
const (
	// outputFileMax caps the FRESHET_OUTPUT file: it is metadata for the catalog,
	// not data, and it ends up in a database row.
	outputFileMax = 1 << 20
	// pipeDrain is how long stdout and stderr may stay open once every process of
	// the step's group is gone. Only a process that left the group (setsid, a
	// daemon) can still hold them; after this the pipes are closed so it cannot
	// hang the step.
	pipeDrain = 2 * time.Second
	// stderrTail bounds the stderr lines an ExitError carries.
	stderrTailLines = 20
	stderrTailBytes = 4 << 10
	// groupPoll is how often a stopping process group is checked for survivors.
	groupPoll = 25 * time.Millisecond
	// killWait bounds the wait for SIGKILLed processes to be gone: only a process
	// stuck in uninterruptible I/O (a hung NFS mount) takes longer.
	killWait = 5 * time.Second
)

// commandExecutor runs a program directly (argv, never a shell, so partition keys
// and other values cannot inject commands) in a process group of its own, so that
// stopping a step stops everything it started, not just its first process.
type commandExecutor struct {
	e *Executors
	c assets.CommandCompute
}

func (e *Executors) commandExecutor(c assets.CommandCompute) (Executor, error) {
	if len(c.Argv) == 0 || c.Argv[0] == "" {
		return nil, errors.New("command has no program: its argv is empty")
	}
	return &commandExecutor{e: e, c: c}, nil
}

// Execute runs the command and returns when it and every process it left in its
// process group have ended, and its output is read.
//
// Ending, in order: on ctx's end the group gets SIGTERM, then SIGKILL after Grace;
// when the command's own process has exited (by itself or stopped), processes it
// left running in its group get the same treatment, because a step that "finished"
// while its children still write would race with the next attempt or the
// downstream steps. A process that detached itself (setsid) is outside the group
// and is not stopped, but the step's pipes are closed pipeDrain after the group is
// gone, so it cannot hang Execute either.
func (x *commandExecutor) Execute(ctx context.Context, inv Invocation, log LogSink) (Output, error) {
	log = sinkOrDiscard(log)
	if ctx.Err() != nil {
		return Output{}, stopped(ctx, "command not started")
	}

	vars := inv.placeholders()
	argv := make([]string, len(x.c.Argv))
	for i, a := range x.c.Argv {
		argv[i] = substitute(a, vars)
	}
	dir := resolvePath(inv.Dir, x.c.Dir)
	if dir == "" {
		dir = "."
	}
	if info, err := os.Stat(dir); err != nil {
		return Output{}, fmt.Errorf("working directory of the command: %w", err)
	} else if !info.IsDir() {
		return Output{}, fmt.Errorf("working directory of the command: %s is not a directory", dir)
	}

	env := x.environ(inv)
	prog, err := lookProgram(argv[0], dir, lastEnv(env, "PATH"))
	if err != nil {
		return Output{}, err
	}

	// The output file is named, not created: a step that writes nothing reports
	// nothing. Its name is unique to the attempt in a directory only this process
	// writes, so no other process can plant a file (or a link) there, and creating
	// one per step, a costly system call on some file systems, is left to the
	// steps that report.
	outDir, err := x.e.outputDir()
	if err != nil {
		return Output{}, err
	}
	outputPath := filepath.Join(outDir, fmt.Sprintf("%s-%d-%d.json", inv.StepID, inv.Attempt, outputSeq.Add(1)))
	defer os.Remove(outputPath)
	env = append(env, "FRESHET_OUTPUT="+outputPath)

	// Our own pipes rather than cmd.StdoutPipe: Wait then only waits for the
	// process, and we decide when to give up on the pipes (see pipeDrain).
	outR, outW, err := os.Pipe()
	if err != nil {
		return Output{}, fmt.Errorf("create stdout pipe: %w", err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return Output{}, fmt.Errorf("create stderr pipe: %w", err)
	}
	defer outR.Close()
	defer errR.Close()

	cmd := &exec.Cmd{
		Path:        prog,
		Args:        argv,
		Dir:         dir,
		Env:         env,
		Stdout:      outW,
		Stderr:      errW,
		SysProcAttr: &syscall.SysProcAttr{Setpgid: true},
	}
	systemf(log, "running %s (in %s)", quoteArgv(argv), dir)
	err = cmd.Start()
	// The child has its copies; ours must go or the pipes never reach EOF.
	outW.Close()
	errW.Close()
	if err != nil {
		return Output{}, startError(argv[0], prog, err)
	}
	pgid := cmd.Process.Pid

	maxLine := x.e.maxLineBytes()
	stdout := &lineWriter{sink: log, stream: store.Stdout, max: maxLine}
	stderrTail := &tailLines{maxLines: stderrTailLines, maxBytes: stderrTailBytes}
	stderr := &lineWriter{sink: log, stream: store.Stderr, max: maxLine, tail: stderrTail}
	var readers sync.WaitGroup
	readers.Add(2)
	go pump(outR, stdout, &readers)
	go pump(errR, stderr, &readers)
	readersDone := make(chan struct{})
	go func() {
		readers.Wait()
		close(readersDone)
	}()

	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()

	grace := x.e.grace()
	var (
		waitErr   error
		stoppedBy bool      // ctx ended before the process exited
		termAt    time.Time // when the group got SIGTERM; zero if it did not
		killed    bool      // the group got SIGKILL
	)
	select {
	case waitErr = <-waited:
	case <-ctx.Done():
		stoppedBy = true
		systemf(log, "stopping (%v): sending SIGTERM to the process group", context.Cause(ctx))
		signalGroup(pgid, syscall.SIGTERM)
		termAt = time.Now()
		timer := time.NewTimer(grace)
		select {
		case waitErr = <-waited:
			timer.Stop()
		case <-timer.C:
			systemf(log, "still running %v after SIGTERM: sending SIGKILL to the process group", grace)
			signalGroup(pgid, syscall.SIGKILL)
			killed = true
			waitErr = <-waited
		}
	}

	stopLeftovers(pgid, termAt, killed, grace, log)

	select {
	case <-readersDone:
	case <-time.After(pipeDrain):
		systemf(log, "stdout/stderr still open %v after the process group ended (held by a detached process?): closing them", pipeDrain)
		outR.Close()
		errR.Close()
		<-readersDone
	}

	exitErr := exitError(waitErr, stderrTail)
	if stoppedBy {
		how := "command stopped"
		var ee *ExitError
		if errors.As(exitErr, &ee) {
			how += " (" + ee.status() + ")"
		}
		return Output{}, stopped(ctx, how)
	}
	if exitErr != nil {
		var ee *ExitError
		if errors.As(exitErr, &ee) {
			systemf(log, "command %s", ee.status())
		}
		return Output{}, exitErr
	}
	systemf(log, "command exited with status 0")

	out, err := readOutputFile(outputPath)
	if err != nil {
		return Output{}, err
	}
	return out, nil
}

// environ is the command's environment: the worker's own, then the asset's Env,
// then the FRESHET_* variables (the last value of a name wins, so neither the
// worker's environment nor the asset can shadow the step's identity). Every
// FRESHET_* variable is set, empty when it does not apply, so a value inherited
// from the worker's environment never leaks into a step.
func (x *commandExecutor) environ(inv Invocation) []string {
	// The worker's own secrets stay with it: a step has no business with the
	// catalog's database or the API token (an asset that needs them sets env).
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "FRESHET_DATABASE_URL=") || strings.HasPrefix(kv, "FRESHET_AUTH_TOKEN=")
	})
	names := make([]string, 0, len(x.c.Env))
	for k := range x.c.Env {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		env = append(env, k+"="+x.c.Env[k])
	}
	return append(env,
		"FRESHET_ASSET="+inv.assetKey(),
		"FRESHET_PARTITION="+inv.partition(),
		"FRESHET_PARTITION_START="+formatTime(inv.Start),
		"FRESHET_PARTITION_END="+formatTime(inv.End),
		"FRESHET_PARTITION_KEYS="+strings.Join(inv.keys(), ","),
		"FRESHET_RUN_ID="+inv.RunID.String(),
		"FRESHET_STEP_ID="+inv.StepID.String(),
		"FRESHET_ATTEMPT="+strconv.Itoa(inv.Attempt),
	)
}

// lastEnv returns the value of the last name= entry of env.
func lastEnv(env []string, name string) string {
	for i := len(env) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(env[i], name+"="); ok {
			return v
		}
	}
	return ""
}

// resolvePath joins a relative path to base; absolute paths stay as they are.
func resolvePath(base, p string) string {
	if p == "" {
		return base
	}
	if filepath.IsAbs(p) || base == "" {
		return p
	}
	return filepath.Join(base, p)
}

// lookProgram finds the executable of argv[0]: a name with a slash is a path
// relative to the working directory (so "./fetch.sh" means the script beside the
// definitions); a bare name is searched in PATH, the command's PATH if its Env sets
// one. The messages say which case failed, since "no such file" alone does not.
func lookProgram(name, dir, path string) (string, error) {
	if strings.ContainsRune(name, '/') {
		p := resolvePath(dir, name)
		info, err := os.Stat(p)
		switch {
		case err != nil:
			return "", fmt.Errorf("program %q not found (no file %s)", name, p)
		case info.IsDir():
			return "", fmt.Errorf("program %q is a directory (%s)", name, p)
		case info.Mode()&0o111 == 0:
			return "", fmt.Errorf("program %q is not executable (%s): chmod +x it or run it through its interpreter", name, p)
		}
		return p, nil
	}
	notExec := ""
	for _, d := range filepath.SplitList(path) {
		if !filepath.IsAbs(d) {
			// An empty or relative PATH entry would resolve against some working
			// directory (which one differs between lookup and exec): never implicitly.
			continue
		}
		p := filepath.Join(d, name)
		info, err := os.Stat(p)
		if err != nil || info.IsDir() {
			continue
		}
		if info.Mode()&0o111 == 0 {
			if notExec == "" {
				notExec = p
			}
			continue
		}
		return p, nil
	}
	if notExec != "" {
		return "", fmt.Errorf("program %q not found in PATH (%s exists but is not executable)", name, notExec)
	}
	return "", fmt.Errorf("program %q not found in PATH", name)
}

// startError explains why a found program could not be started.
func startError(name, prog string, err error) error {
	switch {
	case errors.Is(err, syscall.ENOEXEC):
		return fmt.Errorf("cannot run program %q (%s): exec format error; a script needs a #! line", name, prog)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("cannot run program %q (%s): permission denied", name, prog)
	}
	return fmt.Errorf("cannot run program %q: %w", name, err)
}

// pump copies one pipe into its line writer until EOF or the pipe is closed.
func pump(r io.Reader, w *lineWriter, wg *sync.WaitGroup) {
	defer wg.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			w.Write(buf[:n])
		}
		if err != nil {
			break
		}
	}
	w.Flush()
}

// signalGroup signals every process of the group; a group already gone is fine.
func signalGroup(pgid int, sig syscall.Signal) {
	_ = syscall.Kill(-pgid, sig)
}

// stopLeftovers ends what the command left running in its process group once
// its own process has exited: SIGTERM (unless the group already had it at
// termAt), then SIGKILL once grace has passed since the SIGTERM; after a SIGKILL
// it waits (at most killWait) for the kernel to end them, so that when Execute
// returns nothing of the step runs any more.
func stopLeftovers(pgid int, termAt time.Time, killed bool, grace time.Duration, log LogSink) {
	if !groupAlive(pgid) {
		return
	}
	if !killed {
		if termAt.IsZero() {
			systemf(log, "the command exited but left processes running in its process group: sending them SIGTERM")
			signalGroup(pgid, syscall.SIGTERM)
			termAt = time.Now()
		}
		deadline := termAt.Add(grace)
		for groupAlive(pgid) {
			if !time.Now().Before(deadline) {
				systemf(log, "processes of the process group still running %v after SIGTERM: sending SIGKILL", grace)
				signalGroup(pgid, syscall.SIGKILL)
				killed = true
				break
			}
			time.Sleep(groupPoll)
		}
		if !killed {
			return
		}
	}
	deadline := time.Now().Add(killWait)
	for groupAlive(pgid) && time.Now().Before(deadline) {
		time.Sleep(groupPoll)
	}
}

// groupAlive reports whether a live process remains in the group. kill(-pgid, 0)
// alone is not enough: an orphan that exited stays a zombie until init reaps it,
// and many container inits never do, so on Linux /proc is checked for a member
// that is not a zombie. Elsewhere the kill answer stands (a zombie then costs at
// most the grace period).
func groupAlive(pgid int) bool {
	if err := syscall.Kill(-pgid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return true
	}
	want := strconv.Itoa(pgid)
	for _, e := range entries {
		name := e.Name()
		if name == "" || name[0] < '0' || name[0] > '9' {
			continue
		}
		stat, err := os.ReadFile("/proc/" + name + "/stat")
		if err != nil {
			continue // exited meanwhile
		}
		// pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses,
		// so the fields are counted after the last ')'.
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		fields := strings.Fields(string(stat[i+1:]))
		if len(fields) < 3 || fields[2] != want {
			continue
		}
		if state := fields[0]; state != "Z" && state != "X" {
			return true
		}
	}
	return false
}

// exitError turns Wait's error into an *ExitError with the stderr tail.
func exitError(err error, tail *tailLines) error {
	if err == nil {
		return nil
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return fmt.Errorf("wait for the command: %w", err)
	}
	out := &ExitError{Code: ee.ExitCode(), Stderr: tail.String()}
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		out.Code = -1
		out.Signal = signalName(ws.Signal())
	}
	return out
}

var signalNames = map[syscall.Signal]string{
	syscall.SIGHUP: "SIGHUP", syscall.SIGINT: "SIGINT", syscall.SIGQUIT: "SIGQUIT",
	syscall.SIGILL: "SIGILL", syscall.SIGTRAP: "SIGTRAP", syscall.SIGABRT: "SIGABRT",
	syscall.SIGBUS: "SIGBUS", syscall.SIGFPE: "SIGFPE", syscall.SIGKILL: "SIGKILL",
	syscall.SIGUSR1: "SIGUSR1", syscall.SIGSEGV: "SIGSEGV", syscall.SIGUSR2: "SIGUSR2",
	syscall.SIGPIPE: "SIGPIPE", syscall.SIGALRM: "SIGALRM", syscall.SIGTERM: "SIGTERM",
	syscall.SIGXCPU: "SIGXCPU", syscall.SIGXFSZ: "SIGXFSZ",
}

func signalName(s syscall.Signal) string {
	if n, ok := signalNames[s]; ok {
		return n
	}
	return fmt.Sprintf("signal %d (%v)", int(s), s)
}

// readOutputFile reads what the step reported in FRESHET_OUTPUT. An empty file
// reports nothing. Anything else must be exactly the documented object: unknown
// fields are errors too, because a misspelt "data_version" silently ignored would
// make every rebuild look like a data change downstream.
func readOutputFile(path string) (Output, error) {
	bad := func(format string, args ...any) (Output, error) {
		return Output{}, fmt.Errorf("FRESHET_OUTPUT file %s: "+format, append([]any{path}, args...)...)
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Output{}, nil // the step removed it: it reports nothing
	}
	if err != nil {
		return bad("%v", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, outputFileMax+1))
	if err != nil {
		return bad("%v", err)
	}
	if len(data) > outputFileMax {
		return bad("larger than %d bytes: it holds a data version and metadata, not data", outputFileMax)
	}
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return Output{}, nil
	}
	const want = `{"data_version": "...", "metadata": {...}}`
	if trimmed[0] != '{' && json.Valid(trimmed) {
		return bad("must hold a JSON object like %s, not %s", want, jsonKind(trimmed))
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var o stepOutput
	if err := dec.Decode(&o); err != nil {
		var syn *json.SyntaxError
		var typ *json.UnmarshalTypeError
		switch {
		case errors.As(err, &syn):
			line, col := lineCol(data, int(syn.Offset))
			return bad("invalid JSON at line %d, column %d: %s", line, col, strings.TrimPrefix(syn.Error(), "json: "))
		case errors.As(err, &typ) && typ.Field == "":
			return bad("must hold a JSON object like %s", want)
		case errors.Is(err, io.ErrUnexpectedEOF):
			return bad("invalid JSON: unexpected end of file")
		}
		msg := strings.TrimPrefix(err.Error(), "json: ")
		if strings.HasPrefix(msg, "unknown field") {
			msg += " (the fields are data_version and metadata)"
		}
		return bad("%s", msg)
	}
	if _, err := dec.Token(); err != io.EOF {
		return bad("unexpected data after the JSON object")
	}
	out, err := o.toOutput()
	if err != nil {
		return bad("%v", err)
	}
	return out, nil
}

// lineCol converts a byte offset of data into a 1-based line and column.
func lineCol(data []byte, off int) (line, col int) {
	off = min(max(off, 0), len(data))
	line = 1 + bytes.Count(data[:off], []byte{'\n'})
	col = off - bytes.LastIndexByte(data[:off], '\n')
	return line, col
}

// quoteArgv renders argv as a shell would need it typed, for the log: it shows
// exactly which arguments the program got, spaces and all.
func quoteArgv(argv []string) string {
	parts := make([]string, len(argv))
	for i, a := range argv {
		parts[i] = shellQuote(a)
	}
	return strings.Join(parts, " ")
}

func shellQuote(s string) string {
	if s == "" {
		return "''"
	}
	safe := true
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=:,@%+", r)) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
