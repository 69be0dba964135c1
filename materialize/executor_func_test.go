package materialize

import (
	"context"
	"errors"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/freshetdev/freshet/assets"
	"github.com/freshetdev/freshet/store"
)

func exFunc(t *testing.T, ctx context.Context, fn func(context.Context, assets.StepInput) (assets.StepOutput, error), inv Invocation, sink *exSink) (Output, error) {
	t.Helper()
	ex, err := (&Executors{Grace: 50 * time.Millisecond}).For(assets.FuncCompute{Name: "build_orders", Fn: fn})
	if err != nil {
		t.Fatal(err)
	}
	return ex.Execute(ctx, inv, sink)
}

func TestExecutorFuncInputAndOutput(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		inv      Invocation
		wantKeys []string
	}{
		{"batch", exInv("", "2026-04-08", "2026-04-09"), []string{"2026-04-08", "2026-04-09"}},
		{"unpartitioned", exInv(""), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var in assets.StepInput
			fn := func(_ context.Context, got assets.StepInput) (assets.StepOutput, error) {
				in = got
				return assets.StepOutput{DataVersion: "v1", Metadata: map[string]any{"rows": 3, "path": "s3://b/k"}}, nil
			}
			out, err := exFunc(t, context.Background(), fn, tt.inv, &exSink{})
			if err != nil {
				t.Fatal(err)
			}
			if in.Asset != "sales/orders" || !slices.Equal(in.PartitionKeys, tt.wantKeys) || !in.Start.Equal(tt.inv.Start) || !in.End.Equal(tt.inv.End) ||
				in.RunID != exRunID.String() || in.StepID != exStepID.String() || in.Attempt != 2 {
				t.Errorf("input %+v", in)
			}
			if out.DataVersion != "v1" || string(out.Metadata) != `{"path":"s3://b/k","rows":3}` {
				t.Errorf("output %q %s", out.DataVersion, out.Metadata)
			}
		})
	}
}

func TestExecutorFuncFailures(t *testing.T) {
	t.Parallel()
	errBuild := errors.New("upstream file missing")
	tests := []struct {
		name    string
		fn      func(context.Context, assets.StepInput) (assets.StepOutput, error)
		wantErr string
		wantIs  error
		wantLog string
	}{
		{"error", func(context.Context, assets.StepInput) (assets.StepOutput, error) {
			return assets.StepOutput{}, errBuild
		}, "upstream file missing", errBuild, ""},
		{"panic", func(context.Context, assets.StepInput) (assets.StepOutput, error) {
			panic("index out of range in the transform")
		}, `function "build_orders" panicked: index out of range in the transform`, nil, "executor_func_test.go"},
		{"panic with an error", func(context.Context, assets.StepInput) (assets.StepOutput, error) {
			panic(errBuild)
		}, `function "build_orders" panicked: upstream file missing`, errBuild, ""},
		{"runtime error", func(context.Context, assets.StepInput) (assets.StepOutput, error) {
			var m map[string]int
			m["x"] = 1
			return assets.StepOutput{}, nil
		}, "assignment to entry in nil map", nil, ""},
		{"Goexit", func(context.Context, assets.StepInput) (assets.StepOutput, error) {
			runtime.Goexit()
			return assets.StepOutput{}, nil
		}, "without returning", nil, ""},
		{"metadata not JSON", func(context.Context, assets.StepInput) (assets.StepOutput, error) {
			return assets.StepOutput{Metadata: map[string]any{"ch": make(chan int)}}, nil
		}, "metadata that is not JSON", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sink := &exSink{}
			_, err := exFunc(t, context.Background(), tt.fn, exInv("", "2026-04-08"), sink)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want %q", err, tt.wantErr)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("error %v does not wrap %v", err, tt.wantIs)
			}
			if tt.wantLog != "" && !sink.has(store.System, tt.wantLog) {
				t.Errorf("no stack in the log: %q", sink.of(store.System))
			}
		})
	}
}

func TestExecutorFuncCancel(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// honor says whether the function returns when ctx ends, or only later.
		honor   bool
		wantLog string
	}{
		{"returns on cancel", true, "waiting for the function"},
		{"ignores its context", false, "must honor its context"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithCancelCause(context.Background())
			sink := &exSink{}
			release := make(chan struct{})
			var once sync.Once
			sink.onLine = func(l exLine) {
				if strings.Contains(l.text, tt.wantLog) {
					once.Do(func() { close(release) })
				}
			}
			// The function returns only once the executor has logged wantLog, so the
			// test does not depend on which of ctx and the return it sees first.
			fn := func(ctx context.Context, _ assets.StepInput) (assets.StepOutput, error) {
				cancel(errExTestCancel)
				<-release
				if tt.honor {
					return assets.StepOutput{}, context.Cause(ctx)
				}
				return assets.StepOutput{DataVersion: "late"}, nil
			}
			out, err := exFunc(t, ctx, fn, exInv(""), sink)
			if !errors.Is(err, errExTestCancel) || out.DataVersion != "" {
				t.Fatalf("output %+v, error %v; want the cause", out, err)
			}
			if !sink.has(store.System, tt.wantLog) {
				t.Errorf("system log %q lacks %q", sink.of(store.System), tt.wantLog)
			}
		})
	}
}
