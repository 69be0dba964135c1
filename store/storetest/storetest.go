package storetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/freshetdev/freshet/assets"
	"github.com/freshetdev/freshet/store"
)

// Run runs the conformance suite against the stores open returns. open must return
// a fresh, empty, migrated store on every call and register its cleanup with t;
// it is called from parallel subtests.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	t.Helper()
	type test struct {
		name string
		run  func(t *testing.T, f *fixture)
	}
	groups := []struct {
		name  string
		tests []test
	}{
		{"Definitions", []test{
			{"FirstSyncAddsAll", testFirstSyncAddsAll},
			{"ResyncUnchangedWritesNothing", testResyncUnchanged},
			{"ChangedFields", testChangedFields},
			{"Reindex", testReindex},
			{"RemoveAndReAdd", testRemoveAndReAdd},
			{"SecretsNotStored", testSecretsNotStored},
			{"UnknownAsset", testDefinitionsUnknownAsset},
		}},
		{"Append", []test{
			{"SeqsConsecutive", testAppendSeqs},
			{"EmptyBatch", testAppendEmpty},
			{"DataVersion", testAppendDataVersion},
			{"InputSeq", testAppendInputSeq},
			{"Code", testAppendCode},
			{"FailureFlag", testAppendFailure},
			{"PlannedChangesNoState", testAppendPlanned},
			{"SourcesAndObservations", testAppendSources},
			{"DefaultAt", testAppendDefaultAt},
			{"BadEvents", testAppendBadEvents},
			{"AllBadEventsAtOnce", testAppendAllBad},
			{"LastOfManyBad", testAppendLastOfManyBad},
			{"LongErrorText", testAppendLongErrorText},
			{"ErrorTextAnyBytes", testAppendErrorTextAnyBytes},
			{"OddContent", testAppendOddContent},
			{"LargeBatch", testAppendLargeBatch},
		}},
		{"Events", []test{
			{"NewestFirstRoundTrip", testEventsRoundTrip},
			{"Filters", testEventsFilters},
			{"Paging", testEventsPaging},
		}},
		{"State", []test{
			{"SparseIndexes", testStateSparse},
			{"CodeVersionsAndDepSets", testStateCodeAndDeps},
			{"Flags", testStateFlags},
			{"Unpartitioned", testStateUnpartitioned},
			{"SelectedAssets", testStateSelected},
			{"PartitionKeys", testStatePartitionKeys},
		}},
		{"Changes", []test{
			{"TouchedPartitions", testChangesTouched},
			{"NothingSinceWatermark", testChangesNothing},
			{"ReloadedOnDefinitionChange", testChangesReloaded},
			{"WhileAppending", testChangesWhileAppending},
		}},
		{"Partition", []test{
			{"Record", testPartitionRecord},
			{"NotFound", testPartitionNotFound},
			{"Ranges", testPartitionRanges},
		}},
		{"Verify", []test{
			{"HealthyCatalog", testVerifyHealthy},
		}},
		{"Schema", []test{
			{"MigrateIsIdempotent", testMigrate},
		}},
		{"Concurrency", []test{
			{"ConcurrentAppends", testConcurrentAppends},
			{"ConcurrentSyncs", testConcurrentSyncs},
		}},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			for _, tc := range g.tests {
				t.Run(tc.name, func(t *testing.T) {
					t.Parallel()
					tc.run(t, newFixture(t, open))
				})
			}
		})
	}
}

// fixture is one store under test and the test reporting on it.
type fixture struct {
	t    *testing.T
	ctx  context.Context
	s    store.Store
	open func(t *testing.T) store.Store
}

func newFixture(t *testing.T, open func(t *testing.T) store.Store) *fixture {
	t.Helper()
	s := open(t)
	if s == nil {
		t.Fatal("open returned a nil store")
	}
	return &fixture{t: t, ctx: t.Context(), s: s, open: open}
}

// on returns the fixture reporting to t (a subtest sharing the store).
func (f *fixture) on(t *testing.T) *fixture {
	return &fixture{t: t, ctx: t.Context(), s: f.s, open: f.open}
}

// fresh returns a fixture on a new, empty store, reporting to t.
func (f *fixture) fresh(t *testing.T) *fixture {
	t.Helper()
	return newFixture(t, f.open)
}

func (f *fixture) sync(defs *assets.Definitions) *store.SyncResult {
	f.t.Helper()
	res, err := f.s.SyncDefinitions(f.ctx, defs)
	if err != nil {
		f.t.Fatalf("SyncDefinitions: %v", err)
	}
	if res == nil {
		f.t.Fatal("SyncDefinitions returned a nil result and no error")
	}
	return res
}

func (f *fixture) append(events ...store.Event) []store.Event {
	f.t.Helper()
	got, err := f.s.Append(f.ctx, events)
	if err != nil {
		f.t.Fatalf("Append(%d events): %v", len(events), err)
	}
	if len(got) != len(events) {
		f.t.Fatalf("Append(%d events) returned %d events", len(events), len(got))
	}
	return got
}

func (f *fixture) append1(e store.Event) store.Event {
	f.t.Helper()
	return f.append(e)[0]
}

func (f *fixture) watermark() int64 {
	f.t.Helper()
	w, err := f.s.Watermark(f.ctx)
	if err != nil {
		f.t.Fatalf("Watermark: %v", err)
	}
	return w
}

// assets returns Assets() by key, checking that the list comes sorted by key.
func (f *fixture) assets() map[assets.Key]store.AssetRecord {
	f.t.Helper()
	recs, err := f.s.Assets(f.ctx)
	if err != nil {
		f.t.Fatalf("Assets: %v", err)
	}
	m := make(map[assets.Key]store.AssetRecord, len(recs))
	for i, r := range recs {
		if i > 0 && recs[i-1].Key >= r.Key {
			f.t.Errorf("Assets: not sorted by key (or a key twice): %s before %s", recs[i-1].Key, r.Key)
		}
		m[r.Key] = r
	}
	return m
}

func (f *fixture) asset(key assets.Key) store.AssetRecord {
	f.t.Helper()
	rec, ok := f.assets()[key]
	if !ok {
		f.t.Fatalf("Assets: %s missing", key)
	}
	return rec
}

func (f *fixture) history(key assets.Key, limit int) []store.DefinitionChange {
	f.t.Helper()
	h, err := f.s.DefinitionHistory(f.ctx, key, limit)
	if err != nil {
		f.t.Fatalf("DefinitionHistory(%s, %d): %v", key, limit, err)
	}
	for i := 1; i < len(h); i++ {
		if h[i-1].Seq <= h[i].Seq {
			f.t.Errorf("DefinitionHistory(%s): not newest first: seq %d before seq %d", key, h[i-1].Seq, h[i].Seq)
		}
	}
	for _, c := range h {
		if c.Asset != key {
			f.t.Errorf("DefinitionHistory(%s): change %d is of asset %q", key, c.Seq, c.Asset)
		}
	}
	return h
}

// state reads the state of keys (all assets when none are given) and checks the
// shape of every asset's arrays.
func (f *fixture) state(keys ...assets.Key) *store.Snapshot {
	f.t.Helper()
	snap, err := f.s.ReadState(f.ctx, keys)
	if err != nil {
		f.t.Fatalf("ReadState(%v): %v", keys, err)
	}
	if snap == nil || snap.Assets == nil {
		f.t.Fatalf("ReadState(%v): nil snapshot or asset map", keys)
	}
	for k, st := range snap.Assets {
		checkShape(f.t, "ReadState "+string(k), st)
	}
	return snap
}

func (f *fixture) assetState(key assets.Key) *store.AssetState {
	f.t.Helper()
	st, ok := f.state(key).Assets[key]
	if !ok || st == nil {
		f.t.Fatalf("ReadState(%s): asset missing from the snapshot", key)
	}
	return st
}

func (f *fixture) changes(since int64) *store.Changes {
	f.t.Helper()
	ch, err := f.s.ReadChanges(f.ctx, since)
	if err != nil {
		f.t.Fatalf("ReadChanges(%d): %v", since, err)
	}
	if ch == nil {
		f.t.Fatalf("ReadChanges(%d): nil changes and no error", since)
	}
	if ch.Since != since {
		f.t.Errorf("ReadChanges(%d): Since = %d, want %d", since, ch.Since, since)
	}
	if ch.Seq < since {
		f.t.Errorf("ReadChanges(%d): Seq = %d, before since", since, ch.Seq)
	}
	for k, st := range ch.Reloaded {
		checkShape(f.t, "ReadChanges Reloaded "+string(k), st)
	}
	for k, u := range ch.Updated {
		checkUpdateShape(f.t, "ReadChanges Updated "+string(k), u)
	}
	return ch
}

func (f *fixture) partition(key assets.Key, partition string) *store.PartitionRecord {
	f.t.Helper()
	r, err := f.s.Partition(f.ctx, key, partition)
	if err != nil {
		f.t.Fatalf("Partition(%s, %q): %v", key, partition, err)
	}
	if r == nil {
		f.t.Fatalf("Partition(%s, %q): nil record and no error", key, partition)
	}
	if r.Asset != key || r.Partition != partition {
		f.t.Errorf("Partition(%s, %q): record names %s %q", key, partition, r.Asset, r.Partition)
	}
	return r
}

func (f *fixture) ranges(key assets.Key, lo, hi int) []store.Range {
	f.t.Helper()
	rs, err := f.s.PartitionRanges(f.ctx, key, lo, hi)
	if err != nil {
		f.t.Fatalf("PartitionRanges(%s, %d, %d): %v", key, lo, hi, err)
	}
	checkRangesCover(f.t, fmt.Sprintf("PartitionRanges(%s, %d, %d)", key, lo, hi), rs, lo, hi)
	return rs
}

// allEvents pages through the events q selects (from q.Before) and returns them,
// checking each page: newest first, within the limit, before q.Before.
func (f *fixture) allEvents(q store.EventQuery) []store.Event {
	f.t.Helper()
	limit := q.Limit
	if limit == 0 {
		limit = 100
	}
	var out []store.Event
	for pages := 0; ; pages++ {
		if pages > 100_000 {
			f.t.Fatalf("Events(%+v): more than 100,000 pages; paging does not end", q)
		}
		p, err := f.s.Events(f.ctx, q)
		if err != nil {
			f.t.Fatalf("Events(%+v): %v", q, err)
		}
		if p == nil {
			f.t.Fatalf("Events(%+v): nil page and no error", q)
		}
		if len(p.Events) > limit {
			f.t.Errorf("Events(%+v): %d events, more than the limit %d", q, len(p.Events), limit)
		}
		for i, e := range p.Events {
			if q.Before > 0 && e.Seq >= q.Before {
				f.t.Errorf("Events(%+v): event seq %d is not before %d", q, e.Seq, q.Before)
			}
			if i > 0 && p.Events[i-1].Seq <= e.Seq {
				f.t.Errorf("Events(%+v): not newest first: seq %d before seq %d", q, p.Events[i-1].Seq, e.Seq)
			}
		}
		out = append(out, p.Events...)
		if p.Next == 0 {
			break
		}
		if len(p.Events) == 0 {
			f.t.Fatalf("Events(%+v): empty page with Next = %d", q, p.Next)
		}
		if q.Before > 0 && p.Next >= q.Before {
			f.t.Fatalf("Events(%+v): Next = %d does not move back", q, p.Next)
		}
		q.Before = p.Next
	}
	seen := make(map[int64]bool, len(out))
	for _, e := range out {
		if seen[e.Seq] {
			f.t.Errorf("Events: paging returned seq %d twice", e.Seq)
		}
		seen[e.Seq] = true
	}
	return out
}

func (f *fixture) verifyClean() {
	f.t.Helper()
	probs, err := f.s.Verify(f.ctx)
	if err != nil {
		f.t.Fatalf("Verify: %v", err)
	}
	for _, p := range probs {
		f.t.Errorf("Verify: %s", p)
	}
}

// ---- definitions --------------------------------------------------------------

// The standard catalog used by most tests.
const (
	srcDaily  assets.Key = "src/events"    // source, daily from 2026-01-01
	rawDaily  assets.Key = "sales/raw"     // daily from 2026-01-01, deps src/events
	weekly    assets.Key = "sales/weekly"  // weekly from 2026-01-05, deps sales/raw
	summary   assets.Key = "sales/summary" // unpartitioned, deps sales/raw and ref/rates
	srcSingle assets.Key = "ref/rates"     // source, unpartitioned
)

// catalog returns the standard catalog, freshly built.
func catalog() *assets.Definitions {
	return defsOf(
		source(srcDaily, dailyFrom("2026-01-01")),
		computed(rawDaily, dailyFrom("2026-01-01"), srcDaily),
		computed(weekly, partitionsOf(assets.PartitionsSpec{Granularity: assets.Weekly, Start: "2026-01-05"}), rawDaily),
		computed(summary, nil, srcSingle, rawDaily),
		source(srcSingle, nil),
	)
}

func defsOf(as ...*assets.Asset) *assets.Definitions {
	return &assets.Definitions{Assets: as}
}

func partitionsOf(spec assets.PartitionsSpec) *assets.Partitions {
	p, err := assets.NewPartitions(spec)
	if err != nil {
		panic(fmt.Sprintf("storetest: bad partitions %+v: %v", spec, err))
	}
	return p
}

func dailyFrom(start string) *assets.Partitions {
	return partitionsOf(assets.PartitionsSpec{Granularity: assets.Daily, Start: start})
}

// computed returns an asset built by a command, code version "1".
func computed(key assets.Key, p *assets.Partitions, deps ...assets.Key) *assets.Asset {
	a := &assets.Asset{
		Key:         key,
		CodeVersion: "1",
		Partitions:  p,
		Compute:     assets.CommandCompute{Argv: []string{"true"}},
	}
	for _, d := range deps {
		a.Deps = append(a.Deps, assets.Dep{Asset: d})
	}
	return a
}

// source returns a source asset (no compute).
func source(key assets.Key, p *assets.Partitions) *assets.Asset {
	return &assets.Asset{Key: key, Partitions: p}
}

// day returns the key of the daily partition i days after 2026-01-01.
func day(i int) string {
	return time.Date(2026, 1, 1+i, 0, 0, 0, 0, time.UTC).Format(time.DateOnly)
}

// ---- events -------------------------------------------------------------------

func mat(k assets.Key, p string) store.Event {
	return store.Event{Kind: store.Materialization, Asset: k, Partition: p, InputSeq: store.AtAppend}
}

func matDV(k assets.Key, p, dv string) store.Event {
	e := mat(k, p)
	e.DataVersion = dv
	return e
}

func failure(k assets.Key, p, msg string) store.Event {
	return store.Event{Kind: store.Failure, Asset: k, Partition: p, Error: msg}
}

func obs(k assets.Key, p, dv string) store.Event {
	return store.Event{Kind: store.Observation, Asset: k, Partition: p, DataVersion: dv}
}

func planned(k assets.Key, p string) store.Event {
	return store.Event{Kind: store.Planned, Asset: k, Partition: p}
}

// eventDiff describes how got differs from want, field by field.
func eventDiff(want, got store.Event) []string {
	var d []string
	cmp := func(field string, w, g any) {
		if w != g {
			d = append(d, fmt.Sprintf("%s = %v, want %v", field, g, w))
		}
	}
	cmp("Seq", want.Seq, got.Seq)
	cmp("Kind", want.Kind, got.Kind)
	cmp("Asset", want.Asset, got.Asset)
	cmp("Partition", want.Partition, got.Partition)
	if !want.At.Equal(got.At) {
		d = append(d, fmt.Sprintf("At = %s, want %s", got.At.Format(time.RFC3339Nano), want.At.Format(time.RFC3339Nano)))
	}
	cmp("RunID", want.RunID, got.RunID)
	cmp("StepID", want.StepID, got.StepID)
	cmp("DataVersion", want.DataVersion, got.DataVersion)
	cmp("DataChanged", want.DataChanged, got.DataChanged)
	cmp("InputSeq", want.InputSeq, got.InputSeq)
	cmp("Code", codeString(want.Code), codeString(got.Code))
	if !jsonEqual(want.Metadata, got.Metadata) {
		d = append(d, fmt.Sprintf("Metadata = %s, want %s", got.Metadata, want.Metadata))
	}
	cmp("Error", want.Error, got.Error)
	return d
}

func codeString(c *store.Code) string {
	if c == nil {
		return "<nil>"
	}
	return fmt.Sprintf("{%q %v}", c.Version, c.Deps)
}

// jsonEqual reports whether a and b hold the same JSON value (empty and null are
// the same: no value).
func jsonEqual(a, b []byte) bool {
	a, b = bytes.TrimSpace(a), bytes.TrimSpace(b)
	if len(a) == 0 || string(a) == "null" || len(b) == 0 || string(b) == "null" {
		return (len(a) == 0 || string(a) == "null") == (len(b) == 0 || string(b) == "null")
	}
	var va, vb any
	if json.Unmarshal(a, &va) != nil || json.Unmarshal(b, &vb) != nil {
		return false
	}
	return reflect.DeepEqual(va, vb)
}

// ---- keys ---------------------------------------------------------------------

// sameKeys reports whether got and want hold the same keys, in any order.
func sameKeys(got, want []assets.Key) bool {
	g, w := slices.Clone(got), slices.Clone(want)
	slices.Sort(g)
	slices.Sort(w)
	return slices.Equal(g, w)
}

func checkKeys(t *testing.T, what string, got, want []assets.Key) {
	t.Helper()
	if !sameKeys(got, want) {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

func sameStrings(got, want []string) bool {
	g, w := slices.Clone(got), slices.Clone(want)
	slices.Sort(g)
	slices.Sort(w)
	return slices.Equal(g, w)
}

// ---- state --------------------------------------------------------------------

// cell is one partition's state with its ids resolved, comparable across reads.
type cell struct {
	Flags          store.PartitionFlags
	InputSeq       int64
	DataChangedSeq int64
	Code           string // code version of the latest materialization
	Deps           string // its dep set, one key per line
}

func (c cell) String() string {
	return fmt.Sprintf("{flags %b input_seq %d data_changed_seq %d code %q deps %q}",
		c.Flags, c.InputSeq, c.DataChangedSeq, c.Code, strings.ReplaceAll(c.Deps, "\n", ","))
}

// cellsOf returns the partitions of st that hold anything, by index. With code,
// the code version and dep set of materialized partitions are resolved.
func cellsOf(st *store.AssetState, code bool) map[int]cell {
	m := make(map[int]cell)
	if st == nil {
		return m
	}
	for i := range st.Flags {
		c := cell{Flags: st.Flags[i], InputSeq: at(st.InputSeq, i), DataChangedSeq: at(st.DataChangedSeq, i)}
		if c == (cell{}) {
			continue
		}
		if code && c.Flags&store.FlagMaterialized != 0 {
			c.Code = resolve(st.CodeVersions, at(st.CodeVersion, i), func(s string) string { return s })
			c.Deps = resolve(st.DepSets, at(st.DepSet, i), store.JoinKeys)
		}
		m[i] = c
	}
	return m
}

func at[T any](s []T, i int) T {
	var zero T
	if i < len(s) {
		return s[i]
	}
	return zero
}

func resolve[T any](list []T, id uint32, str func(T) string) string {
	if int(id) >= len(list) {
		return fmt.Sprintf("<id %d of %d>", id, len(list))
	}
	return str(list[id])
}

// diffCells describes how got differs from want.
func diffCells(want, got map[int]cell) []string {
	var d []string
	idx := make([]int, 0, len(want)+len(got))
	for i := range want {
		idx = append(idx, i)
	}
	for i := range got {
		if _, ok := want[i]; !ok {
			idx = append(idx, i)
		}
	}
	sort.Ints(idx)
	for _, i := range idx {
		w, wok := want[i]
		g, gok := got[i]
		switch {
		case !gok:
			d = append(d, fmt.Sprintf("partition index %d: nothing recorded, want %s", i, w))
		case !wok:
			d = append(d, fmt.Sprintf("partition index %d: %s recorded, want nothing", i, g))
		case w != g:
			d = append(d, fmt.Sprintf("partition index %d: %s, want %s", i, g, w))
		}
	}
	return d
}

func checkCells(t *testing.T, what string, st *store.AssetState, want map[int]cell, code bool) {
	t.Helper()
	for _, d := range diffCells(want, cellsOf(st, code)) {
		t.Errorf("%s: %s", what, d)
	}
}

// checkShape checks that st's per-partition arrays are parallel and its id lists
// hold no duplicates.
func checkShape(t *testing.T, what string, st *store.AssetState) {
	t.Helper()
	if st == nil {
		t.Errorf("%s: nil asset state", what)
		return
	}
	n := len(st.Flags)
	if len(st.InputSeq) != n || len(st.DataChangedSeq) != n || len(st.CodeVersion) != n || len(st.DepSet) != n {
		t.Errorf("%s: arrays of different lengths: flags %d, input_seq %d, data_changed_seq %d, code_version %d, dep_set %d",
			what, n, len(st.InputSeq), len(st.DataChangedSeq), len(st.CodeVersion), len(st.DepSet))
	}
	checkListIDs(t, what, st)
}

func checkListIDs(t *testing.T, what string, st *store.AssetState) {
	t.Helper()
	seen := make(map[string]bool)
	for _, v := range st.CodeVersions {
		if seen[v] {
			t.Errorf("%s: code version %q listed twice in CodeVersions %q", what, v, st.CodeVersions)
		}
		seen[v] = true
	}
	seen = make(map[string]bool)
	for _, ds := range st.DepSets {
		if !slices.IsSorted(ds) {
			t.Errorf("%s: dep set %v not sorted", what, ds)
		}
		j := store.JoinKeys(ds)
		if seen[j] {
			t.Errorf("%s: dep set %v listed twice in DepSets %v", what, ds, st.DepSets)
		}
		seen[j] = true
	}
}

func checkUpdateShape(t *testing.T, what string, u *store.AssetUpdate) {
	t.Helper()
	if u == nil {
		t.Errorf("%s: nil update", what)
		return
	}
	n := len(u.Index)
	if len(u.Flags) != n || len(u.InputSeq) != n || len(u.DataChangedSeq) != n || len(u.CodeVersion) != n || len(u.DepSet) != n {
		t.Errorf("%s: arrays of different lengths: index %d, flags %d, input_seq %d, data_changed_seq %d, code_version %d, dep_set %d",
			what, n, len(u.Flags), len(u.InputSeq), len(u.DataChangedSeq), len(u.CodeVersion), len(u.DepSet))
	}
	seen := make(map[int]bool, n)
	for _, i := range u.Index {
		if i < 0 {
			t.Errorf("%s: negative partition index %d", what, i)
		}
		if seen[i] {
			t.Errorf("%s: partition index %d listed twice", what, i)
		}
		seen[i] = true
	}
	checkListIDs(t, what, &u.AssetState)
}

// updateCells returns the partitions an update carries, by index (all of them,
// even those it sets to nothing).
func updateCells(u *store.AssetUpdate, code bool) map[int]cell {
	m := make(map[int]cell, len(u.Index))
	for j, i := range u.Index {
		c := cell{Flags: at(u.Flags, j), InputSeq: at(u.InputSeq, j), DataChangedSeq: at(u.DataChangedSeq, j)}
		if code && c.Flags&store.FlagMaterialized != 0 {
			c.Code = resolve(u.CodeVersions, at(u.CodeVersion, j), func(s string) string { return s })
			c.Deps = resolve(u.DepSets, at(u.DepSet, j), store.JoinKeys)
		}
		m[i] = c
	}
	return m
}

// applyChanges folds ch into the assets of a planner-like copy of the state, as a
// long-running reader does.
func applyChanges(state map[assets.Key]*store.AssetState, ch *store.Changes) {
	for k, st := range ch.Reloaded {
		state[k] = cloneState(st)
	}
	for k, u := range ch.Updated {
		st := state[k]
		if st == nil {
			st = &store.AssetState{}
			state[k] = st
		}
		for j, i := range u.Index {
			if i < 0 || j >= len(u.Flags) || j >= len(u.InputSeq) || j >= len(u.DataChangedSeq) || j >= len(u.CodeVersion) || j >= len(u.DepSet) {
				continue // reported by checkUpdateShape
			}
			st.Grow(i + 1)
			st.Flags[i] = u.Flags[j]
			st.InputSeq[i] = u.InputSeq[j]
			st.DataChangedSeq[i] = u.DataChangedSeq[j]
			st.CodeVersion[i] = u.CodeVersion[j]
			st.DepSet[i] = u.DepSet[j]
		}
		st.CodeVersions = slices.Clone(u.CodeVersions)
		st.DepSets = slices.Clone(u.DepSets)
	}
}

func cloneState(st *store.AssetState) *store.AssetState {
	if st == nil {
		return &store.AssetState{}
	}
	return &store.AssetState{
		Flags:          slices.Clone(st.Flags),
		InputSeq:       slices.Clone(st.InputSeq),
		DataChangedSeq: slices.Clone(st.DataChangedSeq),
		CodeVersion:    slices.Clone(st.CodeVersion),
		DepSet:         slices.Clone(st.DepSet),
		CodeVersions:   slices.Clone(st.CodeVersions),
		DepSets:        slices.Clone(st.DepSets),
	}
}

// checkSameState compares a state kept current with ReadChanges (kept) with a
// fresh ReadState (fresh), asset by asset, partition by partition.
func checkSameState(t *testing.T, kept map[assets.Key]*store.AssetState, fresh *store.Snapshot) {
	t.Helper()
	for k, st := range fresh.Assets {
		mine, ok := kept[k]
		if !ok {
			t.Errorf("asset %s is in ReadState but never came from ReadState or ReadChanges", k)
			continue
		}
		for _, d := range diffCells(cellsOf(st, true), cellsOf(mine, true)) {
			t.Errorf("asset %s, kept current with ReadChanges vs a fresh ReadState: %s", k, d)
		}
	}
}

// ---- ranges -------------------------------------------------------------------

// checkRangesCover checks that rs covers [lo, hi) exactly, in order, with maximal
// runs (no two adjacent ranges in the same state).
func checkRangesCover(t *testing.T, what string, rs []store.Range, lo, hi int) {
	t.Helper()
	next := lo
	for i, r := range rs {
		if r.Lo != next || r.Hi <= r.Lo {
			t.Errorf("%s: range %d is [%d, %d), want it to start at %d and be non-empty; ranges %v", what, i, r.Lo, r.Hi, next, rs)
			return
		}
		if i > 0 && rs[i-1].State == r.State {
			t.Errorf("%s: ranges %d and %d are both %s: not run-length encoded; ranges %v", what, i-1, i, r.State, rs)
		}
		next = r.Hi
	}
	if next != hi && hi > lo {
		t.Errorf("%s: ranges end at %d, want %d; ranges %v", what, next, hi, rs)
	}
	if hi <= lo && len(rs) > 0 {
		t.Errorf("%s: empty interval, but got ranges %v", what, rs)
	}
}

// expandRanges returns the state of each partition of [lo, hi) from rs.
func expandRanges(rs []store.Range, lo, hi int) []store.RecordedState {
	out := make([]store.RecordedState, max(hi-lo, 0))
	for _, r := range rs {
		for i := max(r.Lo, lo); i < min(r.Hi, hi); i++ {
			out[i-lo] = r.State
		}
	}
	return out
}

// ---- errors -------------------------------------------------------------------

// badEvents returns err as a *store.BadEventsError, failing the test when it is not.
func badEvents(t *testing.T, what string, err error) *store.BadEventsError {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: no error, want a *store.BadEventsError", what)
	}
	var bad *store.BadEventsError
	if !errors.As(err, &bad) {
		t.Fatalf("%s: error %q (%T) is not a *store.BadEventsError", what, err, err)
	}
	return bad
}

// unchanged records what an Append that fails must leave as it was.
type unchanged struct {
	watermark int64
	events    []store.Event
	state     *store.Snapshot
}

func (f *fixture) snapshotAll() unchanged {
	f.t.Helper()
	return unchanged{watermark: f.watermark(), events: f.allEvents(store.EventQuery{Limit: 10_000}), state: f.state()}
}

// checkUnchanged checks that nothing was written since before was taken.
func (f *fixture) checkUnchanged(what string, before unchanged) {
	f.t.Helper()
	after := f.snapshotAll()
	if after.watermark != before.watermark {
		f.t.Errorf("%s: watermark moved from %d to %d, want it unchanged", what, before.watermark, after.watermark)
	}
	if len(after.events) != len(before.events) {
		f.t.Errorf("%s: the event log went from %d to %d events, want it unchanged", what, len(before.events), len(after.events))
	}
	for k, st := range after.state.Assets {
		for _, d := range diffCells(cellsOf(before.state.Assets[k], true), cellsOf(st, true)) {
			f.t.Errorf("%s: asset %s state changed: %s", what, k, d)
		}
	}
}
