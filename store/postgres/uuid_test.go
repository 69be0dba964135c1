package postgres

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
)

// TestUUIDsTravelInBinary checks that the store's connections send google/uuid
// values as uuids in binary, alone and in arrays, that they compare equal on the
// server and read back the same, and that the caller's AfterConnect hook still
// runs.
//
// Not parallel: AllocsPerRun counts the whole process's allocations.
func TestUUIDsTravelInBinary(t *testing.T) {
	var callerHook atomic.Bool
	s := openStore(t, WithPoolConfig(func(c *pgxpool.Config) {
		c.AfterConnect = func(context.Context, *pgx.Conn) error { callerHook.Store(true); return nil }
	}))
	ctx := t.Context()
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	if !callerHook.Load() {
		t.Error("the caller's AfterConnect hook did not run")
	}

	// Encoded directly, not through driver.Valuer: that formats each id as text,
	// fails to encode the text in binary, parses it and encodes it again (20
	// allocations an id).
	m := conn.Conn().TypeMap()
	ids := make([]uuid.UUID, 10)
	for i := range ids {
		ids[i] = uuid.New()
	}
	buf := make([]byte, 0, 1024)
	for _, c := range []struct {
		oid   uint32
		value any
		max   float64 // 19 and 202 through driver.Valuer
	}{{pgtype.UUIDOID, ids[0], 5}, {pgtype.UUIDArrayOID, ids, 40}} {
		var err error
		allocs := testing.AllocsPerRun(20, func() { _, err = m.Encode(c.oid, pgtype.BinaryFormatCode, c.value, buf[:0]) })
		if err != nil || allocs > c.max {
			t.Errorf("encode %T in binary: %v allocations, %v; want at most %v, no error", c.value, allocs, err, c.max)
		}
	}

	a, b := uuid.New(), uuid.New()
	var (
		one, null, fromText uuid.UUID
		many                []uuid.UUID
		same                bool
	)
	err = conn.QueryRow(ctx, `SELECT $1::uuid, NULL::uuid, $2::uuid[], $3::text, $1::uuid = $4::uuid`,
		a, []uuid.UUID{a, b}, b.String(), a).Scan(&one, &null, &many, &fromText, &same)
	if err != nil {
		t.Fatalf("round trip: %v", err)
	}
	if one != a || null != uuid.Nil || !slices.Equal(many, []uuid.UUID{a, b}) || fromText != b || !same {
		t.Errorf("read %s, %s, %v, %s, %v; want %s, %s, [%s %s], %s, true", one, null, many, fromText, same, a, uuid.Nil, a, b, b)
	}
}
