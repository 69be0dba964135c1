package gql

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// Options configure the HTTP API.
type Options struct {
	// AuthToken, when set, is required as "Authorization: Bearer <token>" on
	// /graphql and /metrics. The probes (/healthz, /readyz) stay open: load
	// balancers and orchestrators call them without credentials, and they say
	// nothing about the catalog.
	AuthToken string
	// NoIntrospection turns introspection off (it is on by default: tools and
	// the UI's development build rely on it).
	NoIntrospection bool
	// MaxBodyBytes caps a request body (default 1 MiB).
	MaxBodyBytes int64
	// MaxDepth caps how deeply a query nests fields (default 10; introspection
	// fields do not count). MaxComplexity caps its complexity (default 5,000):
	// every field costs 1, and a list field multiplies what it selects by the
	// number of items it may return (see complexity.go).
	MaxDepth, MaxComplexity int
	// Ready reports whether the server can serve (nil: always).
	Ready func(ctx context.Context) error
	// Metrics serves /metrics (nil: not served).
	Metrics http.Handler
	// NoResponseCache turns off the cache of assetGraph responses (see
	// graphCache), for measuring.
	NoResponseCache bool
	// gqlgenAssetGraph leaves every assetGraph field to gqlgen's generated
	// code (see writeAssetGraph), for the tests that compare the two.
	gqlgenAssetGraph bool
	// UI serves every path the API does not (the web UI and its client-side
	// routes). It needs no token: the page asks for one when the API does. Nil:
	// / says where the API is.
	UI http.Handler
}

func (o *Options) defaults() {
	if o.MaxBodyBytes == 0 {
		o.MaxBodyBytes = 1 << 20
	}
	if o.MaxDepth == 0 {
		o.MaxDepth = 10
	}
	if o.MaxComplexity == 0 {
		o.MaxComplexity = 5000
	}
}

// NewHandler returns the HTTP API: GraphQL at /graphql (POST with a JSON body
// for any operation; GET for queries only), the probes /healthz and /readyz, and
// /metrics when opt.Metrics is set.
func NewHandler(r *Resolver, opt Options) http.Handler {
	opt.defaults()
	cfg := Config{Resolvers: r}
	setComplexity(&cfg.Complexity)
	srv := handler.New(NewExecutableSchema(cfg))
	srv.AddTransport(transport.GET{})
	srv.AddTransport(transport.POST{})
	// Subscriptions. The websocket library refuses a handshake from another
	// origin than the server's (a page elsewhere cannot ride the user's
	// browser); a browser cannot set headers on a websocket, so the token may
	// come in the connection_init payload ({"Authorization": "Bearer …"}).
	srv.AddTransport(transport.Websocket{
		KeepAlivePingInterval: 10 * time.Second,
		InitFunc: func(ctx context.Context, p transport.InitPayload) (context.Context, *transport.InitPayload, error) {
			if opt.AuthToken == "" || authenticated(ctx) {
				return ctx, nil, nil
			}
			got, ok := strings.CutPrefix(p.Authorization(), "Bearer ")
			if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(opt.AuthToken)) != 1 {
				return ctx, nil, errors.New("unauthorized: send {\"Authorization\": \"Bearer <token>\"} in connection_init")
			}
			return ctx, nil, nil
		},
	})
	if !opt.NoIntrospection {
		srv.Use(extension.Introspection{})
	}
	// Parsed and validated queries are kept: a UI asks the same few again and again.
	srv.SetQueryCache(lru.New[*ast.QueryDocument](1000))
	if !opt.NoResponseCache {
		srv.AroundResponses((&graphCache{}).around)
	}
	if !opt.gqlgenAssetGraph {
		srv.AroundRootFields(r.writeAssetGraph)
	}
	srv.Use(depthLimit{max: opt.MaxDepth})
	srv.Use(mutationsOverPOST{})
	srv.Use(extension.FixedComplexityLimit(opt.MaxComplexity))
	srv.SetRecoverFunc(func(ctx context.Context, err any) error {
		r.logger().Error("resolver panicked", "error", err, "operation", operationName(ctx))
		return fmt.Errorf("internal error: the server logged it")
	})

	mux := http.NewServeMux()
	mux.Handle("/graphql", requireToken(opt.AuthToken, true, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		// A body over the limit is refused before it is read when its length is
		// declared; one sent in chunks is cut at the limit, and the decode error
		// says so.
		if req.ContentLength > opt.MaxBodyBytes {
			http.Error(w, fmt.Sprintf("request body too large: %d bytes, and this server takes at most %d", req.ContentLength, opt.MaxBodyBytes), http.StatusRequestEntityTooLarge)
			return
		}
		req.Body = http.MaxBytesReader(w, req.Body, opt.MaxBodyBytes)
		if len(req.URL.RawQuery) > int(opt.MaxBodyBytes) {
			http.Error(w, "query string too long", http.StatusRequestURITooLong)
			return
		}
		if req.Method != http.MethodGet && req.Method != http.MethodPost {
			w.Header().Set("Allow", "GET, POST")
			http.Error(w, "GraphQL takes GET (queries) or POST (a JSON body)", http.StatusMethodNotAllowed)
			return
		}
		ctx := withView(req.Context(), r.Engine)
		if req.Method == http.MethodPost && req.Header.Get("Upgrade") == "" {
			ctx = context.WithValue(ctx, overPOSTKey{}, true)
		}
		srv.ServeHTTP(w, req.WithContext(ctx))
	})))
	if opt.Metrics != nil {
		mux.Handle("/metrics", requireToken(opt.AuthToken, false, opt.Metrics))
	}
	if opt.UI != nil {
		mux.Handle("/", opt.UI)
	} else {
		mux.HandleFunc("/{$}", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			fmt.Fprint(w, `<!doctype html><title>Freshet</title><h1>Freshet</h1>
<p>This server speaks GraphQL at <a href="/graphql">/graphql</a> (POST a JSON body; GET for queries).
<p>Probes: <a href="/healthz">/healthz</a>, <a href="/readyz">/readyz</a>. Metrics: <a href="/metrics">/metrics</a>.`)
		})
	}
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, req *http.Request) {
		if opt.Ready != nil {
			ctx, cancel := context.WithTimeout(req.Context(), 5*time.Second)
			defer cancel()
			if err := opt.Ready(ctx); err != nil {
				http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
				return
			}
		}
		fmt.Fprintln(w, "ready")
	})
	return mux
}

type (
	authenticatedKey struct{}
	overPOSTKey      struct{}
)

// authenticated reports whether the request carried the token in its header.
func authenticated(ctx context.Context) bool { return ctx.Value(authenticatedKey{}) != nil }

// requireToken answers 401 to a request without "Authorization: Bearer token";
// with no token configured it lets everything through. With websocketInit, a
// websocket handshake without the header goes on: its connection_init must then carry the token
// (see NewHandler). The comparison takes the same time whatever the bytes sent,
// so the token cannot be guessed byte by byte.
func requireToken(token string, websocketInit bool, next http.Handler) http.Handler {
	if token == "" {
		return next
	}
	want := []byte(token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if ok && subtle.ConstantTimeCompare([]byte(got), want) == 1 {
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), authenticatedKey{}, true)))
			return
		}
		if websocketInit && r.Header.Get("Authorization") == "" && strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="freshet"`)
		http.Error(w, "unauthorized: this server needs Authorization: Bearer <token> (the --auth-token it was started with)", http.StatusUnauthorized)
	})
}

func operationName(ctx context.Context) string {
	if !graphql.HasOperationContext(ctx) {
		return ""
	}
	return graphql.GetOperationContext(ctx).OperationName
}

// mutationsOverPOST refuses a mutation that did not come as a POST with a JSON
// body: GET is refused by its transport already, and a websocket is for
// subscriptions (queries are fine there too).
type mutationsOverPOST struct{}

func (mutationsOverPOST) ExtensionName() string                          { return "MutationsOverPOST" }
func (mutationsOverPOST) Validate(schema graphql.ExecutableSchema) error { return nil }

func (mutationsOverPOST) MutateOperationContext(ctx context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	if oc.Operation != nil && oc.Operation.Operation == ast.Mutation && ctx.Value(overPOSTKey{}) == nil {
		return gqlerror.Errorf("mutations are accepted only as POST requests with a JSON body")
	}
	return nil
}

// depthLimit refuses operations that nest fields deeper than max. Fields of
// introspection (__schema, __type) are not counted: the standard introspection
// query nests type references deeply and is harmless.
type depthLimit struct{ max int }

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = depthLimit{}

func (depthLimit) ExtensionName() string                          { return "DepthLimit" }
func (depthLimit) Validate(schema graphql.ExecutableSchema) error { return nil }

func (d depthLimit) MutateOperationContext(_ context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	if oc.Operation == nil {
		return nil
	}
	if depth := selectionDepth(oc.Operation.SelectionSet, map[string]bool{}); depth > d.max {
		return gqlerror.Errorf("query too deep: it nests fields %d levels deep, and this server allows %d", depth, d.max)
	}
	return nil
}

// selectionDepth is the deepest nesting of fields in set, following fragments
// (each fragment once per path, so a fragment cycle, which validation refuses
// anyway, cannot loop).
func selectionDepth(set ast.SelectionSet, inFragment map[string]bool) int {
	deepest := 0
	for _, sel := range set {
		switch s := sel.(type) {
		case *ast.Field:
			if strings.HasPrefix(s.Name, "__") {
				continue
			}
			deepest = max(deepest, 1+selectionDepth(s.SelectionSet, inFragment))
		case *ast.InlineFragment:
			deepest = max(deepest, selectionDepth(s.SelectionSet, inFragment))
		case *ast.FragmentSpread:
			if s.Definition == nil || inFragment[s.Name] {
				continue
			}
			inFragment[s.Name] = true
			deepest = max(deepest, selectionDepth(s.Definition.SelectionSet, inFragment))
			delete(inFragment, s.Name)
		}
	}
	return deepest
}
