package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// An asset with max_lag 1h whose data is 2h old is FAIL: a webhook receiver
// gets exactly one FAIL notice, then exactly one PASS once the asset is
// materialized, on both stores.
func TestServeFreshnessNotifications(t *testing.T) {
	t.Parallel()
	for name, db := range catalogs(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var (
				mu      sync.Mutex
				notices []map[string]any
			)
			hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				var n map[string]any
				if err := json.Unmarshal(body, &n); err != nil || r.Header.Get("Content-Type") != "application/json" {
					t.Errorf("webhook: %s %q", r.Header.Get("Content-Type"), body)
				}
				mu.Lock()
				notices = append(notices, n)
				mu.Unlock()
			}))
			defer hook.Close()
			count := func(status string) (n int) {
				mu.Lock()
				defer mu.Unlock()
				for _, x := range notices {
					if x["asset"] == "wh/orders" && x["status"] == status {
						n++
					}
				}
				return n
			}
			dir := t.TempDir()
			writeFile(t, filepath.Join(dir, "freshet.yaml"), fmt.Sprintf(`assets:
  - key: wh/orders
    compute: {command: ["true"]}
    freshness: {max_lag: 1h}
notifiers:
  - {webhook: {url: %q}}
`, hook.URL))
			url := db(t)
			twoHoursAgo := time.Now().Add(-2 * time.Hour).UTC().Format(time.RFC3339)
			if _, stderr, code := run(t, "report", "materialization", "-f", dir, "--db", url, "--asset", "wh/orders", "--at", twoHoursAgo); code != 0 {
				t.Fatalf("report: exit %d\n%s", code, stderr)
			}
			s := startServe(t, dir, url, "--freshness-interval", "100ms")
			waitUntil(t, "the FAIL notice", 30*time.Second, func() bool { return count("FAIL") == 1 })
			mu.Lock()
			reason, _ := notices[0]["reason"].(string)
			mu.Unlock()
			if !strings.Contains(reason, "2h") || !strings.Contains(reason, "max_lag 1h") {
				t.Errorf("FAIL notice reason %q; want the 2h lag against max_lag 1h", reason)
			}
			var board struct {
				FreshnessBoard []struct {
					Asset     struct{ Key string }
					Freshness struct{ Status string }
				}
			}
			s.mustQuery(t, `{ freshnessBoard { asset { key } freshness { status } } }`, nil, &board)
			if len(board.FreshnessBoard) != 1 || board.FreshnessBoard[0].Freshness.Status != "FAIL" {
				t.Errorf("freshnessBoard: %+v; want wh/orders FAIL", board.FreshnessBoard)
			}

			var launched struct{ Materialize struct{ ID string } }
			s.mustQuery(t, `mutation { materialize(force: true) { id } }`, nil, &launched)
			s.waitRun(t, launched.Materialize.ID)
			waitUntil(t, "the PASS notice", 30*time.Second, func() bool { return count("PASS") == 1 })
			time.Sleep(time.Second) // ten more checks: nothing more to say
			if f, p := count("FAIL"), count("PASS"); f != 1 || p != 1 {
				t.Errorf("notices: %d FAIL, %d PASS; want exactly one of each", f, p)
			}
			if _, m := httpDo(t, "GET", s.url+"/metrics", "", "", ""); !strings.Contains(m, `freshet_asset_freshness{asset="wh/orders",status="PASS"} 1`) ||
				!strings.Contains(m, `freshet_asset_freshness{asset="wh/orders",status="FAIL"} 0`) {
				t.Errorf("/metrics: no freshness gauge of wh/orders at PASS")
			}
			var events struct {
				FreshnessEvents []struct {
					Status     string
					Previous   *string
					NotifiedAt *string
				}
			}
			s.mustQuery(t, `{ freshnessEvents(asset: "wh/orders") { status previous notifiedAt } }`, nil, &events)
			if e := events.FreshnessEvents; len(e) != 2 || e[0].Status != "PASS" || e[1].Status != "FAIL" || e[0].NotifiedAt == nil || e[1].NotifiedAt == nil {
				t.Errorf("freshnessEvents: %+v; want PASS then FAIL, newest first, both notified", e)
			}
		})
	}
}

func waitUntil(t *testing.T, what string, within time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// freshet schedules and freshet freshness print what the leader recorded and the
// policies' statuses now.
func TestSchedulesAndFreshnessCommands(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "freshet.yaml"), `assets:
  - key: wh/late
    compute: {command: ["true"]}
    freshness: {max_lag: 1h}
  - key: wh/never
    compute: {command: ["true"]}
    freshness: {max_lag: 1h, warn_lag: 30m}
schedules:
  - name: nightly
    cron: "0 2 * * *"
    timezone: Europe/Berlin
    select: "wh/*"
`)
	db := tempDB(t)
	if _, stderr, code := run(t, "report", "materialization", "-f", dir, "--db", db, "--asset", "wh/late",
		"--at", time.Now().Add(-90*time.Minute).UTC().Format(time.RFC3339)); code != 0 {
		t.Fatalf("report: %s", stderr)
	}
	out, stderr, code := run(t, "schedules", "-f", dir, "--db", db)
	if code != 0 || !strings.Contains(out, "nightly") || !strings.Contains(out, "0 2 * * * (Europe/Berlin)") || !strings.Contains(out, "never") {
		t.Errorf("schedules: exit %d\n%s%s", code, out, stderr)
	}
	out, stderr, code = run(t, "freshness", "-f", dir, "--db", db, "--json")
	if code != 0 {
		t.Fatalf("freshness: exit %d\n%s", code, stderr)
	}
	var rows []struct{ Asset, Status, Reason string }
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("freshness --json: %v\n%s", err, out)
	}
	if len(rows) != 2 || rows[0].Status != "FAIL" || rows[1].Status != "FAIL" || !strings.Contains(rows[0].Reason+rows[1].Reason, "1h30m old") {
		t.Errorf("freshness: %+v; want both FAIL, wh/late 1h30m old", rows)
	}
	out, _, _ = run(t, "freshness", "-f", dir, "--db", db)
	if !strings.HasPrefix(out, "STATUS") || !strings.Contains(out, "wh/never") {
		t.Errorf("freshness: %s", out)
	}
}
