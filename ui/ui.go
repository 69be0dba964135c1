// Package ui owns Freshet's web UI: the React and TypeScript app in this folder
// (asset graph, partitions, runs, backfills, freshness, schedules), built by Vite
// into dist/ (`make build` runs `npm ci` and `npm run build`) and embedded in the
// binary, and the HTTP handler that serves it.
//
// `freshet serve` mounts Handler on every path the API does not use. Files
// under /static/ carry a content hash in their names and are cached for a year;
// index.html is revalidated on every load; any other path without a file
// extension is a client-side route and gets index.html. A binary built before
// the UI (dist/ holds only .gitkeep) serves a short page that says so.
package ui

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"
)

//go:embed all:dist
var dist embed.FS

// Handler serves the embedded build of the UI.
func Handler() http.Handler {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		panic(err) // "dist" is a valid path: cannot happen
	}
	return NewHandler(sub)
}

// NewHandler serves the UI built into files (the contents of dist/).
func NewHandler(files fs.FS) http.Handler {
	return &handler{files: files}
}

type handler struct {
	files fs.FS
	once  sync.Once
	etags map[string]string // file name → strong ETag of its content
	built bool
}

// The UI's hashed files live here (vite.config.ts: build.assetsDir).
const hashedDir = "static/"

// indexCSP limits what the page may load: its own scripts, styles and workers,
// and the API on its own origin (fetch and websocket).
const indexCSP = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; " +
	"font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"

func (h *handler) init() {
	h.etags = map[string]string{}
	_ = fs.WalkDir(h.files, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		b, err := fs.ReadFile(h.files, name)
		if err != nil {
			return nil
		}
		sum := sha256.Sum256(b)
		h.etags[name] = `"` + hex.EncodeToString(sum[:12]) + `"`
		return nil
	})
	_, h.built = h.etags["index.html"]
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.once.Do(h.init)
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "the web UI takes GET and HEAD", http.StatusMethodNotAllowed)
		return
	}
	w.Header().Set("X-Content-Type-Options", "nosniff")
	name := strings.TrimPrefix(path.Clean("/"+r.URL.Path), "/")
	if name == "" {
		name = "index.html"
	}
	if !h.built {
		h.serveNotBuilt(w, r, name)
		return
	}
	if _, ok := h.etags[name]; ok && name != "index.html" {
		if strings.HasPrefix(name, hashedDir) {
			w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		} else {
			w.Header().Set("Cache-Control", "no-cache")
		}
		h.serveFile(w, r, name)
		return
	}
	if name != "index.html" && (path.Ext(name) != "" || name+"/" == hashedDir || strings.HasPrefix(name, hashedDir)) {
		http.NotFound(w, r)
		return
	}
	// "/", or a client-side route such as /asset/sales/raw_orders or /runs/ID.
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("Content-Security-Policy", indexCSP)
	w.Header().Set("Referrer-Policy", "same-origin")
	h.serveFile(w, r, "index.html")
}

func (h *handler) serveFile(w http.ResponseWriter, r *http.Request, name string) {
	b, err := fs.ReadFile(h.files, name)
	if err != nil {
		http.Error(w, "read "+name+": "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("ETag", h.etags[name])
	// ServeContent sets the type from the extension and answers If-None-Match
	// (304) and ranges; embedded files have no modification time.
	http.ServeContent(w, r, path.Base(name), time.Time{}, bytes.NewReader(b))
}

// serveNotBuilt answers when the binary was built without the UI.
func (h *handler) serveNotBuilt(w http.ResponseWriter, r *http.Request, name string) {
	if name != "index.html" && path.Ext(name) != "" {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(http.StatusServiceUnavailable)
	fmt.Fprint(w, notBuiltPage)
}

const notBuiltPage = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Freshet: the web UI is not built</title>
<style>body{font:15px/1.5 system-ui,sans-serif;max-width:42rem;margin:4rem auto;padding:0 1rem;color:#1f2937}code{background:#f1f5f9;padding:1px 5px;border-radius:4px}</style></head>
<body><h1>The web UI is not built into this binary</h1>
<p>This <code>freshet</code> was compiled before the UI was. Run <code>make build</code> (it runs <code>npm ci</code> and <code>npm run build</code> in <code>ui/</code>, then builds the binary with the UI embedded), or <code>make run</code>.</p>
<p>The GraphQL API works all the same: <a href="/graphql">/graphql</a> (POST a JSON body; GET for queries). Probes: <a href="/healthz">/healthz</a>, <a href="/readyz">/readyz</a>.</p>
</body></html>
`
