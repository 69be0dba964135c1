package postgres

import (
	"strings"
	"testing"

	"github.com/freshetdev/freshet/store"
)

// Verify must find damage, not only bless a healthy catalog: each case breaks the
// state (or the clock) behind the store's back.
func TestVerifyFindsDamage(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		damage  string
		problem string // a part of the expected problem
	}{
		{"changed data version", `UPDATE partition_state SET data_version = 'forged' WHERE partition_key = '2024-01-02'`,
			"data version is forged in the state but v1 in the event log"},
		{"lost state row", `DELETE FROM partition_state WHERE partition_key = '2024-01-02'`,
			"the event log has events for it but the state has no row"},
		{"state row without events", `INSERT INTO partition_state (asset_id, partition_key, partition_idx, last_seq)
			SELECT id, '2024-03-01', 60, 1 FROM assets`,
			"the state has a row but the event log has no event for it"},
		{"failure flag", `UPDATE partition_state SET failed = true WHERE partition_key = '2024-01-01'`,
			"failed is true in the state but false in the event log"},
		{"code version", `UPDATE partition_state SET code_version_id = 1 WHERE partition_key = '2024-01-01'`,
			"code version is 2 in the state but 1 in the event log"},
		{"clock behind", `UPDATE catalog_clock SET seq = 1`,
			"the catalog clock is at 1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			s := openStore(t)
			syncDefs(t, s, daily(t, "a", "2024-01-01"))
			second := materialization("a", 1, "v1")
			second.Code = &store.Code{Version: "2"}
			appendEvents(t, s, materialization("a", 0, "v0"), materialization("a", 1, "v0"), second)
			verifyClean(t, s)
			if _, err := s.pool.Exec(ctx, c.damage); err != nil {
				t.Fatalf("damage: %v", err)
			}
			problems, err := s.Verify(ctx)
			if err != nil {
				t.Fatalf("verify: %v", err)
			}
			var found []string
			for _, p := range problems {
				found = append(found, p.String())
			}
			if len(problems) != 1 || !strings.Contains(found[0], c.problem) {
				t.Errorf("verify found %q; want one problem saying %q", found, c.problem)
			}
		})
	}
}
