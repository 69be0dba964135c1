package assets

import (
	"strings"
	"testing"
)

// FuzzPartitionKey feeds arbitrary keys to every granularity: Index never panics,
// and a key it accepts is canonical (Key gives it back).
func FuzzPartitionKey(f *testing.F) {
	for _, k := range []string{"2026-04-08", "2026-04", "2026-04-08T13:00", "2026-10-25T02:00+02:00",
		"2026-10-25T02:00+01:00", "2026-02-30", "9999-99-99", "-001-01-01", "2026-01-05T00:00Z", "", "2026-04-08T13:00+14:00"} {
		for g := uint8(0); g < 5; g++ {
			f.Add(k, g, uint8(1))
		}
	}
	zones := []string{"UTC", "Europe/Berlin", "Asia/Kolkata", "America/New_York", "Australia/Lord_Howe"}
	starts := map[Granularity]string{Hourly: "2020-01-01T00:00", Daily: "2020-01-01", Weekly: "2019-12-30", Monthly: "2020-01-01"}
	all := map[[2]uint8]*Partitions{}
	for g, start := range starts {
		for z, zone := range zones {
			all[[2]uint8{uint8(g), uint8(z)}] = partitionsFor(f, PartitionsSpec{Granularity: g, Start: start, Timezone: zone, End: "2040-01-01"})
		}
	}
	f.Fuzz(func(t *testing.T, key string, g, zone uint8) {
		p := all[[2]uint8{g%4 + 1, zone % uint8(len(zones))}]
		i, err := p.Index(key)
		if err != nil {
			if !strings.Contains(err.Error(), "partition key") {
				t.Fatalf("error %q does not name the partition key", err)
			}
			return
		}
		if got := p.Key(i); got != key {
			t.Fatalf("Index(%q) = %d, but Key(%d) = %q", key, i, i, got)
		}
	})
}
