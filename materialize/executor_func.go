package materialize

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
	"time"

	"github.com/freshetdev/freshet/assets"
)

// funcExecutor calls a Go function registered as compute (library use).
type funcExecutor struct {
	e *Executors
	c assets.FuncCompute
}

func (e *Executors) funcExecutor(c assets.FuncCompute) (Executor, error) {
	if c.Fn == nil {
		return nil, fmt.Errorf("func compute %q has no function", c.Name)
	}
	return &funcExecutor{e: e, c: c}, nil
}

func (x *funcExecutor) name() string {
	if x.c.Name != "" {
		return fmt.Sprintf("function %q", x.c.Name)
	}
	return "function"
}

// Execute calls the function with the step's description. A panic is recovered
// and becomes the attempt's error (with the stack in the step's log): one buggy
// asset must not take the worker, and every other running step, down with it.
//
// A Go function cannot be killed, only asked to stop through ctx. Execute waits
// for it to return even after ctx ended, because returning earlier would let a
// retry run beside it; if it has not returned Grace after ctx ended, the log says
// so, since that is a function ignoring its context.
func (x *funcExecutor) Execute(ctx context.Context, inv Invocation, log LogSink) (Output, error) {
	log = sinkOrDiscard(log)
	if ctx.Err() != nil {
		return Output{}, stopped(ctx, x.name()+" not called")
	}
	in := assets.StepInput{
		Asset:         assets.Key(inv.assetKey()),
		PartitionKeys: inv.keys(),
		Start:         inv.Start,
		End:           inv.End,
		RunID:         inv.RunID.String(),
		StepID:        inv.StepID.String(),
		Attempt:       inv.Attempt,
	}
	type result struct {
		out assets.StepOutput
		err error
	}
	done := make(chan result, 1)
	go func() {
		returned := false
		defer func() {
			r := recover()
			if r == nil && !returned {
				// runtime.Goexit (t.FailNow, log.Fatal's cousins) unwinds without a
				// panic value; without this the step would wait forever.
				done <- result{err: fmt.Errorf("%s exited its goroutine without returning (runtime.Goexit)", x.name())}
				return
			}
			if r != nil {
				var err error
				if e, ok := r.(error); ok {
					err = fmt.Errorf("%s panicked: %w", x.name(), e)
				} else {
					err = fmt.Errorf("%s panicked: %v", x.name(), r)
				}
				systemf(log, "%v; stack:", err)
				for _, line := range strings.Split(strings.TrimRight(string(debug.Stack()), "\n"), "\n") {
					systemf(log, "%s", line)
				}
				done <- result{err: err}
			}
		}()
		out, err := x.c.Fn(ctx, in)
		returned = true
		done <- result{out: out, err: err}
	}()

	var r result
	stoppedBy := false
	select {
	case r = <-done:
	case <-ctx.Done():
		stoppedBy = true
		systemf(log, "stopping (%v): waiting for the %s to return", context.Cause(ctx), x.name())
		timer := time.NewTimer(x.e.grace())
		select {
		case r = <-done:
			timer.Stop()
		case <-timer.C:
			systemf(log, "the %s has not returned %v after the step was stopped: it must honor its context", x.name(), x.e.grace())
			r = <-done
		}
	}
	if stoppedBy {
		if r.err != nil && errors.Is(r.err, context.Cause(ctx)) {
			return Output{}, r.err
		}
		return Output{}, stopped(ctx, x.name()+" stopped")
	}
	if r.err != nil {
		return Output{}, r.err
	}

	out := Output{DataVersion: r.out.DataVersion}
	if len(r.out.Metadata) > 0 {
		b, err := json.Marshal(r.out.Metadata)
		if err != nil {
			return Output{}, fmt.Errorf("%s returned metadata that is not JSON: %w", x.name(), err)
		}
		out.Metadata = b
	}
	return out, nil
}
