package postgres

import (
	"testing"

	"github.com/freshetdev/freshet/store"
	"github.com/freshetdev/freshet/store/postgres/pgtest"
	"github.com/freshetdev/freshet/store/storetest"
)

// TestConformance holds the driver to the behaviour every store.Store shares.
// Each test gets a fresh schema of its own.
func TestConformance(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := Open(t.Context(), pgtest.URL(t))
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}
