package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/freshetdev/freshet/store"
)

// Code versions and dep sets recorded with materializations are numbered per asset
// from 0 (tables code_versions and dep_sets), so that the planner's columnar state
// holds small integers instead of strings.

// maxCached bounds the store's caches; past it they start over.
const maxCached = 1 << 16

// internKind says which table an interned value lives in.
type internKind uint8

const (
	internCodeVersion internKind = iota
	internDepSet
)

type internKey struct {
	assetID int64
	kind    internKind
	value   string
}

// internedCode is the ids of a materialization's code version and dep set.
type internedCode struct {
	codeID, depSetID int64
}

var internTables = [...]struct{ lookup, next, insert string }{
	internCodeVersion: {
		lookup: `SELECT id FROM code_versions WHERE asset_id = ? AND code_version = ?`,
		next:   `SELECT coalesce(max(id) + 1, 0) FROM code_versions WHERE asset_id = ?`,
		insert: `INSERT INTO code_versions (asset_id, id, code_version) VALUES (?, ?, ?)`,
	},
	internDepSet: {
		lookup: `SELECT id FROM dep_sets WHERE asset_id = ? AND deps = ?`,
		next:   `SELECT coalesce(max(id) + 1, 0) FROM dep_sets WHERE asset_id = ?`,
		insert: `INSERT INTO dep_sets (asset_id, id, deps) VALUES (?, ?, ?)`,
	},
}

// internCode returns the ids of code for an asset, creating them when new.
func (w *writeTx) internCode(ctx context.Context, assetID int64, code *store.Code) (internedCode, error) {
	codeID, err := w.intern(ctx, internKey{assetID, internCodeVersion, code.Version})
	if err != nil {
		return internedCode{}, err
	}
	depSetID, err := w.intern(ctx, internKey{assetID, internDepSet, store.JoinKeys(code.Deps)})
	if err != nil {
		return internedCode{}, err
	}
	return internedCode{int64(codeID), int64(depSetID)}, nil
}

func (w *writeTx) intern(ctx context.Context, key internKey) (uint32, error) {
	if id, ok := w.interned[key]; ok {
		return id, nil
	}
	w.s.internMu.Lock()
	id, ok := w.s.interned[key]
	w.s.internMu.Unlock()
	if ok {
		return id, nil
	}
	table := internTables[key.kind]
	lookup, err := w.stmt(ctx, table.lookup)
	if err != nil {
		return 0, err
	}
	err = lookup.QueryRowContext(ctx, key.assetID, key.value).Scan(&id)
	switch {
	case err == nil:
	case errors.Is(err, sql.ErrNoRows):
		if id, err = w.insertInterned(ctx, key); err != nil {
			return 0, err
		}
	default:
		return 0, fmt.Errorf("look up %s: %w", key.describe(), err)
	}
	w.interned[key] = id
	return id, nil
}

func (w *writeTx) insertInterned(ctx context.Context, key internKey) (uint32, error) {
	table := internTables[key.kind]
	next, err := w.stmt(ctx, table.next)
	if err != nil {
		return 0, err
	}
	var id uint32
	if err := next.QueryRowContext(ctx, key.assetID).Scan(&id); err != nil {
		return 0, fmt.Errorf("number %s: %w", key.describe(), err)
	}
	insert, err := w.stmt(ctx, table.insert)
	if err != nil {
		return 0, err
	}
	if _, err := insert.ExecContext(ctx, key.assetID, id, key.value); err != nil {
		return 0, fmt.Errorf("record %s: %w", key.describe(), err)
	}
	return id, nil
}

func (k internKey) describe() string {
	if k.kind == internCodeVersion {
		return fmt.Sprintf("code version %q", k.value)
	}
	return fmt.Sprintf("dep set %q", k.value)
}

// rememberInterned caches ids of a committed transaction.
func (s *Store) rememberInterned(ids map[internKey]uint32) {
	if len(ids) == 0 {
		return
	}
	s.internMu.Lock()
	defer s.internMu.Unlock()
	if len(s.interned)+len(ids) > maxCached {
		clear(s.interned)
	}
	for k, id := range ids {
		s.interned[k] = id
	}
}
