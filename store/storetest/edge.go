package storetest

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/freshetdev/freshet/assets"
	"github.com/freshetdev/freshet/store"
)

// What real builds report: long error texts in any script, binary garbage from a
// crashed process, metadata with every JSON escape. Recording a failure must not
// fail because of what the failed process printed.

func testAppendLongErrorText(t *testing.T, f *fixture) {
	f.sync(catalog())
	// 1 + 2·9000 bytes: the cut at MaxErrorLen bytes falls inside a character.
	long := "x" + strings.Repeat("é", 9000)
	got, err := f.s.Append(f.ctx, []store.Event{failure(rawDaily, day(0), long)})
	if err != nil {
		t.Fatalf("Append(failure with a %d-byte error text): %v", len(long), err)
	}
	e := got[0]
	if len(e.Error) > store.MaxErrorLen+len("… (cut)") {
		t.Errorf("error text kept at %d bytes, want at most %d and a mark that it was cut", len(e.Error), store.MaxErrorLen+len("… (cut)"))
	}
	if !strings.HasSuffix(e.Error, "(cut)") {
		t.Errorf("a cut error text does not say it was cut: …%q", e.Error[max(0, len(e.Error)-20):])
	}
	if !utf8.ValidString(e.Error) {
		t.Errorf("the cut error text is not valid UTF-8 (cut inside a character): …%q", e.Error[max(0, len(e.Error)-20):])
	}
	checkEventsMatch(t, "Events after a long error text", f.eventsFrom(e.Seq), []store.Event{e})
}

func testAppendErrorTextAnyBytes(t *testing.T, f *fixture) {
	f.sync(catalog())
	msg := "Traceback: segfault\x00\xff\xfe\x01 core dumped"
	got, err := f.s.Append(f.ctx, []store.Event{failure(rawDaily, day(0), msg)})
	if err != nil {
		t.Fatalf("Append(failure whose error text has NUL and invalid UTF-8 bytes): %v; a failure must be recorded whatever its process printed", err)
	}
	e := got[0]
	if !strings.HasPrefix(e.Error, "Traceback: segfault") || !strings.Contains(e.Error, "core dumped") {
		t.Errorf("recorded error text %q lost the readable parts of %q", e.Error, msg)
	}
	checkEventsMatch(t, "Events after a binary error text (Append returns the events as recorded)", f.eventsFrom(e.Seq), []store.Event{e})
	if r := f.partition(rawDaily, day(0)); !r.Failed {
		t.Errorf("Partition(%s, %s).Failed = false after the failure", rawDaily, day(0))
	}
}

func testAppendOddContent(t *testing.T, f *fixture) {
	f.sync(catalog())
	withMeta := func(e store.Event, m string) store.Event { e.Metadata = []byte(m); return e }
	cases := []struct {
		name  string
		event store.Event
	}{
		{"metadata unicode escapes", withMeta(mat(rawDaily, day(0)), `{"s": "caf\u00e9 \ud83d\ude00 \n\t\"", "k\u00e9y": 1}`)},
		{"metadata numbers", withMeta(mat(rawDaily, day(1)), `{"int": 9007199254740991, "neg": -0.5, "exp": 1e-7, "big": 123456789012345678901234567890}`)},
		{"metadata nesting", withMeta(mat(rawDaily, day(2)), `{"a": {"b": {"c": {"d": [[[{"e": null}]]]}}}}`)},
		{"metadata NUL escape", withMeta(mat(rawDaily, day(3)), `{"note": "before\u0000after"}`)},
		{"data version unicode", matDV(rawDaily, day(4), "sha256:é✓-€")},
		{"data version with NUL", matDV(rawDaily, day(5), "v1\x00v2")},
		{"data version invalid UTF-8", obs(srcDaily, day(6), "etag-\xff\xfe")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := f.on(t)
			before := f.snapshotAll()
			got, err := f.s.Append(f.ctx, []store.Event{tc.event})
			var bad *store.BadEventsError
			switch {
			case errors.As(err, &bad):
				// Refusing it is fine, if it is refused as a bad event and nothing is written.
				if len(bad.Errors) != 1 || bad.Errors[0].N != 0 {
					t.Errorf("refused with %v, want one error for event 0", bad.Errors)
				}
				f.checkUnchanged("refused event", before)
				t.Logf("refused: %v", err)
			case err != nil:
				t.Fatalf("Append(%s): %v; an event must be stored, or refused as a bad event (*store.BadEventsError) naming what to fix, not fail in the database", tc.name, err)
			default:
				checkEventsMatch(t, "Events after "+tc.name, f.eventsFrom(got[0].Seq), got)
				if r := f.partition(tc.event.Asset, tc.event.Partition); r.DataVersion != got[0].DataVersion {
					t.Errorf("Partition.DataVersion = %+q, want %+q as returned by Append", r.DataVersion, got[0].DataVersion)
				}
			}
		})
	}
}

func testAppendLargeBatch(t *testing.T, f *fixture) {
	f.sync(catalog())
	w := f.watermark()
	const days = 3000
	batch := make([]store.Event, 0, 4*days)
	for i := range days {
		batch = append(batch, planned(rawDaily, day(i)), failure(rawDaily, day(i), "first try"), mat(rawDaily, day(i)), obs(srcDaily, day(i), "v"))
	}
	got := f.append(batch...)
	if got[0].Seq != w+1 || got[len(got)-1].Seq != w+int64(len(batch)) {
		t.Errorf("a batch of %d events got seqs %d..%d, want %d..%d", len(batch), got[0].Seq, got[len(got)-1].Seq, w+1, w+int64(len(batch)))
	}
	if wm := f.watermark(); wm != w+int64(len(batch)) {
		t.Errorf("Watermark = %d, want %d", wm, w+int64(len(batch)))
	}
	st := f.assetState(rawDaily)
	if st.Len() != days {
		t.Errorf("ReadState %s: Len = %d, want %d", rawDaily, st.Len(), days)
	}
	for i, fl := range st.Flags {
		if fl != store.FlagMaterialized {
			t.Errorf("ReadState %s: flags[%d] = %b, want materialized (failed, then built)", rawDaily, i, fl)
			break
		}
	}
	f.verifyClean()
}

func testStatePartitionKeys(t *testing.T, f *fixture) {
	const hourly, monthly assets.Key = "tz/hourly_berlin", "tz/monthly"
	hp := partitionsOf(assets.PartitionsSpec{Granularity: assets.Hourly, Start: "2026-10-24T00:00", Timezone: "Europe/Berlin"})
	mp := partitionsOf(assets.PartitionsSpec{Granularity: assets.Monthly, Start: "2025-11-01"})
	f.sync(defsOf(computed(hourly, hp), computed(monthly, mp)))
	// 2026-10-25 02:00 happens twice in Berlin: two partitions, two keys.
	first, second := "2026-10-25T02:00+02:00", "2026-10-25T02:00+01:00"
	i1, err1 := hp.Index(first)
	i2, err2 := hp.Index(second)
	if err1 != nil || err2 != nil || i2 != i1+1 {
		t.Fatalf("test setup: indexes of %s, %s = %d (%v), %d (%v)", first, second, i1, err1, i2, err2)
	}
	got := f.append(mat(hourly, first), failure(hourly, second, "x"), mat(monthly, "2026-03"))
	for _, c := range []struct {
		k     assets.Key
		p     string
		index int
		flags store.PartitionFlags
	}{
		{hourly, first, i1, store.FlagMaterialized},
		{hourly, second, i2, store.FlagFailed},
		{monthly, "2026-03", 4, store.FlagMaterialized},
	} {
		r := f.partition(c.k, c.p)
		if r.Index != c.index || r.Flags() != c.flags {
			t.Errorf("Partition(%s, %q): index %d, flags %b; want %d, %b", c.k, c.p, r.Index, r.Flags(), c.index, c.flags)
		}
		if fl := at(f.assetState(c.k).Flags, c.index); fl != c.flags {
			t.Errorf("ReadState %s: flags[%d] = %b, want %b", c.k, c.index, fl, c.flags)
		}
	}
	checkEventsMatch(t, "Events with hourly and monthly keys", f.eventsFrom(got[0].Seq), reversed(got))
	if evs := f.allEvents(store.EventQuery{Asset: hourly, Partitions: []string{second}}); len(evs) != 1 || evs[0].Partition != second {
		t.Errorf("Events(%s, partition %s) = %v, want the one failure", hourly, second, seqsOf(evs))
	}
}
