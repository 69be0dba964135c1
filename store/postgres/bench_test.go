package postgres

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/freshetdev/freshet/assets"
	"github.com/freshetdev/freshet/store"
	"github.com/freshetdev/freshet/store/postgres/pgtest"
)

// benchAssets returns n daily assets starting 2024-01-01, each depending on the
// one before.
func benchAssets(b *testing.B, n int) []*assets.Asset {
	out := make([]*assets.Asset, n)
	for i := range out {
		key := fmt.Sprintf("bench/asset_%05d", i)
		if i == 0 {
			out[i] = daily(b, key, "2024-01-01")
		} else {
			out[i] = daily(b, key, "2024-01-01", out[i-1].Key)
		}
	}
	return out
}

// BenchmarkAppend measures bulk ingest: materializations of every partition of
// many assets (a backfill), appended in chunks, asset by asset, into an empty
// catalog. Each event carries a run, a data version and metadata.
func BenchmarkAppend(b *testing.B) {
	cases := []struct{ assets, partitions, chunk int }{
		{20, 500, 10_000},
		{2_000, 500, 50_000},
	}
	for _, c := range cases {
		total := c.assets * c.partitions
		name := fmt.Sprintf("events=%d/assets=%d/partitions=%d/chunk=%d", total, c.assets, c.partitions, c.chunk)
		b.Run(name, func(b *testing.B) {
			defs := benchAssets(b, c.assets)
			events := make([]store.Event, 0, total)
			run := uuid.New()
			for _, a := range defs {
				for p := range c.partitions {
					events = append(events, store.Event{Kind: store.Materialization, Asset: a.Key, Partition: dayKey(p),
						RunID: run, StepID: run, DataVersion: "0f3c9a", InputSeq: store.AtAppend,
						Metadata: []byte(`{"rows": 1200}`)})
				}
			}
			b.ReportAllocs()
			for b.Loop() {
				b.StopTimer()
				url := pgtest.URL(b)
				s, err := Open(b.Context(), url)
				if err != nil {
					b.Fatal(err)
				}
				syncDefs(b, s, defs...)
				b.StartTimer()
				for lo := 0; lo < total; lo += c.chunk {
					if _, err := s.Append(b.Context(), events[lo:min(lo+c.chunk, total)]); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				s.Close()
				dropAndCheckpoint(b, url)
				b.StartTimer()
			}
			b.ReportMetric(float64(total)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// dropAndCheckpoint drops the schema of one iteration and checkpoints, so the next
// iteration does not share the machine with autovacuum and the checkpointer working
// through the rows of the one before.
func dropAndCheckpoint(b *testing.B, url string) {
	b.Helper()
	conn, err := pgx.Connect(b.Context(), url)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(b.Context())
	if _, err := conn.Exec(b.Context(), `DO $$ BEGIN EXECUTE format('DROP SCHEMA %I CASCADE', current_schema()); END $$`); err != nil {
		b.Fatal(err)
	}
	// CHECKPOINT needs a superuser or pg_checkpoint; without them the figure just
	// includes some of the checkpointer's work.
	_, _ = conn.Exec(b.Context(), `CHECKPOINT`)
}

// stateFixture is a catalog of daily assets with every partition materialized,
// written straight into the tables (Append would take a minute to build it).
func stateFixture(b *testing.B, nAssets, partitions int) *Store {
	b.Helper()
	s := openStore(b)
	syncDefs(b, s, benchAssets(b, nAssets)...)
	ctx := b.Context()
	// One code version and dep set per asset; every partition materialized, its
	// data changed at its own seq, above the definitions' seqs.
	_, err := s.pool.Exec(ctx, `
		INSERT INTO code_versions (asset_id, id, code_version) SELECT id, 0, '1' FROM assets;
		INSERT INTO dep_sets (asset_id, id, deps) SELECT id, 0, deps FROM assets;
		INSERT INTO partition_state (asset_id, partition_key, partition_idx, last_seq, success_seq, materialized_at,
			data_version, data_changed_seq, input_seq, code_version_id, dep_set_id)
		SELECT a.id, to_char(date '2024-01-01' + p, 'YYYY-MM-DD'), p, s.seq, s.seq, now(), 'v', s.seq, s.seq - 1, 0, 0
		FROM assets a CROSS JOIN generate_series(0, `+fmt.Sprint(partitions-1)+`) AS p,
			LATERAL (SELECT (SELECT seq FROM catalog_clock) + (a.id - 1) * `+fmt.Sprint(partitions)+` + p + 1 AS seq) s
		ORDER BY a.id, p;
		UPDATE catalog_clock SET seq = seq + (SELECT count(*) FROM partition_state);
		ANALYZE partition_state`)
	if err != nil {
		b.Fatalf("build state fixture: %v", err)
	}
	return s
}

// BenchmarkReadState measures a cold load of the whole columnar state: what a
// server does when it starts.
func BenchmarkReadState(b *testing.B) {
	const nAssets, partitions = 2_000, 1_096
	b.Run(fmt.Sprintf("assets=%d/partitions=%d/rows=%d", nAssets, partitions, nAssets*partitions), func(b *testing.B) {
		s := stateFixture(b, nAssets, partitions)
		b.ReportAllocs()
		var heap uint64
		for b.Loop() {
			snap, err := s.ReadState(b.Context(), nil)
			if err != nil {
				b.Fatal(err)
			}
			if st := snap.Assets["bench/asset_00000"]; len(snap.Assets) != nAssets || st.Len() != partitions {
				b.Fatalf("read %d assets; want %d with %d partitions", len(snap.Assets), nAssets, partitions)
			}
			b.StopTimer()
			var m runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&m)
			heap = max(heap, m.HeapAlloc)
			runtime.KeepAlive(snap)
			b.StartTimer()
		}
		b.ReportMetric(float64(heap)/(1<<20), "MiB-heap-held")
	})
}

// BenchmarkReadChanges measures an incremental read after 1,000 new events on a
// large catalog: what a long-running server does to stay current.
func BenchmarkReadChanges(b *testing.B) {
	const nAssets, partitions, newEvents = 2_000, 1_096, 1_000
	b.Run(fmt.Sprintf("assets=%d/partitions=%d/new_events=%d", nAssets, partitions, newEvents), func(b *testing.B) {
		s := stateFixture(b, nAssets, partitions)
		since, err := s.Watermark(b.Context())
		if err != nil {
			b.Fatal(err)
		}
		var events []store.Event
		for i := range newEvents {
			e := materialization(fmt.Sprintf("bench/asset_%05d", i*7%nAssets), partitions-1-i%30, fmt.Sprintf("new%d", i))
			events = append(events, e)
		}
		appendEvents(b, s, events...)
		b.ReportAllocs()
		for b.Loop() {
			ch, err := s.ReadChanges(b.Context(), since)
			if err != nil {
				b.Fatal(err)
			}
			if len(ch.Updated) == 0 || len(ch.Reloaded) != 0 {
				b.Fatalf("changes: %d updated, %d reloaded assets", len(ch.Updated), len(ch.Reloaded))
			}
		}
	})
}

// BenchmarkAppendOne measures the common case in production: a step finishes and
// records one materialization, in its own Append.
func BenchmarkAppendOne(b *testing.B) {
	s := openStore(b)
	defs := benchAssets(b, 10)
	syncDefs(b, s, defs...)
	i := 0
	for b.Loop() {
		e := materialization(string(defs[i%10].Key), i/10%1000, fmt.Sprint(i))
		if _, err := s.Append(b.Context(), []store.Event{e}); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
