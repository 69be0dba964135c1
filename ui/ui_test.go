package ui

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"
)

func get(t *testing.T, h http.Handler, method, target string, header map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestHandlerServesTheBuild(t *testing.T) {
	h := NewHandler(fstest.MapFS{
		".gitkeep":                   {},
		"index.html":                 {Data: []byte(`<!doctype html><div id="root"></div><script src="/static/index-abc123.js"></script>`)},
		"static/index-abc123.js":     {Data: []byte(`console.log("app")`)},
		"static/index-def456.css":    {Data: []byte(`body{}`)},
		"static/elk-worker.min-x.js": {Data: []byte(`self.onmessage=null`)},
		"favicon.svg":                {Data: []byte(`<svg/>`)},
	})

	for _, tc := range []struct {
		target, wantBody, wantType, wantCache string
	}{
		{"/", `<div id="root">`, "text/html", "no-cache"},
		{"/index.html", `<div id="root">`, "text/html", "no-cache"},
		// Client-side routes, however deep, get index.html.
		{"/assets", `<div id="root">`, "text/html", "no-cache"},
		{"/asset/sales/raw_orders?partition=2026-01-01", `<div id="root">`, "text/html", "no-cache"},
		{"/runs/6dd21c89-6b1f-4f8e-9a55-0c2f7d2d8a11", `<div id="root">`, "text/html", "no-cache"},
		// Hashed files are cached for good; others are revalidated.
		{"/static/index-abc123.js", `console.log`, "text/javascript", "public, max-age=31536000, immutable"},
		{"/static/index-def456.css", `body{}`, "text/css", "public, max-age=31536000, immutable"},
		{"/favicon.svg", `<svg/>`, "image/svg+xml", "no-cache"},
	} {
		rec := get(t, h, http.MethodGet, tc.target, nil)
		if rec.Code != http.StatusOK {
			t.Errorf("GET %s: %d; want 200", tc.target, rec.Code)
			continue
		}
		if !strings.Contains(rec.Body.String(), tc.wantBody) {
			t.Errorf("GET %s: body %q; want it to contain %q", tc.target, rec.Body.String(), tc.wantBody)
		}
		if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, tc.wantType) {
			t.Errorf("GET %s: Content-Type %q; want %s", tc.target, ct, tc.wantType)
		}
		if cc := rec.Header().Get("Cache-Control"); cc != tc.wantCache {
			t.Errorf("GET %s: Cache-Control %q; want %q", tc.target, cc, tc.wantCache)
		}
		if rec.Header().Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: no nosniff", tc.target)
		}
	}
	if csp := get(t, h, http.MethodGet, "/runs", nil).Header().Get("Content-Security-Policy"); !strings.Contains(csp, "connect-src 'self'") {
		t.Errorf("index.html: Content-Security-Policy %q", csp)
	}

	// Missing files with an extension, and anything under /static/, are 404s:
	// a stale hashed name must not get index.html (the browser would run HTML as JS).
	for _, target := range []string{"/static/index-gone.js", "/static/missing", "/robots.txt", "/static/../../etc/passwd.js"} {
		if rec := get(t, h, http.MethodGet, target, nil); rec.Code != http.StatusNotFound {
			t.Errorf("GET %s: %d; want 404", target, rec.Code)
		}
	}
	// The directory itself is no listing.
	if rec := get(t, h, http.MethodGet, "/static/", nil); rec.Code != http.StatusNotFound {
		t.Errorf("GET /static/: %d; want 404", rec.Code)
	}

	// A revalidation with the ETag is answered 304 without a body.
	first := get(t, h, http.MethodGet, "/", nil)
	etag := first.Header().Get("ETag")
	if etag == "" {
		t.Fatal("GET /: no ETag")
	}
	if rec := get(t, h, http.MethodGet, "/", map[string]string{"If-None-Match": etag}); rec.Code != http.StatusNotModified || rec.Body.Len() != 0 {
		t.Errorf("GET / If-None-Match: %d with %d bytes; want 304 and none", rec.Code, rec.Body.Len())
	}

	if rec := get(t, h, http.MethodHead, "/static/index-abc123.js", nil); rec.Code != http.StatusOK {
		t.Errorf("HEAD: %d", rec.Code)
	}
	if rec := get(t, h, http.MethodPost, "/", nil); rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != "GET, HEAD" {
		t.Errorf("POST /: %d, Allow %q; want 405 and GET, HEAD", rec.Code, rec.Header().Get("Allow"))
	}
}

func TestHandlerWithoutBuild(t *testing.T) {
	h := NewHandler(fstest.MapFS{".gitkeep": {}})
	for _, target := range []string{"/", "/assets", "/runs/abc"} {
		rec := get(t, h, http.MethodGet, target, nil)
		body := rec.Body.String()
		if rec.Code != http.StatusServiceUnavailable || !strings.Contains(body, "make build") || !strings.Contains(body, `href="/graphql"`) {
			t.Errorf("GET %s without a build: %d\n%s\nwant 503 and a page saying to run make build, pointing at /graphql", target, rec.Code, body)
		}
		if rec.Header().Get("Cache-Control") != "no-cache" {
			t.Errorf("GET %s without a build: Cache-Control %q; want no-cache (the next build must show)", target, rec.Header().Get("Cache-Control"))
		}
	}
	if rec := get(t, h, http.MethodGet, "/static/index-abc.js", nil); rec.Code != http.StatusNotFound {
		t.Errorf("GET a script without a build: %d; want 404", rec.Code)
	}
}

// The embedded build (whatever it holds on this checkout) is served without a panic.
func TestEmbeddedHandler(t *testing.T) {
	rec := get(t, Handler(), http.MethodGet, "/", nil)
	if rec.Code != http.StatusOK && rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("GET / of the embedded UI: %d", rec.Code)
	}
}
