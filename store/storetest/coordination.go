package storetest

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/freshetdev/freshet/assets"
	"github.com/freshetdev/freshet/store"
)

// CoordinationStore is a store with the engine's queue, the coordination records
// and the batch reads: what RunCoordination and RunBatchReads test. (The queue is
// there to make the runs a tick names and whose steps and attempts the batch
// reads read.)
type CoordinationStore interface {
	QueueStore
	store.Coordination
	store.BatchReader
}

// RunCoordination runs the conformance suite of store.Coordination against the
// stores open returns: leases, schedule ticks and freshness changes. As for Run,
// open must return a fresh, empty, migrated store on every call and register its
// cleanup with t; it is called from parallel subtests. Every test syncs the queue
// catalog first (see RunQueue).
//
// Leases are judged on the store's clock: the expiry test takes a lease of 200ms
// and polls until another holder gets it, checking it never does before the
// lease's ExpiresAt; it asserts no speed.
func RunCoordination(t *testing.T, open func(t *testing.T) CoordinationStore) {
	t.Helper()
	runCGroups(t, open, []cgroup{
		{"Lease", []ctest{
			{"TakeFree", testLeaseTakeFree},
			{"HeldByAnother", testLeaseHeldByAnother},
			{"Renew", testLeaseRenew},
			{"Expiry", testLeaseExpiry},
			{"Release", testLeaseRelease},
			{"Race", testLeaseRace},
			{"Validation", testLeaseValidation},
		}},
		{"Tick", []ctest{
			{"RecordOnce", testTickRecordOnce},
			{"ConcurrentRecord", testTickConcurrent},
			{"Update", testTickUpdate},
			{"UnknownRun", testTickUnknownRun},
			{"LastTicks", testLastTicks},
			{"OrderAndLimit", testTicksOrderAndLimit},
			{"Validation", testTickValidation},
		}},
		{"Freshness", []ctest{
			{"RoundTrip", testFreshnessRoundTrip},
			{"UnknownAsset", testFreshnessUnknownAsset},
			{"Validation", testFreshnessValidation},
			{"Latest", testLatestFreshness},
			{"Filters", testFreshnessFilters},
			{"MarkNotified", testMarkNotified},
		}},
	})
}

type ctest struct {
	name string
	run  func(t *testing.T, f *cfixture)
}

type cgroup struct {
	name  string
	tests []ctest
}

func runCGroups(t *testing.T, open func(t *testing.T) CoordinationStore, groups []cgroup) {
	t.Helper()
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			for _, tc := range g.tests {
				t.Run(tc.name, func(t *testing.T) {
					t.Parallel()
					tc.run(t, newCFixture(t, open))
				})
			}
		})
	}
}

// cfixture is one coordination store under test, with the queue catalog synced.
type cfixture struct {
	*qfixture
	c CoordinationStore
}

func newCFixture(t *testing.T, open func(t *testing.T) CoordinationStore) *cfixture {
	t.Helper()
	var c CoordinationStore
	q := newQFixture(t, func(t *testing.T) QueueStore {
		c = open(t)
		if c == nil {
			return nil
		}
		return c
	})
	return &cfixture{qfixture: q, c: c}
}

// ---- leases -------------------------------------------------------------------

func leaseString(l store.LeaseInfo) string {
	return fmt.Sprintf("{%s holder %q held %v acquired %s renewed %s expires %s}",
		l.Name, l.Holder, l.Held, ts(l.AcquiredAt), ts(l.RenewedAt), ts(l.ExpiresAt))
}

// checkLeaseShape checks what every lease must look like.
func checkLeaseShape(t *testing.T, what string, l store.LeaseInfo) {
	t.Helper()
	if l.Holder == "" || l.AcquiredAt.IsZero() || l.RenewedAt.Before(l.AcquiredAt) || l.ExpiresAt.Before(l.RenewedAt) {
		t.Errorf("%s = %s; want a holder, acquired <= renewed <= expires", what, leaseString(l))
	}
	for _, tm := range []time.Time{l.AcquiredAt, l.RenewedAt, l.ExpiresAt} {
		if tm.Location() != time.UTC {
			t.Errorf("%s = %s: time %s not in UTC", what, leaseString(l), tm)
			break
		}
	}
}

func (f *cfixture) acquire(name, holder string, ttl time.Duration) store.LeaseInfo {
	f.t.Helper()
	l, err := f.c.AcquireLease(f.ctx, name, holder, ttl)
	if err != nil {
		f.t.Fatalf("AcquireLease(%s, %s, %s): %v", name, holder, ttl, err)
	}
	what := fmt.Sprintf("AcquireLease(%s, %s, %s)", name, holder, ttl)
	checkLeaseShape(f.t, what, l)
	if l.Name != name || (l.Held && l.Holder != holder) || (!l.Held && l.Holder == holder) {
		f.t.Errorf("%s = %s; want lease %s, held exactly when %s is its holder", what, leaseString(l), name, holder)
	}
	if l.Held && l.ExpiresAt.Sub(l.RenewedAt) != ttl.Truncate(time.Microsecond) {
		f.t.Errorf("%s = %s; want it to expire %s after it was renewed", what, leaseString(l), ttl)
	}
	return l
}

func (f *cfixture) getLease(name string) store.LeaseInfo {
	f.t.Helper()
	l, err := f.c.GetLease(f.ctx, name)
	if err != nil {
		f.t.Fatalf("GetLease(%s): %v", name, err)
	}
	if l == nil || l.Name != name {
		f.t.Fatalf("GetLease(%s) = %v", name, l)
	}
	checkLeaseShape(f.t, "GetLease("+name+")", *l)
	return *l
}

func (f *cfixture) release(name, holder string) {
	f.t.Helper()
	if err := f.c.ReleaseLease(f.ctx, name, holder); err != nil {
		f.t.Fatalf("ReleaseLease(%s, %s): %v", name, holder, err)
	}
}

// sameLease compares everything but Held.
func sameLease(a, b store.LeaseInfo) bool {
	a.Held, b.Held = false, false
	return leaseString(a) == leaseString(b)
}

// testLeaseTakeFree: a lease never taken is taken at once; names are independent.
func testLeaseTakeFree(t *testing.T, f *cfixture) {
	if l, err := f.c.GetLease(f.ctx, "leader"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetLease of a lease never taken = %v, %v; want store.ErrNotFound", l, err)
	}
	l := f.acquire("leader", "a", time.Hour)
	if !l.Held || l.Holder != "a" || !l.AcquiredAt.Equal(l.RenewedAt) {
		t.Errorf("AcquireLease of a free lease = %s; want held by a, acquired when renewed", leaseString(l))
	}
	g := f.getLease("leader")
	if !g.Held || !sameLease(g, l) {
		t.Errorf("GetLease after it was taken = %s; want %s, held", leaseString(g), leaseString(l))
	}
	other := f.acquire("checker", "b", time.Minute)
	if !other.Held || other.Holder != "b" {
		t.Errorf("AcquireLease of another free lease = %s; want held by b", leaseString(other))
	}
	if g := f.getLease("leader"); !g.Held || !sameLease(g, l) {
		t.Errorf("GetLease(leader) after another lease was taken = %s; want %s unchanged", leaseString(g), leaseString(l))
	}
}

// testLeaseHeldByAnother: nobody else takes a lease before it expires, and trying
// changes nothing.
func testLeaseHeldByAnother(t *testing.T, f *cfixture) {
	a := f.acquire("leader", "a", time.Hour)
	for _, holder := range []string{"b", "c", "b"} {
		l := f.acquire("leader", holder, 2*time.Hour)
		if l.Held || !sameLease(l, a) {
			t.Errorf("AcquireLease by %s of a's lease = %s; want not held, a's lease %s as it was", holder, leaseString(l), leaseString(a))
		}
	}
	if g := f.getLease("leader"); !g.Held || !sameLease(g, a) {
		t.Errorf("GetLease after others tried = %s; want a's lease %s, held", leaseString(g), leaseString(a))
	}
}

// testLeaseRenew: the holder renews its lease: it expires later, and was still
// acquired when it was first taken.
func testLeaseRenew(t *testing.T, f *cfixture) {
	first := f.acquire("leader", "a", time.Hour)
	time.Sleep(5 * time.Millisecond) // so that the store's clock moves
	renewed := f.acquire("leader", "a", 2*time.Hour)
	if !renewed.Held || !renewed.AcquiredAt.Equal(first.AcquiredAt) || !renewed.RenewedAt.After(first.RenewedAt) ||
		!renewed.ExpiresAt.After(first.ExpiresAt) {
		t.Errorf("renewal = %s after %s; want held, acquired as before, renewed and expiring later", leaseString(renewed), leaseString(first))
	}
	if g := f.getLease("leader"); !g.Held || !sameLease(g, renewed) {
		t.Errorf("GetLease after the renewal = %s; want %s", leaseString(g), leaseString(renewed))
	}
	// A shorter renewal is a renewal too: the lease ends ttl after it.
	short := f.acquire("leader", "a", time.Minute)
	if !short.Held || !short.AcquiredAt.Equal(first.AcquiredAt) || short.ExpiresAt.Sub(short.RenewedAt) != time.Minute {
		t.Errorf("renewal for a minute = %s; want held, acquired as before, expiring a minute after", leaseString(short))
	}
}

// testLeaseExpiry: once a lease lapses another holder takes it (never before its
// ExpiresAt), and the one whose lease lapsed is refused; a holder whose lease
// lapsed unclaimed takes it back as a new lease.
func testLeaseExpiry(t *testing.T, f *cfixture) {
	const ttl = 200 * time.Millisecond
	a := f.acquire("leader", "a", ttl)
	if !a.Held {
		t.Fatalf("AcquireLease of a free lease = %s, not held", leaseString(a))
	}
	var b store.LeaseInfo
	tries := 0
	f.eventually("b takes the lease after a's lapsed", func() bool {
		tries++
		b = f.acquire("leader", "b", time.Hour)
		if !b.Held && (b.Holder != "a" || !sameLease(b, a)) {
			t.Fatalf("AcquireLease by b while a held the lease = %s; want a's lease %s", leaseString(b), leaseString(a))
		}
		return b.Held
	})
	if b.AcquiredAt.Before(a.ExpiresAt) {
		t.Errorf("b took the lease at %s, before a's expired at %s", ts(b.AcquiredAt), ts(a.ExpiresAt))
	}
	if !b.AcquiredAt.Equal(b.RenewedAt) {
		t.Errorf("b's lease %s: a takeover is a new lease (acquired when renewed)", leaseString(b))
	}
	if l := f.acquire("leader", "a", ttl); l.Held || l.Holder != "b" {
		t.Errorf("AcquireLease by a after b took over = %s; want held by b", leaseString(l))
	}
	t.Logf("b tried %d times", tries)

	// The holder itself after its lease lapsed, before anyone took it over.
	c := f.acquire("checker", "c", ttl)
	f.eventually("c's lease lapses", func() bool { return !f.getLease("checker").Held })
	again := f.acquire("checker", "c", time.Hour)
	if !again.Held || again.AcquiredAt.Before(c.ExpiresAt) || !again.AcquiredAt.Equal(again.RenewedAt) {
		t.Errorf("c takes its lapsed lease again: %s after %s; want held, a new lease (acquired after the old one expired, when renewed)",
			leaseString(again), leaseString(c))
	}
}

// testLeaseRelease: a released lease is taken at once by another; a release by
// someone who does not hold the lease does nothing.
func testLeaseRelease(t *testing.T, f *cfixture) {
	a := f.acquire("leader", "a", time.Hour)
	if l := f.acquire("leader", "b", time.Hour); l.Held {
		t.Fatalf("b took a's lease before it was released: %s", leaseString(l))
	}
	f.release("leader", "a")
	g := f.getLease("leader")
	if g.Held || g.Holder != "a" || !g.ExpiresAt.Before(a.ExpiresAt) {
		t.Errorf("GetLease after a released it = %s; want a's, not held, ended before %s", leaseString(g), ts(a.ExpiresAt))
	}
	b := f.acquire("leader", "b", time.Hour)
	if !b.Held {
		t.Fatalf("AcquireLease by b right after a released the lease = %s; want held", leaseString(b))
	}

	for _, who := range []string{"c", "a"} { // never held it; held it before
		f.release("leader", who)
		if g := f.getLease("leader"); !g.Held || !sameLease(g, b) {
			t.Errorf("after %s, not the holder, released the lease: %s; want b's lease %s unchanged", who, leaseString(g), leaseString(b))
		}
	}
	f.release("leader", "b")
	f.release("leader", "b") // twice: nothing more
	if g := f.getLease("leader"); g.Held || g.Holder != "b" {
		t.Errorf("GetLease after b released it twice = %s; want b's, not held", leaseString(g))
	}
	f.release("never", "a")
	if l, err := f.c.GetLease(f.ctx, "never"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetLease of a lease only released, never taken = %v, %v; want store.ErrNotFound", l, err)
	}
	// The holder that released takes it back as a new lease.
	if l := f.acquire("leader", "b", time.Hour); !l.Held || !l.AcquiredAt.After(b.AcquiredAt) {
		t.Errorf("b takes back the lease it released: %s; want held, acquired anew after %s", leaseString(l), ts(b.AcquiredAt))
	}
}

// testLeaseRace: holders racing for a free lease, or one that lapsed: exactly one
// gets it, and the others are told who.
func testLeaseRace(t *testing.T, f *cfixture) {
	const racers = 8
	race := func(name string) {
		t.Helper()
		var (
			wg    sync.WaitGroup
			start = make(chan struct{})
			got   = make([]store.LeaseInfo, racers)
			errs  = make([]error, racers)
		)
		for i := range racers {
			wg.Go(func() {
				<-start
				got[i], errs[i] = f.c.AcquireLease(f.ctx, name, fmt.Sprintf("h%d", i), time.Hour)
			})
		}
		close(start)
		wg.Wait()
		var winners []string
		for i := range racers {
			if errs[i] != nil {
				t.Errorf("%s: AcquireLease by h%d: %v", name, i, errs[i])
				continue
			}
			if got[i].Held {
				winners = append(winners, got[i].Holder)
			}
		}
		if t.Failed() {
			t.FailNow()
		}
		if len(winners) != 1 {
			t.Fatalf("%s: %d of %d racing holders got the lease (%v), want exactly 1", name, len(winners), racers, winners)
		}
		for i := range racers {
			if got[i].Holder != winners[0] {
				t.Errorf("%s: h%d was told the lease is %s's; %s got it", name, i, got[i].Holder, winners[0])
			}
		}
		if g := f.getLease(name); !g.Held || g.Holder != winners[0] {
			t.Errorf("%s: GetLease after the race = %s; want held by %s", name, leaseString(g), winners[0])
		}
	}
	for round := range 5 {
		race(fmt.Sprintf("free-%d", round))
	}
	for round := range 3 {
		name := fmt.Sprintf("lapsed-%d", round)
		f.acquire(name, "old", time.Millisecond)
		f.eventually(name+" lapses", func() bool { return !f.getLease(name).Held })
		race(name)
	}
}

// testLeaseValidation: bad arguments are refused, naming what is wrong, and
// take nothing.
func testLeaseValidation(t *testing.T, f *cfixture) {
	cases := []struct {
		name, holder string
		ttl          time.Duration
		want         string // in the error
	}{
		{"", "a", time.Hour, "name"},
		{"leader", "", time.Hour, "holder"},
		{"leader", "a", 0, "ttl"},
		{"leader", "a", -time.Second, "ttl"},
		{"lead\x00er", "a", time.Hour, "name"},
		{"leader", "a\xff", time.Hour, "holder"},
		{strings.Repeat("n", 5000), "a", time.Hour, "name"},
	}
	for _, tc := range cases {
		l, err := f.c.AcquireLease(f.ctx, tc.name, tc.holder, tc.ttl)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("AcquireLease(%.20q, %q, %s) = %s, %v; want an error naming the %s", tc.name, tc.holder, tc.ttl, leaseString(l), err, tc.want)
		}
	}
	if l, err := f.c.GetLease(f.ctx, "leader"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetLease after refused AcquireLease calls = %v, %v; want store.ErrNotFound", l, err)
	}
	if err := f.c.ReleaseLease(f.ctx, "", "a"); err == nil || !strings.Contains(err.Error(), "name") {
		t.Errorf("ReleaseLease(\"\", a) = %v; want an error naming the name", err)
	}
	if err := f.c.ReleaseLease(f.ctx, "leader", ""); err == nil || !strings.Contains(err.Error(), "holder") {
		t.Errorf("ReleaseLease(leader, \"\") = %v; want an error naming the holder", err)
	}
}

// ---- ticks --------------------------------------------------------------------

func tickString(tk store.Tick) string {
	return fmt.Sprintf("{%s at %s %s run %s reason %q}", tk.Schedule, ts(tk.At), tk.Status, tk.RunID, tk.Reason)
}

// tickTime returns the tick time of hour h after 2026-04-08 00:00 UTC.
func tickTime(h int) time.Time {
	return time.Date(2026, 4, 8, h, 0, 0, 0, time.UTC)
}

func (f *cfixture) recordTick(tk store.Tick) bool {
	f.t.Helper()
	added, err := f.c.RecordTick(f.ctx, tk)
	if err != nil {
		f.t.Fatalf("RecordTick(%s): %v", tickString(tk), err)
	}
	return added
}

func (f *cfixture) ticks(schedule string, limit int) []store.Tick {
	f.t.Helper()
	got, err := f.c.Ticks(f.ctx, schedule, limit)
	if err != nil {
		f.t.Fatalf("Ticks(%s, %d): %v", schedule, limit, err)
	}
	for i, tk := range got {
		if tk.Schedule != schedule {
			f.t.Errorf("Ticks(%s): tick %d is %s, of another schedule", schedule, i, tickString(tk))
		}
		if tk.CreatedAt.IsZero() || tk.At.Location() != time.UTC {
			f.t.Errorf("Ticks(%s): tick %d is %s: want a CreatedAt and At in UTC", schedule, i, tickString(tk))
		}
		if i > 0 && !got[i-1].At.After(tk.At) {
			f.t.Errorf("Ticks(%s): not newest first: %s before %s", schedule, ts(got[i-1].At), ts(tk.At))
		}
	}
	return got
}

func (f *cfixture) lastTicks() map[string]store.Tick {
	f.t.Helper()
	m, err := f.c.LastTicks(f.ctx)
	if err != nil {
		f.t.Fatalf("LastTicks: %v", err)
	}
	for name, tk := range m {
		if tk.Schedule != name {
			f.t.Errorf("LastTicks[%s] = %s, of another schedule", name, tickString(tk))
		}
	}
	return m
}

func tickStrings(ts []store.Tick) []string {
	out := make([]string, len(ts))
	for i, tk := range ts {
		out[i] = tickString(tk)
	}
	return out
}

func checkTicks(t *testing.T, what string, got, want []store.Tick) {
	t.Helper()
	if g, w := tickStrings(got), tickStrings(want); !slices.Equal(g, w) {
		t.Errorf("%s =\n  %s\nwant\n  %s", what, strings.Join(g, "\n  "), strings.Join(w, "\n  "))
	}
}

// testTickRecordOnce: a tick is recorded once; recording it again (the same
// instant in any time zone) writes nothing.
func testTickRecordOnce(t *testing.T, f *cfixture) {
	at := tickTime(2).Add(123456 * time.Microsecond)
	first := store.Tick{Schedule: "nightly", At: at, Status: store.TickStarted}
	if !f.recordTick(first) {
		t.Fatalf("RecordTick(%s) of a new tick = false, want true", tickString(first))
	}
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatalf("load Europe/Berlin: %v", err)
	}
	for _, again := range []store.Tick{
		{Schedule: "nightly", At: at, Status: store.TickSkipped, Reason: "second"},
		{Schedule: "nightly", At: at.In(berlin), Status: store.TickFailed, Reason: "same instant, another zone"},
	} {
		if f.recordTick(again) {
			t.Errorf("RecordTick(%s) of a recorded tick = true, want false", tickString(again))
		}
	}
	got := f.ticks("nightly", 0)
	checkTicks(t, "Ticks(nightly) after recording one tick three times", got, []store.Tick{{Schedule: "nightly", At: at, Status: store.TickStarted}})
	if len(got) == 1 && !got[0].At.Equal(at) {
		t.Errorf("tick At = %s, want %s (to the microsecond)", ts(got[0].At), ts(at))
	}
	other := store.Tick{Schedule: "hourly", At: at, Status: store.TickStarted}
	if !f.recordTick(other) {
		t.Errorf("RecordTick(%s): another schedule's tick at the same time = false, want true", tickString(other))
	}
	if !f.recordTick(store.Tick{Schedule: "nightly", At: at.Add(time.Microsecond), Status: store.TickStarted}) {
		t.Errorf("RecordTick of nightly a microsecond later = false, want true (another tick)")
	}
}

// testTickConcurrent: processes recording the same tick at once: exactly one
// records it.
func testTickConcurrent(t *testing.T, f *cfixture) {
	const racers = 8
	for round := range 5 {
		tk := store.Tick{Schedule: "nightly", At: tickTime(round), Status: store.TickStarted}
		var (
			wg    sync.WaitGroup
			start = make(chan struct{})
			added = make([]bool, racers)
			errs  = make([]error, racers)
		)
		for i := range racers {
			wg.Go(func() {
				<-start
				added[i], errs[i] = f.c.RecordTick(f.ctx, tk)
			})
		}
		close(start)
		wg.Wait()
		n := 0
		for i := range racers {
			if errs[i] != nil {
				t.Errorf("round %d: RecordTick by racer %d: %v", round, i, errs[i])
			}
			if added[i] {
				n++
			}
		}
		if n != 1 {
			t.Errorf("round %d: %d of %d racers recorded the tick, want exactly 1", round, n, racers)
		}
		if got := f.ticks("nightly", 0); len(got) != round+1 {
			t.Errorf("round %d: %d ticks recorded, want %d", round, len(got), round+1)
		}
	}
}

// testTickUpdate: UpdateTick sets status, run and reason of a recorded tick, and
// refuses a tick never recorded.
func testTickUpdate(t *testing.T, f *cfixture) {
	at := tickTime(2)
	f.recordTick(store.Tick{Schedule: "nightly", At: at, Status: store.TickStarted})
	created := f.ticks("nightly", 0)[0].CreatedAt
	run := f.createRun(newRun(ns(metrics, days(0, 1))))
	steps := []store.Tick{
		{Schedule: "nightly", At: at, Status: store.TickLaunched, RunID: run.ID, Reason: "1 step"},
		{Schedule: "nightly", At: at, Status: store.TickSkipped, Reason: "nothing stale"},
		{Schedule: "nightly", At: at, Status: store.TickFailed, Reason: "plan: \x00bad\xff"},
	}
	wants := []store.Tick{steps[0], steps[1], {Schedule: "nightly", At: at, Status: store.TickFailed, Reason: "plan: \uFFFDbad\uFFFD"}}
	for i, tk := range steps {
		if err := f.c.UpdateTick(f.ctx, tk); err != nil {
			t.Fatalf("UpdateTick(%s): %v", tickString(tk), err)
		}
		got := f.ticks("nightly", 0)
		checkTicks(t, fmt.Sprintf("Ticks after UpdateTick(%s)", tickString(tk)), got, []store.Tick{wants[i]})
		if len(got) == 1 && !got[0].CreatedAt.Equal(created) {
			t.Errorf("UpdateTick moved CreatedAt from %s to %s", ts(created), ts(got[0].CreatedAt))
		}
		if last := f.lastTicks()["nightly"]; tickString(last) != tickString(wants[i]) {
			t.Errorf("LastTicks[nightly] after UpdateTick = %s, want %s", tickString(last), tickString(wants[i]))
		}
	}
	for _, tk := range []store.Tick{
		{Schedule: "nightly", At: tickTime(3), Status: store.TickLaunched},
		{Schedule: "hourly", At: at, Status: store.TickLaunched},
	} {
		err := f.c.UpdateTick(f.ctx, tk)
		wantErrIs(t, fmt.Sprintf("UpdateTick(%s) of a tick never recorded", tickString(tk)), err, store.ErrNotFound)
	}
	if got := f.lastTicks(); len(got) != 1 {
		t.Errorf("LastTicks after updates of unrecorded ticks = %v; want nightly's only", got)
	}
}

// testTickUnknownRun: a tick naming a run that is not recorded is refused.
func testTickUnknownRun(t *testing.T, f *cfixture) {
	ghost := uuid.New()
	tk := store.Tick{Schedule: "nightly", At: tickTime(1), Status: store.TickLaunched, RunID: ghost}
	added, err := f.c.RecordTick(f.ctx, tk)
	wantErrIs(t, "RecordTick naming an unknown run", err, store.ErrNotFound)
	if added || len(f.ticks("nightly", 0)) != 0 {
		t.Errorf("RecordTick naming an unknown run recorded it (added %v)", added)
	}
	f.recordTick(store.Tick{Schedule: "nightly", At: tickTime(1), Status: store.TickStarted})
	err = f.c.UpdateTick(f.ctx, tk)
	wantErrIs(t, "UpdateTick naming an unknown run", err, store.ErrNotFound)
	checkTicks(t, "Ticks after a refused UpdateTick", f.ticks("nightly", 0),
		[]store.Tick{{Schedule: "nightly", At: tickTime(1), Status: store.TickStarted}})
}

// testLastTicks: LastTicks gives each schedule's newest tick, whole.
func testLastTicks(t *testing.T, f *cfixture) {
	if got := f.lastTicks(); len(got) != 0 {
		t.Errorf("LastTicks of an empty store = %v, want none", got)
	}
	run := f.createRun(newRun(ns(metrics, days(0, 1))))
	recorded := []store.Tick{
		{Schedule: "a", At: tickTime(1), Status: store.TickLaunched, RunID: run.ID, Reason: "a1"},
		{Schedule: "a", At: tickTime(3), Status: store.TickSkipped, Reason: "a3"},
		{Schedule: "a", At: tickTime(2), Status: store.TickFailed, Reason: "a2"},
		{Schedule: "b", At: tickTime(5), Status: store.TickStarted},
		{Schedule: "c", At: tickTime(0), Status: store.TickLaunched, RunID: run.ID},
		{Schedule: "b", At: tickTime(4), Status: store.TickFailed, Reason: "b4"},
	}
	for _, tk := range recorded {
		f.recordTick(tk)
	}
	want := map[string]store.Tick{"a": recorded[1], "b": recorded[3], "c": recorded[4]}
	got := f.lastTicks()
	if len(got) != len(want) {
		t.Errorf("LastTicks = %d schedules, want %d", len(got), len(want))
	}
	for name, w := range want {
		if g, ok := got[name]; !ok || tickString(g) != tickString(w) {
			t.Errorf("LastTicks[%s] = %s, want %s", name, tickString(g), tickString(w))
		}
	}
}

// testTicksOrderAndLimit: Ticks lists one schedule's ticks newest first, 50 by
// default, as many as asked up to 1,000.
func testTicksOrderAndLimit(t *testing.T, f *cfixture) {
	var all []store.Tick
	for h := range 60 {
		all = append(all, store.Tick{Schedule: "hourly", At: tickTime(h), Status: store.TickSkipped, Reason: fmt.Sprint(h)})
	}
	rng := rand.New(rand.NewPCG(1, 2))
	shuffled := slices.Clone(all)
	rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	for _, tk := range shuffled {
		f.recordTick(tk)
	}
	for h := range 3 {
		f.recordTick(store.Tick{Schedule: "other", At: tickTime(100 + h), Status: store.TickStarted})
	}
	newest := slices.Clone(all)
	slices.Reverse(newest)
	for _, tc := range []struct {
		limit, want int
	}{{0, 50}, {7, 7}, {1, 1}, {60, 60}, {5000, 60}, {-1, 50}} {
		checkTicks(t, fmt.Sprintf("Ticks(hourly, %d)", tc.limit), f.ticks("hourly", tc.limit), newest[:tc.want])
	}
	if got := f.ticks("none", 0); len(got) != 0 {
		t.Errorf("Ticks of a schedule without ticks = %v, want none", tickStrings(got))
	}
	if got := f.ticks("other", 0); len(got) != 3 {
		t.Errorf("Ticks(other) = %d ticks, want 3", len(got))
	}
}

// testTickValidation: bad ticks are refused, naming what is wrong, and recorded
// nowhere.
func testTickValidation(t *testing.T, f *cfixture) {
	good := store.Tick{Schedule: "nightly", At: tickTime(1), Status: store.TickStarted}
	cases := []struct {
		name string
		tick store.Tick
		want string
	}{
		{"no schedule", store.Tick{At: tickTime(1), Status: store.TickStarted}, "schedule"},
		{"NUL in the schedule", store.Tick{Schedule: "night\x00ly", At: tickTime(1), Status: store.TickStarted}, "schedule"},
		{"no time", store.Tick{Schedule: "nightly", Status: store.TickStarted}, "At"},
		{"no status", store.Tick{Schedule: "nightly", At: tickTime(1)}, "status"},
		{"unknown status", store.Tick{Schedule: "nightly", At: tickTime(1), Status: "RUNNING"}, "status"},
		{"lowercase status", store.Tick{Schedule: "nightly", At: tickTime(1), Status: "started"}, "status"},
	}
	for _, tc := range cases {
		added, err := f.c.RecordTick(f.ctx, tc.tick)
		if err == nil || added || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("RecordTick, %s = %v, %v; want an error naming %s", tc.name, added, err, tc.want)
		}
	}
	if got := f.lastTicks(); len(got) != 0 {
		t.Errorf("LastTicks after refused ticks = %v, want none", got)
	}
	f.recordTick(good)
	for _, tc := range cases {
		if err := f.c.UpdateTick(f.ctx, tc.tick); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("UpdateTick, %s = %v; want an error naming %s", tc.name, err, tc.want)
		}
	}
	checkTicks(t, "Ticks after refused updates", f.ticks("nightly", 0), []store.Tick{good})
	if _, err := f.c.Ticks(f.ctx, "", 0); err == nil {
		t.Errorf("Ticks(\"\") = no error, want one naming the schedule")
	}
}

// ---- freshness ----------------------------------------------------------------

func lagString(l *float64) string {
	if l == nil {
		return "-"
	}
	return fmt.Sprint(*l)
}

func changeString(c store.FreshnessChange) string {
	return fmt.Sprintf("{id %d %s at %s %s previous %q lag %s reason %q notified %s}",
		c.ID, c.Asset, ts(c.At), c.Status, c.Previous, lagString(c.LagSeconds), c.Reason, ts(c.NotifiedAt))
}

func changeStrings(cs []store.FreshnessChange) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = changeString(c)
	}
	return out
}

func checkChanges(t *testing.T, what string, got, want []store.FreshnessChange) {
	t.Helper()
	if g, w := changeStrings(got), changeStrings(want); !slices.Equal(g, w) {
		t.Errorf("%s =\n  %s\nwant\n  %s", what, strings.Join(g, "\n  "), strings.Join(w, "\n  "))
	}
}

func lag(seconds float64) *float64 { return &seconds }

// checkTime is when the freshness tests' checks run: minute m after 2026-04-08 09:00 UTC.
func checkTime(m int) time.Time {
	return time.Date(2026, 4, 8, 9, m, 0, 0, time.UTC)
}

func (f *cfixture) recordFreshness(changes ...store.FreshnessChange) []store.FreshnessChange {
	f.t.Helper()
	got, err := f.c.RecordFreshness(f.ctx, changes)
	if err != nil {
		f.t.Fatalf("RecordFreshness(%d changes): %v", len(changes), err)
	}
	if len(got) != len(changes) {
		f.t.Fatalf("RecordFreshness(%d changes) returned %d", len(changes), len(got))
	}
	for i, c := range got {
		if c.ID <= 0 || (i > 0 && c.ID <= got[i-1].ID) {
			f.t.Errorf("RecordFreshness: change %d got id %d; want ids positive, increasing in input order (%v)", i, c.ID, changeStrings(got))
		}
	}
	return got
}

func (f *cfixture) freshnessEvents(q store.FreshnessQuery) []store.FreshnessChange {
	f.t.Helper()
	cs, err := f.c.FreshnessEvents(f.ctx, q)
	if err != nil {
		f.t.Fatalf("FreshnessEvents(%+v): %v", q, err)
	}
	return cs
}

func (f *cfixture) latestFreshness() map[assets.Key]store.FreshnessChange {
	f.t.Helper()
	m, err := f.c.LatestFreshness(f.ctx)
	if err != nil {
		f.t.Fatalf("LatestFreshness: %v", err)
	}
	for k, c := range m {
		if c.Asset != k {
			f.t.Errorf("LatestFreshness[%s] = %s, of another asset", k, changeString(c))
		}
	}
	return m
}

// newestFirst returns cs sorted as FreshnessEvents lists them: by time, then id,
// newest first.
func newestFirst(cs []store.FreshnessChange) []store.FreshnessChange {
	out := slices.Clone(cs)
	slices.SortFunc(out, func(a, b store.FreshnessChange) int {
		if c := b.At.Compare(a.At); c != 0 {
			return c
		}
		return int(b.ID - a.ID)
	})
	return out
}

// testFreshnessRoundTrip: recorded changes come back as they were given, with
// ids that increase from call to call.
func testFreshnessRoundTrip(t *testing.T, f *cfixture) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatalf("load Europe/Berlin: %v", err)
	}
	in := []store.FreshnessChange{
		{Asset: rawDaily, At: checkTime(0).Add(1500 * time.Nanosecond), Status: store.FreshnessPass, Reason: "first check"},
		{Asset: weekly, At: checkTime(0).In(berlin), Status: store.FreshnessFail, LagSeconds: lag(93784.25), Reason: "newest partition 26h old"},
		{Asset: rawDaily, At: checkTime(5), Status: store.FreshnessWarn, Previous: store.FreshnessPass, LagSeconds: lag(0), Reason: "lagging"},
	}
	got := f.recordFreshness(in...)
	for i := range in {
		want := in[i]
		want.ID = got[i].ID
		want.At = want.At.UTC().Truncate(time.Microsecond)
		if changeString(got[i]) != changeString(want) {
			t.Errorf("RecordFreshness returned change %d as %s, want %s", i, changeString(got[i]), changeString(want))
		}
	}
	if in[0].ID != 0 {
		t.Errorf("RecordFreshness set the ID of the caller's change (%d); it returns the changes recorded", in[0].ID)
	}
	checkChanges(t, "FreshnessEvents after one call", f.freshnessEvents(store.FreshnessQuery{}), newestFirst(got))

	more := f.recordFreshness(
		store.FreshnessChange{Asset: summary, At: checkTime(1), Status: store.FreshnessUnknown, Reason: "no policy"},
		store.FreshnessChange{Asset: weekly, Status: store.FreshnessPass, Previous: store.FreshnessFail, Reason: "caught up, now"},
	)
	for _, c := range more {
		if c.ID <= got[len(got)-1].ID {
			t.Errorf("second RecordFreshness: id %d, not after the first call's ids (up to %d)", c.ID, got[len(got)-1].ID)
		}
	}
	if more[1].At.IsZero() || more[1].At.Location() != time.UTC {
		t.Errorf("change recorded without a time: At = %s; want the time it was recorded, in UTC", more[1].At)
	}
	all := append(slices.Clone(got), more...)
	checkChanges(t, "FreshnessEvents after two calls", f.freshnessEvents(store.FreshnessQuery{}), newestFirst(all))
	if empty, err := f.c.RecordFreshness(f.ctx, nil); err != nil || len(empty) != 0 {
		t.Errorf("RecordFreshness(nil) = %v, %v; want nothing, no error", empty, err)
	}
}

// testFreshnessUnknownAsset: a change of an unknown asset is refused, naming it,
// with the others of its call.
func testFreshnessUnknownAsset(t *testing.T, f *cfixture) {
	_, err := f.c.RecordFreshness(f.ctx, []store.FreshnessChange{
		{Asset: rawDaily, At: checkTime(0), Status: store.FreshnessPass},
		{Asset: "no/such_asset", At: checkTime(0), Status: store.FreshnessFail},
		{Asset: "also/missing", At: checkTime(0), Status: store.FreshnessWarn},
	})
	wantErrIs(t, "RecordFreshness with unknown assets", err, store.ErrNotFound)
	if err != nil && (!strings.Contains(err.Error(), "no/such_asset") || !strings.Contains(err.Error(), "also/missing")) {
		t.Errorf("RecordFreshness with unknown assets: error %q does not name both", err)
	}
	if got := f.freshnessEvents(store.FreshnessQuery{}); len(got) != 0 {
		t.Errorf("FreshnessEvents after a refused call = %v, want none", changeStrings(got))
	}
	if got := f.latestFreshness(); len(got) != 0 {
		t.Errorf("LatestFreshness after a refused call = %v, want none", got)
	}
}

// testFreshnessValidation: bad changes are refused, naming what is wrong, with
// the others of their call.
func testFreshnessValidation(t *testing.T, f *cfixture) {
	good := store.FreshnessChange{Asset: rawDaily, At: checkTime(0), Status: store.FreshnessPass}
	cases := []struct {
		name   string
		change store.FreshnessChange
		want   string
	}{
		{"no asset", store.FreshnessChange{At: checkTime(0), Status: store.FreshnessPass}, "asset"},
		{"no status", store.FreshnessChange{Asset: weekly, At: checkTime(0)}, "status"},
		{"unknown status", store.FreshnessChange{Asset: weekly, At: checkTime(0), Status: "STALE"}, "STALE"},
		{"unknown previous", store.FreshnessChange{Asset: weekly, At: checkTime(0), Status: store.FreshnessPass, Previous: "OK"}, "previous"},
		{"NaN lag", store.FreshnessChange{Asset: weekly, At: checkTime(0), Status: store.FreshnessFail, LagSeconds: lag(math.NaN())}, "lag"},
		{"infinite lag", store.FreshnessChange{Asset: weekly, At: checkTime(0), Status: store.FreshnessFail, LagSeconds: lag(math.Inf(1))}, "lag"},
	}
	for _, tc := range cases {
		got, err := f.c.RecordFreshness(f.ctx, []store.FreshnessChange{good, tc.change})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("RecordFreshness, %s = %v, %v; want an error naming %s", tc.name, changeStrings(got), err, tc.want)
		}
	}
	if got := f.freshnessEvents(store.FreshnessQuery{}); len(got) != 0 {
		t.Errorf("FreshnessEvents after refused calls = %v, want none", changeStrings(got))
	}
	// A reason is whatever the checker says: made storable, not refused.
	c := f.recordFreshness(store.FreshnessChange{Asset: rawDaily, At: checkTime(0), Status: store.FreshnessFail, Reason: "bad\x00\xffbytes"})
	if got := f.freshnessEvents(store.FreshnessQuery{}); len(got) != 1 || got[0].Reason != "bad\uFFFD\uFFFDbytes" || got[0].ID != c[0].ID {
		t.Errorf("FreshnessEvents after a change with a NUL byte and invalid UTF-8 in its reason = %v; want it, the bytes replaced with U+FFFD", changeStrings(got))
	}
}

// testLatestFreshness: each asset's newest change, by time (then id), whatever
// the order they were recorded in.
func testLatestFreshness(t *testing.T, f *cfixture) {
	if got := f.latestFreshness(); len(got) != 0 {
		t.Errorf("LatestFreshness of an empty store = %v, want none", got)
	}
	first := f.recordFreshness(
		store.FreshnessChange{Asset: rawDaily, At: checkTime(10), Status: store.FreshnessPass, Reason: "r10"},
		store.FreshnessChange{Asset: rawDaily, At: checkTime(20), Status: store.FreshnessFail, Previous: store.FreshnessPass, LagSeconds: lag(7200), Reason: "r20"},
		store.FreshnessChange{Asset: weekly, At: checkTime(5), Status: store.FreshnessWarn, Reason: "w5"},
		store.FreshnessChange{Asset: metrics, At: checkTime(7), Status: store.FreshnessPass, Reason: "m7 first"},
	)
	late := f.recordFreshness(
		store.FreshnessChange{Asset: rawDaily, At: checkTime(15), Status: store.FreshnessWarn, Reason: "recorded late"},
		store.FreshnessChange{Asset: metrics, At: checkTime(7), Status: store.FreshnessFail, Previous: store.FreshnessPass, Reason: "m7 second"},
	)
	want := map[assets.Key]store.FreshnessChange{rawDaily: first[1], weekly: first[2], metrics: late[1]}
	got := f.latestFreshness()
	if len(got) != len(want) {
		t.Errorf("LatestFreshness has %d assets, want %d (%v)", len(got), len(want), keysOf(want))
	}
	for k, w := range want {
		if g, ok := got[k]; !ok || changeString(g) != changeString(w) {
			t.Errorf("LatestFreshness[%s] = %s, want %s", k, changeString(g), changeString(w))
		}
	}
}

// testFreshnessFilters: FreshnessEvents by asset, since (inclusive) and limit,
// newest first, 100 by default.
func testFreshnessFilters(t *testing.T, f *cfixture) {
	var in []store.FreshnessChange
	statuses := store.FreshnessStatuses
	for i := range 120 {
		a := []assets.Key{rawDaily, weekly, metrics}[i%3]
		in = append(in, store.FreshnessChange{Asset: a, At: checkTime(i % 40).Add(time.Duration(i) * time.Second),
			Status: statuses[i%4], Reason: fmt.Sprint(i)})
	}
	all := f.recordFreshness(in...)
	filter := func(keep func(store.FreshnessChange) bool, limit int) []store.FreshnessChange {
		var out []store.FreshnessChange
		for _, c := range newestFirst(all) {
			if keep(c) && len(out) < limit {
				out = append(out, c)
			}
		}
		return out
	}
	every := func(store.FreshnessChange) bool { return true }
	since := checkTime(30)
	for _, tc := range []struct {
		q    store.FreshnessQuery
		want []store.FreshnessChange
	}{
		{store.FreshnessQuery{}, filter(every, 100)},
		{store.FreshnessQuery{Limit: 5}, filter(every, 5)},
		{store.FreshnessQuery{Limit: 50_000}, filter(every, 1000)},
		{store.FreshnessQuery{Asset: weekly}, filter(func(c store.FreshnessChange) bool { return c.Asset == weekly }, 100)},
		{store.FreshnessQuery{Asset: weekly, Limit: 3}, filter(func(c store.FreshnessChange) bool { return c.Asset == weekly }, 3)},
		{store.FreshnessQuery{Since: since}, filter(func(c store.FreshnessChange) bool { return !c.At.Before(since) }, 100)},
		{store.FreshnessQuery{Asset: metrics, Since: since}, filter(func(c store.FreshnessChange) bool {
			return c.Asset == metrics && !c.At.Before(since)
		}, 100)},
		{store.FreshnessQuery{Asset: summary}, nil},
		{store.FreshnessQuery{Asset: "no/such_asset"}, nil},
		{store.FreshnessQuery{Since: checkTime(100)}, nil},
	} {
		checkChanges(t, fmt.Sprintf("FreshnessEvents(%+v)", tc.q), f.freshnessEvents(tc.q), tc.want)
	}
	// Since is inclusive: a change exactly at since is in.
	at := f.recordFreshness(store.FreshnessChange{Asset: summary, At: checkTime(50), Status: store.FreshnessPass})
	checkChanges(t, "FreshnessEvents since the time of a change", f.freshnessEvents(store.FreshnessQuery{Since: checkTime(50)}), at)
}

// testMarkNotified: MarkNotified records when changes were sent, all or none.
func testMarkNotified(t *testing.T, f *cfixture) {
	cs := f.recordFreshness(
		store.FreshnessChange{Asset: rawDaily, At: checkTime(0), Status: store.FreshnessFail},
		store.FreshnessChange{Asset: weekly, At: checkTime(1), Status: store.FreshnessWarn},
		store.FreshnessChange{Asset: metrics, At: checkTime(2), Status: store.FreshnessPass},
	)
	sent := checkTime(3).Add(1500 * time.Nanosecond)
	if err := f.c.MarkNotified(f.ctx, []int64{cs[0].ID, cs[2].ID, cs[0].ID}, sent); err != nil {
		t.Fatalf("MarkNotified: %v", err)
	}
	want := slices.Clone(cs)
	want[0].NotifiedAt = sent.Truncate(time.Microsecond)
	want[2].NotifiedAt = sent.Truncate(time.Microsecond)
	checkChanges(t, "FreshnessEvents after MarkNotified", f.freshnessEvents(store.FreshnessQuery{}), newestFirst(want))
	if l := f.latestFreshness()[rawDaily]; !l.NotifiedAt.Equal(want[0].NotifiedAt) {
		t.Errorf("LatestFreshness[%s] = %s; want it notified at %s", rawDaily, changeString(l), ts(want[0].NotifiedAt))
	}

	const ghost = 1 << 40
	err := f.c.MarkNotified(f.ctx, []int64{cs[1].ID, ghost}, checkTime(4))
	wantErrIs(t, "MarkNotified with an unknown id", err, store.ErrNotFound)
	if err != nil && !strings.Contains(err.Error(), fmt.Sprint(ghost)) {
		t.Errorf("MarkNotified with an unknown id: error %q does not name it", err)
	}
	checkChanges(t, "FreshnessEvents after a refused MarkNotified", f.freshnessEvents(store.FreshnessQuery{}), newestFirst(want))
	if err := f.c.MarkNotified(f.ctx, nil, checkTime(4)); err != nil {
		t.Errorf("MarkNotified(nil) = %v, want nothing done", err)
	}
}
