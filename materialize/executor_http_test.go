package materialize

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/freshetdev/freshet/assets"
	"github.com/freshetdev/freshet/store"
)

// exHTTP runs an HTTP compute against handler.
func exHTTP(t *testing.T, ctx context.Context, handler http.HandlerFunc, c assets.HTTPCompute, inv Invocation, sink *exSink) (Output, error) {
	t.Helper()
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	c.URL = srv.URL + "/hooks/build?token=secret"
	ex, err := (&Executors{HTTPClient: srv.Client()}).For(c)
	if err != nil {
		t.Fatal(err)
	}
	return ex.Execute(ctx, inv, sink)
}

func TestExecutorHTTPRequest(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		inv  Invocation
		want string
	}{
		{"batch", exInv("", "2026-04-08", "2026-04-09"),
			`{"asset":"sales/orders","partitions":["2026-04-08","2026-04-09"],"start":"2026-04-08T00:00:00Z","end":"2026-04-10T00:00:00Z","run_id":"` + exRunID.String() + `","step_id":"` + exStepID.String() + `","attempt":2}`},
		{"unpartitioned", exInv(""),
			`{"asset":"sales/orders","partitions":[],"start":null,"end":null,"run_id":"` + exRunID.String() + `","step_id":"` + exStepID.String() + `","attempt":2}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var got struct {
				method, path, contentType, auth, body string
			}
			handler := func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				got.method, got.path, got.contentType, got.auth, got.body = r.Method, r.URL.Path, r.Header.Get("Content-Type"), r.Header.Get("Authorization"), string(b)
				w.Header().Set("Content-Type", "application/json")
				io.WriteString(w, `{"status": "ok", "data_version": "v7", "metadata": {"rows": 3}}`)
			}
			sink := &exSink{}
			c := assets.HTTPCompute{Headers: map[string]string{"Authorization": "Bearer ${NOT_EXPANDED}"}}
			out, err := exHTTP(t, context.Background(), handler, c, tt.inv, sink)
			if err != nil {
				t.Fatalf("Execute: %v", err)
			}
			if got.method != http.MethodPost || got.path != "/hooks/build" || got.contentType != "application/json" {
				t.Errorf("request %s %s (%s)", got.method, got.path, got.contentType)
			}
			if got.auth != "Bearer ${NOT_EXPANDED}" {
				t.Errorf("Authorization %q: headers are sent as given", got.auth)
			}
			if got.body != tt.want {
				t.Errorf("body\n %s\nwant\n %s", got.body, tt.want)
			}
			if out.DataVersion != "v7" || string(out.Metadata) != `{"rows": 3}` {
				t.Errorf("output %q %s", out.DataVersion, out.Metadata)
			}
			for _, l := range sink.of(store.System) {
				if strings.Contains(l, "secret") {
					t.Errorf("the URL's query leaked into the log: %q", l)
				}
			}
			if !sink.has(store.System, "200 OK") {
				t.Errorf("system log %q lacks the status", sink.of(store.System))
			}
		})
	}
}

func TestExecutorHTTPResponses(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 1024) + "TAIL-NOT-SHOWN"
	tests := []struct {
		name    string
		status  int
		body    string
		want    Output
		wantErr []string
		notErr  []string
	}{
		{name: "204", status: http.StatusNoContent},
		{name: "non-JSON 2xx body ignored", status: http.StatusAccepted, body: "queued"},
		{name: "JSON without a report", status: http.StatusOK, body: `{"status": "ok"}`},
		{name: "JSON array ignored", status: http.StatusOK, body: `[1, 2]`},
		{name: "data version only", status: http.StatusOK, body: `{"data_version": "abc"}`, want: Output{DataVersion: "abc"}},
		{name: "wrong data_version type", status: http.StatusOK, body: `{"data_version": 3}`,
			wantErr: []string{"response: data_version must be a string"}},
		{name: "server error", status: http.StatusInternalServerError, body: "database is down\n",
			wantErr: []string{"500 Internal Server Error: database is down"}, notErr: []string{"secret"}},
		{name: "long error body cut at 1 KiB", status: http.StatusBadGateway, body: long,
			wantErr: []string{"502 Bad Gateway: xxxx", "x…"}, notErr: []string{"TAIL-NOT-SHOWN"}},
		{name: "client error", status: http.StatusNotFound, wantErr: []string{"404 Not Found"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			handler := func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.body)
			}
			out, err := exHTTP(t, context.Background(), handler, assets.HTTPCompute{}, exInv("", "2026-04-08"), &exSink{})
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("Execute: %v", err)
				}
				if out.DataVersion != tt.want.DataVersion || string(out.Metadata) != string(tt.want.Metadata) {
					t.Fatalf("output %+v, want %+v", out, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			for _, w := range tt.notErr {
				if strings.Contains(err.Error(), w) {
					t.Errorf("error %q holds %q", err, w)
				}
			}
		})
	}
}

func TestExecutorHTTPCancel(t *testing.T) {
	t.Parallel()
	entered := make(chan struct{})
	handlerSawCancel := make(chan bool, 1)
	handler := func(w http.ResponseWriter, r *http.Request) {
		// net/http notices a client going away only once the body is read.
		io.Copy(io.Discard, r.Body)
		close(entered)
		<-r.Context().Done()
		handlerSawCancel <- true
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	go func() {
		<-entered
		cancel(errExTestCancel)
	}()
	_, err := exHTTP(t, ctx, handler, assets.HTTPCompute{}, exInv(""), &exSink{})
	if !errors.Is(err, errExTestCancel) {
		t.Fatalf("error %v, want one wrapping the cause", err)
	}
	if !<-handlerSawCancel {
		t.Error("the server did not see the request canceled")
	}
}

func TestExecutorHTTPConnectionRefused(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	ex, err := (&Executors{}).For(assets.HTTPCompute{URL: url + "/x?key=secret"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = ex.Execute(context.Background(), exInv(""), &exSink{})
	if err == nil || !strings.Contains(err.Error(), "POST "+url+"/x?") || strings.Contains(err.Error(), "secret") {
		t.Fatalf("error %v", err)
	}
}

func TestExecutorHTTPBodyIsJSON(t *testing.T) {
	t.Parallel()
	// A partition key with quotes must not break the body: it is encoded, not formatted.
	var got httpStep
	handler := func(w http.ResponseWriter, r *http.Request) {
		if err := json.NewDecoder(r.Body).Decode(&got); err != nil {
			t.Errorf("body: %v", err)
		}
	}
	inv := exInv("")
	inv.Partitions = []string{`a"b`, `c\d`}
	if _, err := exHTTP(t, context.Background(), handler, assets.HTTPCompute{}, inv, &exSink{}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Partitions, inv.Partitions) {
		t.Errorf("partitions %q", got.Partitions)
	}
}
