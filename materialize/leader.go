package materialize

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/freshetdev/freshet/store"
)

// LeaderLease is the name of the lease the leader holds.
const LeaderLease = "leader"

// DefaultLeaderTTL is how long the leader's lease lasts without a renewal: the
// longest another process waits to take over from a leader that died.
const DefaultLeaderTTL = 15 * time.Second

// Leader takes part in the election of the one process, among those serving a
// catalog, that runs the scheduler and the freshness checker: it holds the lease
// row LeaderLease while it can, renewing it three times per TTL, and takes it
// over when the holder lets it lapse. (A lease row rather than an advisory lock:
// it works the same on SQLite, survives connection loss without a false
// handover, and names its holder.)
type Leader struct {
	Store  store.Coordination
	Holder string        // this process, in the lease row
	TTL    time.Duration // 0: DefaultLeaderTTL
	Logger hclog.Logger  // nil: no logging

	leading atomic.Bool
	until   atomic.Int64 // unix nanoseconds: the lease's expiry as last acquired
}

// IsLeader reports whether this process holds the lease now (by its last
// renewal, which has not expired).
func (l *Leader) IsLeader() bool {
	return l.leading.Load() && time.Now().UnixNano() < l.until.Load()
}

// Run takes part in the election until ctx ends; then, if leading, it releases
// the lease so that another process takes over at once.
func (l *Leader) Run(ctx context.Context) error {
	if l.TTL <= 0 {
		l.TTL = DefaultLeaderTTL
	}
	if l.Logger == nil {
		l.Logger = hclog.NewNullLogger()
	}
	tick := time.NewTicker(l.TTL / 3)
	defer tick.Stop()
	for {
		l.campaign(ctx)
		select {
		case <-ctx.Done():
			if l.leading.Load() {
				rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
				defer cancel()
				l.leading.Store(false)
				if err := l.Store.ReleaseLease(rctx, LeaderLease, l.Holder); err != nil {
					l.Logger.Warn("release the leader lease", "error", err)
				} else {
					l.Logger.Info("leader lease released")
				}
			}
			return nil
		case <-tick.C:
		}
	}
}

func (l *Leader) campaign(ctx context.Context) {
	// The expiry this process acts on is measured on its own clock from before
	// the call, so that a slow answer shortens its leadership rather than
	// stretching it past the lease the store granted.
	asked := time.Now()
	lease, err := l.Store.AcquireLease(ctx, LeaderLease, l.Holder, l.TTL)
	if err != nil {
		if ctx.Err() == nil {
			l.Logger.Warn("renew the leader lease", "error", err)
		}
		return
	}
	was := l.leading.Load()
	if lease.Held {
		l.until.Store(asked.Add(l.TTL).UnixNano())
	}
	l.leading.Store(lease.Held)
	switch {
	case lease.Held && !was:
		l.Logger.Info("leading: running the scheduler and the freshness checker", "lease", l.TTL)
	case !lease.Held && was:
		l.Logger.Warn("no longer leading", "leader", lease.Holder)
	}
}
