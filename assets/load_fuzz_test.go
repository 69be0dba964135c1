package assets

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoad feeds arbitrary bytes to Parse. It must never panic; an error must be an
// Errors whose every element is positioned and says something; definitions returned
// without an error must pass Validate.
//
// Seeds: every definitions file under testdata, the inline ones below, and the corpus
// in testdata/fuzz/FuzzLoad (including inputs that once failed).
func FuzzLoad(f *testing.F) {
	for _, seed := range []string{
		"",
		"assets: []\n",
		"assets:\n  - key: a\n    compute: {command: [x]}\n",
		"assets:\n  - key: a\n    partitions: {weekly: {start: 2026-01-07, timezone: Mars/Base}}\n",
		"assets:\n  - key: a\n    deps: [a]\n  - key: Bad\n    deps: [{asset: Bad, mapping: all, start_offset: 2}]\n",
		"assets:\n  - key: a\n    compute: {command: python3 x.py}\n    retries: {max: three, backoff: 5x}\n",
		"assets:\n  - &a {key: a, retries: &r {max: 1}}\n  - {<<: *a, key: b, retries: {<<: [*r, *r]}}\n",
		"schedules:\n  - {name: n, cron: \"TZ=UTC\", select: \"*\"}\n",
		"connections:\n  dw: {postgres: {url: x, url_env: Y}}\nnotifiers:\n  - {log: true, slack: {}}\n",
		"assets:\n  - key: a\n    freshness: {deadline: {cron: \"*/0 * * * *\"}, max_lag: -1s}\n",
		"assets: [\n",
		"a: *x\n",
		"assets:\n\t- key: a\n",
		"---\n---\nassets: []\n",
		"assets:\n  - key: a\n    timeout: 106751d23h47m16s\n    concurrency: 0x7fffffff\n",
	} {
		f.Add([]byte(seed))
	}
	files, _ := filepath.Glob("testdata/*/*.y*ml")
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		defs, err := Parse("fuzz.yaml", data)
		if err == nil {
			if defs == nil {
				t.Fatal("no definitions and no error")
			}
			if errs := defs.Validate(); len(errs) > 0 {
				t.Fatalf("Parse accepted definitions that do not validate:\n%v", errs)
			}
			return
		}
		if defs != nil {
			t.Error("definitions returned along with an error")
		}
		es, ok := err.(Errors)
		if !ok {
			t.Fatalf("error is a %T, want Errors: %v", err, err)
		}
		if len(es) == 0 {
			t.Fatal("empty Errors returned as an error")
		}
		for _, e := range es {
			if e.Pos.Line <= 0 || e.Pos.Col <= 0 || e.Pos.File != "fuzz.yaml" || e.Msg == "" {
				t.Fatalf("badly positioned or empty error: %#v", e)
			}
		}
		_ = err.Error()
	})
}
