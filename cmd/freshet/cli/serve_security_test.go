package cli

import (
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func httpDo(t *testing.T, method, target, token, contentType, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, target, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(raw)
}

// With a token, every API path answers 401 without it (or with another), and
// the probes stay open.
func TestServeRequiresTheToken(t *testing.T) {
	t.Parallel()
	s := startServe(t, copyExample(t), tempDB(t), "--auth-token", "s3cret-token")
	const q = `{"query":"{ definitions { assets } }"}`
	for _, c := range []struct {
		method, path, token, body string
	}{
		{"POST", "/graphql", "", q},
		{"POST", "/graphql", "wrong", q},
		{"POST", "/graphql", "s3cret-toke", q},
		{"GET", "/graphql?query=" + url.QueryEscape("{ definitions { assets } }"), "", ""},
		{"GET", "/metrics", "", ""},
		{"GET", "/metrics", "wrong", ""},
	} {
		code, body := httpDo(t, c.method, s.url+c.path, c.token, "application/json", c.body)
		if code != http.StatusUnauthorized || !strings.Contains(body, "Bearer") {
			t.Errorf("%s %s with token %q: %d %q; want 401 saying how to authenticate", c.method, c.path, c.token, code, body)
		}
	}
	if code, body := httpDo(t, "POST", s.url+"/graphql", "s3cret-token", "application/json", q); code != 200 || !strings.Contains(body, `"assets":6`) {
		t.Errorf("POST /graphql with the token: %d %s", code, body)
	}
	if code, body := httpDo(t, "GET", s.url+"/metrics", "s3cret-token", "", ""); code != 200 || !strings.Contains(body, "go_goroutines") {
		t.Errorf("GET /metrics with the token: %d", code)
	}
	for _, probe := range []string{"/healthz", "/readyz"} {
		if code, _ := httpDo(t, "GET", s.url+probe, "", "", ""); code != 200 {
			t.Errorf("GET %s without a token: %d; want 200 (probes stay open)", probe, code)
		}
	}
}

// Binding an address other machines reach needs a token.
func TestServeRefusesAnOpenBindWithoutToken(t *testing.T) {
	t.Parallel()
	dir := copyExample(t)
	for _, addr := range []string{"0.0.0.0:0", ":0", "192.0.2.10:3000"} {
		_, stderr, code := run(t, "serve", "-f", dir, "--db", tempDB(t), "--addr", addr)
		if code == 0 || !strings.Contains(stderr, "--auth-token") || !strings.Contains(stderr, addr) {
			t.Errorf("serve --addr %s without a token: exit %d, %q; want a refusal naming the address and --auth-token", addr, code, stderr)
		}
	}
}

// Limits: depth, complexity, body size; mutations only over POST with JSON;
// introspection on unless turned off.
func TestServeLimits(t *testing.T) {
	t.Parallel()
	dir := copyExample(t)
	s := startServe(t, dir, tempDB(t))

	deep := `{ asset(key: "sales/daily_report") { ` + strings.Repeat("upstream { ", 10) + "key" + strings.Repeat(" }", 10) + " } }"
	if errs := s.query(t, deep, nil, nil); !hasError(errs, "query too deep: it nests fields 12 levels deep, and this server allows 10") {
		t.Errorf("a query 12 levels deep: errors %+v", errs)
	}
	// Six levels (within the depth limit) of lists inside lists.
	bomb := `{ asset(key: "sales/daily_report") { upstream { downstream { upstream { downstream { upstream { key } } } } } } }`
	if errs := s.query(t, bomb, nil, nil); !hasError(errs, "exceeds the limit of 5000") {
		t.Errorf("a complexity bomb: errors %+v", errs)
	}
	var ok struct {
		Asset struct{ Upstream []struct{ Key string } }
	}
	s.mustQuery(t, `{ asset(key: "sales/daily_report") { upstream { key } } }`, nil, &ok)
	if len(ok.Asset.Upstream) != 2 {
		t.Errorf("a plain query: %+v", ok)
	}

	mutation := url.QueryEscape(`mutation { reloadDefinitions { assets } }`)
	if code, body := httpDo(t, "GET", s.url+"/graphql?query="+mutation, "", "", ""); !strings.Contains(body, "only as POST") {
		t.Errorf("a mutation over GET: %d %s; want it refused", code, body)
	}
	if code, body := httpDo(t, "GET", s.url+"/graphql?query="+url.QueryEscape(`{ definitions { assets } }`), "", "", ""); code != 200 || !strings.Contains(body, `"assets":6`) {
		t.Errorf("a query over GET: %d %s", code, body)
	}
	// A form post (what a cross-site page can send without CORS) is not GraphQL.
	if code, _ := httpDo(t, "POST", s.url+"/graphql", "", "application/x-www-form-urlencoded", "query=mutation+{+reloadDefinitions+{+assets+}+}"); code == 200 {
		t.Errorf("a form POST: 200; want it refused")
	}
	big := `{"query":"{ definitions { assets } }","variables":{"pad":"` + strings.Repeat("x", 2<<20) + `"}}`
	if code, body := httpDo(t, "POST", s.url+"/graphql", "", "application/json", big); code != http.StatusRequestEntityTooLarge || !strings.Contains(body, "too large") {
		t.Errorf("a 2 MiB body: %d %q; want 413 (the limit is 1 MiB)", code, body)
	}
	var schema struct {
		Schema struct{ QueryType struct{ Name string } } `json:"__schema"`
	}
	s.mustQuery(t, `{ __schema { queryType { name } } }`, nil, &schema)
	if schema.Schema.QueryType.Name != "Query" {
		t.Errorf("introspection: %+v", schema)
	}

	closed := startServe(t, dir, tempDB(t), "--no-introspection")
	if errs := closed.query(t, `{ __schema { queryType { name } } }`, nil, nil); len(errs) == 0 {
		t.Errorf("introspection with --no-introspection: no error")
	}
}

// SIGHUP loads the definitions again, as reloadDefinitions does.
func TestServeReloadsOnSIGHUP(t *testing.T) {
	t.Parallel()
	dir := copyExample(t)
	s := startServe(t, dir, tempDB(t))
	path := filepath.Join(dir, "freshet.yaml")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(raw), "\nassets:\n", "\nassets:\n  - key: sales/extra\n    deps: [sales/daily_report]\n    compute: {command: [\"true\"]}\n", 1)
	if text == string(raw) {
		t.Fatal("the example changed: no assets: line")
	}
	writeFile(t, path, text)
	if err := s.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the reload", 10*time.Second, func() bool {
		var d struct{ Definitions struct{ Assets int } }
		s.mustQuery(t, `{ definitions { assets } }`, nil, &d)
		return d.Definitions.Assets == 7
	})
	var a struct {
		Asset *struct{ Upstream []struct{ Key string } }
	}
	s.mustQuery(t, `{ asset(key: "sales/extra") { upstream { key } } }`, nil, &a)
	if a.Asset == nil || len(a.Asset.Upstream) != 1 || a.Asset.Upstream[0].Key != "sales/daily_report" {
		t.Errorf("the reloaded asset: %+v", a.Asset)
	}
}
