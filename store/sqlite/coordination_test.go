package sqlite

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/freshetdev/freshet/store"
	"github.com/freshetdev/freshet/store/storetest"
)

// openCoordinationStore opens a store on a file of its own, for the conformance
// suites.
func openCoordinationStore(t *testing.T) storetest.CoordinationStore {
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), ".freshet", "freshet.db"))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestCoordination(t *testing.T) {
	storetest.RunCoordination(t, openCoordinationStore)
}

func TestBatchReads(t *testing.T) {
	storetest.RunBatchReads(t, openCoordinationStore)
}

// Leases are judged on the store's clock: a lease is held until the clock reaches
// its ExpiresAt, to the microsecond, and free from then on.
func TestLeaseOnStoreClock(t *testing.T) {
	clock := newFakeClock()
	s, _ := openTemp(t, WithClock(clock.Now))
	ctx := t.Context()
	a, err := s.AcquireLease(ctx, "leader", "a", 10*time.Second)
	if err != nil || !a.Held || !a.ExpiresAt.Equal(clock.Now().Add(10*time.Second)) {
		t.Fatalf("AcquireLease = %+v, %v; want held until the clock's now + 10s", a, err)
	}
	clock.Advance(10*time.Second - time.Microsecond)
	if b, err := s.AcquireLease(ctx, "leader", "b", time.Minute); err != nil || b.Held {
		t.Errorf("AcquireLease by b a microsecond before a's lease expires = %+v, %v; want refused", b, err)
	}
	if g, err := s.GetLease(ctx, "leader"); err != nil || !g.Held || g.Holder != "a" {
		t.Errorf("GetLease a microsecond before expiry = %+v, %v; want held by a", g, err)
	}
	clock.Advance(time.Microsecond)
	if g, err := s.GetLease(ctx, "leader"); err != nil || g.Held {
		t.Errorf("GetLease at expiry = %+v, %v; want not held", g, err)
	}
	b, err := s.AcquireLease(ctx, "leader", "b", time.Minute)
	if err != nil || !b.Held || !b.AcquiredAt.Equal(clock.Now()) {
		t.Errorf("AcquireLease by b at a's expiry = %+v, %v; want held, acquired now", b, err)
	}

	// Freshness changes and notifications without a time get the store's clock.
	mustSync(t, s, defsOf(built("a/x", nil)))
	cs, err := s.RecordFreshness(ctx, []store.FreshnessChange{{Asset: "a/x", Status: store.FreshnessPass}})
	if err != nil || len(cs) != 1 || !cs[0].At.Equal(clock.Now()) {
		t.Fatalf("RecordFreshness without a time = %+v, %v; want At = the store's clock %s", cs, err, clock.Now())
	}
	clock.Advance(time.Minute)
	if err := s.MarkNotified(ctx, []int64{cs[0].ID}, time.Time{}); err != nil {
		t.Fatal(err)
	}
	got, err := s.FreshnessEvents(ctx, store.FreshnessQuery{})
	if err != nil || len(got) != 1 || !got[0].NotifiedAt.Equal(clock.Now()) {
		t.Errorf("after MarkNotified without a time: %+v, %v; want notified at the store's clock %s", got, err, clock.Now())
	}
}
