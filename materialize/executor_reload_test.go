package materialize

import (
	"testing"

	"github.com/freshetdev/freshet/assets"
)

// Reloaded connections: an unchanged one keeps its pool, a changed one gets a
// new pool at its next use (the old stays open for the steps on it), a removed
// one is no longer defined.
func TestExecutorsSetConnections(t *testing.T) {
	t.Parallel()
	pg := func(url string) assets.Connection {
		return assets.Connection{Postgres: &assets.PostgresConnection{URL: url}}
	}
	// Pools connect lazily: these URLs are never dialled.
	e := &Executors{Connections: map[string]assets.Connection{"wh": pg("postgres://a@127.0.0.1:1/x"), "lake": pg("postgres://b@127.0.0.1:1/y")}}
	defer e.Close()
	wh1, err := e.pool("wh")
	if err != nil {
		t.Fatal(err)
	}
	lake1, err := e.pool("lake")
	if err != nil {
		t.Fatal(err)
	}
	e.SetConnections(map[string]assets.Connection{"wh": pg("postgres://a@127.0.0.1:1/x"), "lake": pg("postgres://b@127.0.0.1:1/z")})
	if wh2, _ := e.pool("wh"); wh2 != wh1 {
		t.Errorf("an unchanged connection got a new pool")
	}
	lake2, err := e.pool("lake")
	if err != nil || lake2 == lake1 {
		t.Errorf("a changed connection: pool %p (was %p), %v; want a new one", lake2, lake1, err)
	}
	if got := lake2.Config().ConnConfig.Database; got != "z" {
		t.Errorf("the new pool's database is %q, want z", got)
	}
	e.SetConnections(map[string]assets.Connection{"wh": pg("postgres://a@127.0.0.1:1/x")})
	if _, err := e.pool("lake"); err == nil {
		t.Errorf("a removed connection still has a pool")
	}
	if _, err := e.For(assets.SQLCompute{File: "t.sql", Connection: "lake"}); err == nil {
		t.Errorf("a removed connection still gives an SQL executor")
	}
}
