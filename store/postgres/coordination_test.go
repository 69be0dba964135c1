package postgres

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/freshetdev/freshet/store"
	"github.com/freshetdev/freshet/store/postgres/pgtest"
	"github.com/freshetdev/freshet/store/storetest"
)

// openCoordinationStore opens a store on a fresh schema of its own, for the
// conformance suites.
func openCoordinationStore(t *testing.T) storetest.CoordinationStore {
	s, err := Open(t.Context(), pgtest.URL(t))
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestCoordination holds the driver to the leases, ticks and freshness changes
// every store shares.
func TestCoordination(t *testing.T) {
	t.Parallel()
	storetest.RunCoordination(t, openCoordinationStore)
}

// TestBatchReads holds the driver's batch reads to its single reads.
func TestBatchReads(t *testing.T) {
	t.Parallel()
	storetest.RunBatchReads(t, openCoordinationStore)
}

// Processes (stores with pools of their own) racing for one lease, and for one
// tick: exactly one gets it.
func TestCoordinationAcrossStores(t *testing.T) {
	t.Parallel()
	const racers = 8
	stores := openStores(t, 4)
	for round := range 5 {
		var (
			wg         sync.WaitGroup
			start      = make(chan struct{})
			leases     = make([]store.LeaseInfo, racers)
			ticks      = make([]bool, racers)
			errs       = make([]error, 2*racers)
			name, tick = fmt.Sprintf("leader-%d", round), time.Date(2026, 4, 8, round, 0, 0, 0, time.UTC)
		)
		for i := range racers {
			s := stores[i%len(stores)]
			wg.Go(func() {
				<-start
				leases[i], errs[i] = s.AcquireLease(t.Context(), name, fmt.Sprintf("p%d", i), time.Hour)
			})
			wg.Go(func() {
				<-start
				ticks[i], errs[racers+i] = s.RecordTick(t.Context(), store.Tick{Schedule: "nightly", At: tick, Status: store.TickStarted})
			})
		}
		close(start)
		wg.Wait()
		held, recorded := 0, 0
		for i := range racers {
			if leases[i].Held {
				held++
			}
			if ticks[i] {
				recorded++
			}
		}
		for _, err := range errs {
			if err != nil {
				t.Errorf("round %d: %v", round, err)
			}
		}
		if held != 1 || recorded != 1 {
			t.Errorf("round %d: %d processes hold the lease and %d recorded the tick; want 1 and 1", round, held, recorded)
		}
	}
}

// Leases are judged on the database's clock: a process whose own clock runs hours
// ahead does not take a lease that has not expired.
func TestLeaseOnDatabaseClock(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	honest, err := Open(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { honest.Close() })
	ahead, err := Open(t.Context(), url, WithClock(func() time.Time { return time.Now().Add(3 * time.Hour) }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ahead.Close() })

	a, err := honest.AcquireLease(t.Context(), "leader", "honest", time.Hour)
	if err != nil || !a.Held {
		t.Fatalf("AcquireLease = %+v, %v; want held", a, err)
	}
	b, err := ahead.AcquireLease(t.Context(), "leader", "ahead", time.Hour)
	if err != nil || b.Held || b.Holder != "honest" {
		t.Errorf("AcquireLease by a process whose clock is 3h ahead = %+v, %v; want refused, held by honest", b, err)
	}
	if d := time.Until(a.ExpiresAt); d < 50*time.Minute || d > 70*time.Minute {
		t.Errorf("lease expires at %s, %s from now; want about an hour (the database's clock)", a.ExpiresAt, d)
	}
}
