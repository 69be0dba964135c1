package postgres

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/jackc/pgx/v5"

	"github.com/freshetdev/freshet/assets"
	"github.com/freshetdev/freshet/store"
)

// cache keeps, per asset, what Append needs and cannot change once committed: the
// parsed partitions definition of a given definition change (keyed by its seq),
// and the ids of code versions and dep sets. Entries are only ever taken from
// committed rows or added after the transaction that wrote them committed.
type cache struct {
	mu         sync.Mutex
	partitions map[int64]parsedPartitions
	interned   map[int64]*internTable
	// ids maps asset keys to their ids, as read with their synced definitions: an
	// asset's id never changes. It tells which keys' interning tables are cached.
	ids map[string]int64
}

// learnID records the id of an asset's key.
func (c *cache) learnID(key string, id int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ids == nil {
		c.ids = make(map[string]int64)
	}
	c.ids[key] = id
}

// hasInterned reports whether the interning table of the asset of key is cached
// (when the asset's id is known).
func (c *cache) hasInterned(key string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	id, ok := c.ids[key]
	return ok && c.interned[id] != nil
}

type parsedPartitions struct {
	seq        int64 // assets.partitions_seq of the definition it was parsed from
	partitions *assets.Partitions
}

// internTable maps an asset's code versions and dep sets (keys joined by
// store.JoinKeys) to their per-asset ids.
type internTable struct {
	codeVersions map[string]int32
	depSets      map[string]int32
}

func newInternTable() *internTable {
	return &internTable{codeVersions: map[string]int32{}, depSets: map[string]int32{}}
}

// partitionsOf returns the parsed partitions definition stored with an asset,
// parsing it only when the definition change that set it (seq) is not cached. The
// row was read committed, and a committed definition change never changes, so it
// may be cached at once.
func (c *cache) partitionsOf(assetID, seq int64, stored []byte) (*assets.Partitions, error) {
	c.mu.Lock()
	cached, ok := c.partitions[assetID]
	c.mu.Unlock()
	if ok && cached.seq == seq {
		return cached.partitions, nil
	}
	spec, err := store.UnmarshalPartitions(stored)
	if err != nil {
		return nil, err
	}
	var p *assets.Partitions
	if spec != nil {
		if p, err = assets.NewPartitions(*spec); err != nil {
			return nil, fmt.Errorf("stored partitions definition: %w", err)
		}
	}
	c.mu.Lock()
	if c.partitions == nil {
		c.partitions = make(map[int64]parsedPartitions)
	}
	c.partitions[assetID] = parsedPartitions{seq: seq, partitions: p}
	c.mu.Unlock()
	return p, nil
}

// remember adds interning tables read or written by a committed transaction.
func (c *cache) remember(tables map[int64]*internTable) {
	if len(tables) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.interned == nil {
		c.interned = make(map[int64]*internTable)
	}
	for assetID, t := range tables {
		cached := c.interned[assetID]
		if cached == nil {
			cached = newInternTable()
			c.interned[assetID] = cached
		}
		for v, id := range t.codeVersions {
			cached.codeVersions[v] = id
		}
		for d, id := range t.depSets {
			cached.depSets[d] = id
		}
	}
}

// lookup returns the cached ids of an asset's code version and dep set.
func (c *cache) lookup(assetID int64, version, deps string) (codeIDs, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.interned[assetID]
	if t == nil {
		return codeIDs{}, false
	}
	v, ok1 := t.codeVersions[version]
	d, ok2 := t.depSets[deps]
	return codeIDs{version: v, deps: d}, ok1 && ok2
}

// codeIDs are the per-asset ids of a materialization's code version and dep set.
type codeIDs struct {
	version, deps int32
}

// interner assigns per-asset ids to the code versions and dep sets of an Append's
// materializations. It runs under the clock lock, so the next free id (max + 1) it
// reads stays free until the transaction ends.
type interner struct {
	cache *cache
	// tables holds, for the assets whose ids had to be read, every id of the
	// asset: what the database had plus what this Append adds. seeded are those
	// read with the clock, before resolve (see appendWork.preload).
	tables map[int64]*internTable
	seeded map[int64]bool
	// next is, per asset in tables, the next free code version and dep set id.
	next  map[int64]codeIDs
	added []internedRow
}

type internedRow struct {
	assetID  int64
	id       int32
	value    string
	isDepSet bool
}

func newInterner(c *cache) *interner {
	return &interner{cache: c, tables: map[int64]*internTable{}, next: map[int64]codeIDs{}}
}

// lastCode remembers the previous materialization's code per asset: a bulk load
// repeats the same code for many events, and comparing is cheaper than joining the
// dep keys for a lookup.
type lastCode struct {
	code     store.Code
	ids      codeIDs
	resolved bool
}

func (l *lastCode) same(c *store.Code) bool {
	return l != nil && l.code.Version == c.Version && slices.Equal(l.code.Deps, c.Deps)
}

// resolve returns, per prepared event, the ids of its code (materializations only).
// Ids the cache does not know are read from the database, and new values get new
// ids.
func (in *interner) resolve(ctx context.Context, tx pgx.Tx, prepared []store.PreparedEvent) ([]codeIDs, error) {
	ids := make([]codeIDs, len(prepared))
	last := map[int64]*lastCode{}
	var unresolved []int
	missing := map[int64]bool{}
	for i := range prepared {
		p := &prepared[i]
		if p.Kind != store.Materialization {
			continue
		}
		l := last[p.AssetID]
		if !l.same(p.Code) {
			got, ok := in.cache.lookup(p.AssetID, p.Code.Version, store.JoinKeys(p.Code.Deps))
			l = &lastCode{code: *p.Code, ids: got, resolved: ok}
			last[p.AssetID] = l
		}
		if !l.resolved {
			unresolved = append(unresolved, i)
			missing[p.AssetID] = true
			continue
		}
		ids[i] = l.ids
	}
	if len(unresolved) == 0 {
		return ids, nil
	}
	for id := range in.seeded {
		delete(missing, id)
	}
	if len(missing) > 0 {
		if err := in.load(ctx, tx, missing); err != nil {
			return nil, err
		}
	}
	clear(last)
	for _, i := range unresolved {
		p := &prepared[i]
		l := last[p.AssetID]
		if !l.same(p.Code) {
			l = &lastCode{code: *p.Code, ids: in.assign(p.AssetID, p.Code)}
			last[p.AssetID] = l
		}
		ids[i] = l.ids
	}
	return ids, nil
}

// load reads every code version and dep set id of the given assets.
func (in *interner) load(ctx context.Context, tx pgx.Tx, assetIDs map[int64]bool) error {
	list := make([]int64, 0, len(assetIDs))
	for id := range assetIDs {
		list = append(list, id)
		in.tables[id] = newInternTable()
	}
	rows, err := tx.Query(ctx, `
		SELECT asset_id, id, code_version, false FROM code_versions WHERE asset_id = ANY($1)
		UNION ALL
		SELECT asset_id, id, deps, true FROM dep_sets WHERE asset_id = ANY($1)`, list)
	if err != nil {
		return err
	}
	var r internedRow
	_, err = pgx.ForEachRow(rows, []any{&r.assetID, &r.id, &r.value, &r.isDepSet}, func() error {
		in.add(r)
		return nil
	})
	return err
}

// seed gives the interner the table of asset assetID from rows (every code
// version and dep set of some assets, read under the clock's lock), so that
// resolve does not read it again.
func (in *interner) seed(assetID int64, rows []internedRow) {
	if in.seeded == nil {
		in.seeded = map[int64]bool{}
	}
	in.seeded[assetID] = true
	in.tables[assetID] = newInternTable()
	for _, r := range rows {
		if r.assetID == assetID {
			in.add(r)
		}
	}
}

// add records a code version's or dep set's id in its asset's table.
func (in *interner) add(r internedRow) {
	next := in.next[r.assetID]
	if r.isDepSet {
		in.tables[r.assetID].depSets[r.value] = r.id
		next.deps = max(next.deps, r.id+1)
	} else {
		in.tables[r.assetID].codeVersions[r.value] = r.id
		next.version = max(next.version, r.id+1)
	}
	in.next[r.assetID] = next
}

// assign returns the ids of code for an asset whose table was loaded, adding the
// values it does not have yet with the next free ids.
func (in *interner) assign(assetID int64, code *store.Code) codeIDs {
	t, next := in.tables[assetID], in.next[assetID]
	v, ok := t.codeVersions[code.Version]
	if !ok {
		v = next.version
		next.version++
		t.codeVersions[code.Version] = v
		in.added = append(in.added, internedRow{assetID: assetID, id: v, value: code.Version})
	}
	joined := store.JoinKeys(code.Deps)
	d, ok := t.depSets[joined]
	if !ok {
		d = next.deps
		next.deps++
		t.depSets[joined] = d
		in.added = append(in.added, internedRow{assetID: assetID, id: d, value: joined, isDepSet: true})
	}
	in.next[assetID] = next
	return codeIDs{version: v, deps: d}
}

// write inserts the code versions and dep sets assign added.
func (in *interner) write(ctx context.Context, tx pgx.Tx) error {
	if len(in.added) == 0 {
		return nil
	}
	batch := &pgx.Batch{}
	in.queue(batch)
	return tx.SendBatch(ctx, batch).Close()
}

// queue adds to batch the inserts of the code versions and dep sets assign added.
func (in *interner) queue(batch *pgx.Batch) {
	var (
		versionAssets, depAssets []int64
		versionIDs, depIDs       []int32
		versions, depSets        []string
	)
	for _, r := range in.added {
		if r.isDepSet {
			depAssets, depIDs, depSets = append(depAssets, r.assetID), append(depIDs, r.id), append(depSets, r.value)
		} else {
			versionAssets, versionIDs, versions = append(versionAssets, r.assetID), append(versionIDs, r.id), append(versions, r.value)
		}
	}
	if len(versions) > 0 {
		batch.Queue(`INSERT INTO code_versions (asset_id, id, code_version)
			SELECT * FROM unnest($1::bigint[], $2::integer[], $3::text[])`, versionAssets, versionIDs, versions)
	}
	if len(depSets) > 0 {
		batch.Queue(`INSERT INTO dep_sets (asset_id, id, deps)
			SELECT * FROM unnest($1::bigint[], $2::integer[], $3::text[])`, depAssets, depIDs, depSets)
	}
}
