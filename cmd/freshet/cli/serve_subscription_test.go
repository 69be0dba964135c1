package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"
)

// wsMessage is a message of the graphql-transport-ws protocol.
type wsMessage struct {
	ID      string          `json:"id,omitempty"`
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

// subscribe opens a websocket to the server, initialises it with initPayload and
// subscribes to query; it returns the connection, or the error of the handshake.
func (s *apiServer) subscribe(t *testing.T, ctx context.Context, initPayload map[string]any, query string) (*websocket.Conn, error) {
	t.Helper()
	wsURL := "ws" + strings.TrimPrefix(s.url, "http") + "/graphql"
	c, _, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{Subprotocols: []string{"graphql-transport-ws"}})
	if err != nil {
		t.Fatalf("dial %s: %v", wsURL, err)
	}
	t.Cleanup(func() { c.CloseNow() })
	payload, _ := json.Marshal(initPayload)
	if err := wsjson.Write(ctx, c, wsMessage{Type: "connection_init", Payload: payload}); err != nil {
		t.Fatal(err)
	}
	var ack wsMessage
	if err := wsjson.Read(ctx, c, &ack); err != nil {
		return nil, err
	}
	if ack.Type != "connection_ack" {
		t.Fatalf("connection_init: got %+v", ack)
	}
	sub, _ := json.Marshal(map[string]any{"query": query})
	if err := wsjson.Write(ctx, c, wsMessage{ID: "1", Type: "subscribe", Payload: sub}); err != nil {
		t.Fatal(err)
	}
	return c, nil
}

// A runEvents subscription receives every step's changes up to the run's end,
// on both stores; assetEvents receives what is recorded.
func TestServeSubscriptions(t *testing.T) {
	t.Parallel()
	for name, db := range catalogs(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := startServe(t, copyExample(t), db(t))
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()

			assetsWS, err := s.subscribe(t, ctx, nil, `subscription { assetEvents(selection: "sales/exchange_rates", after: "0") { asset kind dataVersion } }`)
			if err != nil {
				t.Fatal(err)
			}
			s.mustQuery(t, `mutation { reportObservation(input: {asset: "sales/exchange_rates", dataVersion: "rates-1"}) { seq } }`, nil, nil)
			var msg wsMessage
			if err := wsjson.Read(ctx, assetsWS, &msg); err != nil {
				t.Fatal(err)
			}
			if msg.Type != "next" || !strings.Contains(string(msg.Payload), `"dataVersion":"rates-1"`) || !strings.Contains(string(msg.Payload), `"kind":"observation"`) {
				t.Errorf("assetEvents: %s %s; want the observation", msg.Type, msg.Payload)
			}

			var launched struct{ MaterializeStale struct{ ID string } }
			s.mustQuery(t, `mutation { materializeStale(from: "2026-01-01", to: "2026-01-02") { id } }`, nil, &launched)
			runWS, err := s.subscribe(t, ctx, nil, `subscription { runEvents(runId: "`+launched.MaterializeStale.ID+`") { runId runStatus step { id asset partitions status } } }`)
			if err != nil {
				t.Fatal(err)
			}
			last := map[string]string{} // step id → last status seen
			final := ""
			for final == "" {
				if err := wsjson.Read(ctx, runWS, &msg); err != nil {
					t.Fatalf("runEvents: %v (seen %v)", err, last)
				}
				switch msg.Type {
				case "next":
					var ev struct {
						Data struct {
							RunEvents struct {
								RunID, RunStatus string
								Step             *struct{ ID, Asset, Status string }
							}
						}
					}
					if err := json.Unmarshal(msg.Payload, &ev); err != nil {
						t.Fatal(err)
					}
					e := ev.Data.RunEvents
					if e.RunID != launched.MaterializeStale.ID {
						t.Fatalf("event of run %s; want %s", e.RunID, launched.MaterializeStale.ID)
					}
					if e.Step != nil {
						last[e.Step.ID] = e.Step.Status
					}
				case "complete":
					final = "complete"
				default:
					t.Fatalf("runEvents: unexpected %s %s", msg.Type, msg.Payload)
				}
			}
			var run struct {
				Run struct {
					Status string
					Steps  []struct{ ID string }
				}
			}
			s.mustQuery(t, `query($id: ID!) { run(id: $id) { status steps { id } } }`, map[string]any{"id": launched.MaterializeStale.ID}, &run)
			if run.Run.Status != "SUCCEEDED" || len(last) != len(run.Run.Steps) {
				t.Fatalf("run %s with %d steps; events for %d steps", run.Run.Status, len(run.Run.Steps), len(last))
			}
			for id, st := range last {
				if st != "SUCCEEDED" {
					t.Errorf("step %s: last event %s; want SUCCEEDED", id, st)
				}
			}

			// A mutation over the websocket is refused.
			mutWS, err := s.subscribe(t, ctx, nil, `mutation { reloadDefinitions { assets } }`)
			if err != nil {
				t.Fatal(err)
			}
			if err := wsjson.Read(ctx, mutWS, &msg); err != nil {
				t.Fatal(err)
			}
			if (msg.Type != "error" && msg.Type != "next") || !strings.Contains(string(msg.Payload), "only as POST") || strings.Contains(string(msg.Payload), `"reloadDefinitions":{`) {
				t.Errorf("a mutation over the websocket: %s %s; want an error", msg.Type, msg.Payload)
			}
		})
	}
}

// With a token, a websocket must bring it in connection_init.
func TestServeSubscriptionNeedsTheToken(t *testing.T) {
	t.Parallel()
	s := startServe(t, copyExample(t), tempDB(t), "--auth-token", "ws-token")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const q = `subscription { assetEvents { asset } }`
	if _, err := s.subscribe(t, ctx, nil, q); err == nil {
		t.Errorf("connection_init without the token was acknowledged")
	}
	if _, err := s.subscribe(t, ctx, map[string]any{"Authorization": "Bearer nope"}, q); err == nil {
		t.Errorf("connection_init with a wrong token was acknowledged")
	}
	if _, err := s.subscribe(t, ctx, map[string]any{"Authorization": "Bearer ws-token"}, q); err != nil {
		t.Errorf("connection_init with the token: %v", err)
	}
}

// While steps run, the asset counts their partitions as running (or queued) and
// its partition strip shows them RUNNING.
func TestServeShowsRunningPartitions(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "freshet.yaml"), `assets:
  - key: slow/daily
    partitions: {daily: {start: 2026-01-01}}
    compute: {command: [sleep, "30"]}
`)
	s := startServe(t, dir, tempDB(t), "--parallel", "2", "--drain", "0s")
	type graphRunning struct {
		AssetGraph struct {
			Nodes []struct{ Status struct{ Running int } }
		}
	}
	const graphQuery = `{ assetGraph(selection: "slow/daily") { nodes { status { running } } } }`
	var g graphRunning
	s.mustQuery(t, graphQuery, nil, &g)
	if g.AssetGraph.Nodes[0].Status.Running != 0 {
		t.Fatalf("before the run: %+v", g)
	}
	var launched struct{ MaterializeStale struct{ ID string } }
	s.mustQuery(t, `mutation { materializeStale(from: "2026-01-01", to: "2026-01-03") { id } }`, nil, &launched)
	type status struct {
		Asset struct {
			Status          struct{ Running, Queued, Missing int }
			PartitionStatus []struct {
				Start, End, Status string
				Count              int
			}
		}
	}
	var st status
	waitUntil(t, "two partitions running", 30*time.Second, func() bool {
		s.mustQuery(t, `{ asset(key: "slow/daily") { status { running queued missing } partitionStatus(from: "2026-01-01", to: "2026-01-04") { start end status count } } }`, nil, &st)
		return st.Asset.Status.Running == 2
	})
	// The same graph query again: the steps that started show in it.
	s.mustQuery(t, graphQuery, nil, &g)
	if g.AssetGraph.Nodes[0].Status.Running != 2 {
		t.Errorf("assetGraph while 2 steps run: %+v", g)
	}
	if st.Asset.Status.Queued != 1 {
		t.Errorf("status %+v; want 2 running (the worker's 2 slots), 1 queued", st.Asset.Status)
	}
	if got := fmt.Sprint(st.Asset.PartitionStatus); got != "[{2026-01-01 2026-01-02 RUNNING 2} {2026-01-03 2026-01-04 MISSING 2}]" {
		t.Errorf("partitionStatus: %s", got)
	}
	s.mustQuery(t, `mutation($id: ID!) { cancelRun(id: $id) { id } }`, map[string]any{"id": launched.MaterializeStale.ID}, nil)
}
