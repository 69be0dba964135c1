package materialize

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/freshetdev/freshet/assets"
	"github.com/freshetdev/freshet/graph"
	"github.com/freshetdev/freshet/store"
)

// Catalog keeps the planner's State current with a store, like a materialized view:
// it reads the whole state once, then only what changed after its seq cursor. Each
// refresh publishes a new immutable State, sharing the arrays of every asset it did
// not touch, so planners holding an older State are never disturbed.
type Catalog struct {
	store store.Store

	mu    sync.Mutex // serializes Refresh and SetGraph
	g     *graph.Graph
	state atomic.Pointer[State]
}

// LoadCatalog reads the state of every asset of g from s. The definitions in s must
// be the ones g was built from (sync them first): partition indexes are only
// meaningful under the same partitions definitions.
func LoadCatalog(ctx context.Context, s store.Store, g *graph.Graph) (*Catalog, error) {
	c := &Catalog{store: s, g: g}
	if err := c.checkDefinitions(ctx, g); err != nil {
		return nil, err
	}
	snap, err := s.ReadState(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("load catalog state: %w", err)
	}
	st := &State{Seq: snap.Seq, Assets: make([]AssetState, g.Len())}
	for a := range st.Assets {
		if as := snap.Assets[g.Asset(a).Key]; as != nil {
			st.Assets[a] = *as
		}
	}
	c.state.Store(st)
	return c, nil
}

// State returns the current snapshot. It is never modified; Refresh publishes a new one.
func (c *Catalog) State() *State { return c.state.Load() }

// Graph returns the graph the state is indexed by.
func (c *Catalog) Graph() *graph.Graph {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.g
}

// Snapshot returns the graph and the current state indexed by it, together (a
// SetGraph between two separate reads would pair a state with the wrong graph).
func (c *Catalog) Snapshot() (*graph.Graph, *State) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.g, c.state.Load()
}

// Refresh reads what changed in the store since the current snapshot and publishes
// a new one. It returns the number of partitions updated (assets reloaded in full
// count their length).
func (c *Catalog) Refresh(ctx context.Context) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.refresh(ctx)
}

func (c *Catalog) refresh(ctx context.Context) (int, error) {
	old := c.state.Load()
	ch, err := c.store.ReadChanges(ctx, old.Seq)
	if err != nil {
		return 0, fmt.Errorf("refresh catalog state: %w", err)
	}
	if ch.Seq == old.Seq && len(ch.Reloaded) == 0 && len(ch.Updated) == 0 {
		return 0, nil
	}
	next := &State{Seq: ch.Seq, Assets: slices.Clone(old.Assets)}
	n := 0
	for key, as := range ch.Reloaded {
		if a, ok := c.g.Index(key); ok {
			next.Assets[a] = *as
			n += as.Len()
		}
	}
	for key, up := range ch.Updated {
		a, ok := c.g.Index(key)
		if !ok || ch.Reloaded[key] != nil {
			continue
		}
		next.Assets[a] = applyUpdate(&old.Assets[a], up)
		n += len(up.Index)
	}
	c.state.Store(next)
	return n, nil
}

// SetGraph switches the catalog to a new graph, after the definitions were
// reloaded and synced to the store. Assets whose partitions definition is the same
// keep their state; the others are read again.
func (c *Catalog) SetGraph(ctx context.Context, g *graph.Graph) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.checkDefinitions(ctx, g); err != nil {
		return err
	}
	old := c.state.Load()
	var reload []assets.Key
	next := &State{Seq: old.Seq, Assets: make([]AssetState, g.Len())}
	for a := range next.Assets {
		asset := g.Asset(a)
		prev, ok := c.g.Index(asset.Key)
		if ok && samePartitions(c.g.Asset(prev).Partitions, asset.Partitions) {
			next.Assets[a] = old.Assets[prev]
		} else {
			reload = append(reload, asset.Key)
		}
	}
	if len(reload) > 0 {
		snap, err := c.store.ReadState(ctx, reload)
		if err != nil {
			return fmt.Errorf("reload catalog state: %w", err)
		}
		for _, key := range reload {
			if as := snap.Assets[key]; as != nil {
				a, _ := g.Index(key)
				next.Assets[a] = *as
			}
		}
		if snap.Seq != old.Seq {
			// The reloaded assets are newer than the others; catch those up so the
			// snapshot has one watermark.
			c.g = g
			c.state.Store(next)
			_, err := c.refresh(ctx)
			return err
		}
	}
	c.g = g
	c.state.Store(next)
	return nil
}

// checkDefinitions makes sure the store holds g's partitions definitions: the
// state's indexes are relative to them.
func (c *Catalog) checkDefinitions(ctx context.Context, g *graph.Graph) error {
	records, err := c.store.Assets(ctx)
	if err != nil {
		return fmt.Errorf("read catalog definitions: %w", err)
	}
	stored := make(map[assets.Key]*store.AssetRecord, len(records))
	for i := range records {
		if !records[i].Removed() {
			stored[records[i].Key] = &records[i]
		}
	}
	for a := 0; a < g.Len(); a++ {
		asset := g.Asset(a)
		rec := stored[asset.Key]
		if rec == nil {
			return fmt.Errorf("asset %s is not in the catalog: sync the definitions first", asset.Key)
		}
		var spec *assets.PartitionsSpec
		if asset.Partitions != nil {
			s := asset.Partitions.Spec()
			spec = &s
		}
		if !store.SamePartitions(rec.Partitions, spec) {
			return fmt.Errorf("asset %s: the catalog holds another partitions definition than the one loaded: sync the definitions first", asset.Key)
		}
	}
	return nil
}

func samePartitions(a, b *assets.Partitions) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return a.Spec() == b.Spec()
}

// applyUpdate returns a copy of old with the updated partitions written in; the
// arrays of old are left as they were.
func applyUpdate(old *AssetState, up *store.AssetUpdate) AssetState {
	n := old.Len()
	for _, i := range up.Index {
		n = max(n, i+1)
	}
	next := AssetState{
		Flags:          make([]PartitionFlags, n),
		InputSeq:       make([]int64, n),
		DataChangedSeq: make([]int64, n),
		CodeVersion:    make([]uint32, n),
		DepSet:         make([]uint32, n),
		CodeVersions:   up.CodeVersions,
		DepSets:        up.DepSets,
	}
	copy(next.Flags, old.Flags)
	copy(next.InputSeq, old.InputSeq)
	copy(next.DataChangedSeq, old.DataChangedSeq)
	copy(next.CodeVersion, old.CodeVersion)
	copy(next.DepSet, old.DepSet)
	if next.CodeVersions == nil {
		next.CodeVersions = old.CodeVersions
	}
	if next.DepSets == nil {
		next.DepSets = old.DepSets
	}
	for k, i := range up.Index {
		next.Flags[i] = up.Flags[k]
		next.InputSeq[i] = up.InputSeq[k]
		next.DataChangedSeq[i] = up.DataChangedSeq[k]
		next.CodeVersion[i] = up.CodeVersion[k]
		next.DepSet[i] = up.DepSet[k]
	}
	return next
}
