package gql

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/vektah/gqlparser/v2"
)

func TestSelectionDepth(t *testing.T) {
	t.Parallel()
	schema := gqlparser.MustLoadSchema(sources...)
	for _, c := range []struct {
		query string
		want  int
	}{
		{`{ definitions { assets } }`, 2},
		{`{ asset(key: "a") { upstream { upstream { key } } } }`, 4},
		// Fragments count where they are spread; introspection does not count.
		{`{ asset(key: "a") { ...up } } fragment up on Asset { upstream { key } }`, 3},
		{`{ asset(key: "a") { ... on Asset { downstream { key } } } }`, 3},
		{`{ __schema { types { fields { type { ofType { ofType { ofType { name } } } } } } } }`, 0},
		{`{ a: definitions { assets } b: asset(key: "x") { upstream { downstream { key } } } }`, 4},
	} {
		doc, errs := gqlparser.LoadQuery(schema, c.query)
		if len(errs) > 0 {
			t.Fatalf("%s: %v", c.query, errs)
		}
		if got := selectionDepth(doc.Operations[0].SelectionSet, map[string]bool{}); got != c.want {
			t.Errorf("%s: depth %d, want %d", c.query, got, c.want)
		}
	}
}

func TestRequireToken(t *testing.T) {
	t.Parallel()
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if authenticated(r.Context()) {
			w.Header().Set("X-Authenticated", "yes")
		}
	})
	for _, c := range []struct {
		name          string
		token, header string
		websocket     bool // an Upgrade: websocket request on a path that allows it
		want          int
		authenticated bool
	}{
		{"no token configured", "", "", false, 200, false},
		{"the token", "s3cret", "Bearer s3cret", false, 200, true},
		{"no header", "s3cret", "", false, 401, false},
		{"another token", "s3cret", "Bearer s3cre", false, 401, false},
		{"not a bearer", "s3cret", "Basic s3cret", false, 401, false},
		{"websocket, token to come in connection_init", "s3cret", "", true, 200, false},
		{"websocket with a wrong header", "s3cret", "Bearer nope", true, 401, false},
	} {
		for _, allow := range []bool{false, true} {
			h := requireToken(c.token, allow, ok)
			req := httptest.NewRequest(http.MethodGet, "/graphql", nil)
			if c.header != "" {
				req.Header.Set("Authorization", c.header)
			}
			if c.websocket {
				req.Header.Set("Upgrade", "websocket")
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			want := c.want
			if c.websocket && c.header == "" && !allow {
				want = 401 // a path without websocket init (/metrics) never lets it through
			}
			if rec.Code != want || (rec.Header().Get("X-Authenticated") == "yes") != (c.authenticated && want == 200) {
				t.Errorf("%s (websocket init allowed: %v): %d, authenticated %q; want %d", c.name, allow, rec.Code, rec.Header().Get("X-Authenticated"), want)
			}
		}
	}
}
