package postgres

import (
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgtype"
)

// registerUUID teaches a connection's type map to send github.com/google/uuid
// values as PostgreSQL uuids, in binary.
//
// Without it pgx only sees that uuid.UUID is a driver.Valuer: every id sent is
// formatted as text for the server to parse, and an array of ids is first tried
// in binary, fails (an error built and thrown away) and is encoded again as text.
// The queue sends a few dozen ids per step: this was a fifth of the allocations
// of a worker's report. (Reading is left as it is: pgx scans through
// uuid.UUID's sql.Scanner before it looks at wrappers.)
func registerUUID(m *pgtype.Map) {
	m.TryWrapEncodePlanFuncs = append([]pgtype.TryWrapEncodePlanFunc{tryWrapUUIDEncodePlan}, m.TryWrapEncodePlanFuncs...)
}

// pgUUID is a uuid.UUID that pgx's uuid codec encodes itself.
type pgUUID uuid.UUID

// UUIDValue implements pgtype.UUIDValuer.
func (u pgUUID) UUIDValue() (pgtype.UUID, error) {
	return pgtype.UUID{Bytes: u, Valid: true}, nil
}

func tryWrapUUIDEncodePlan(value any) (pgtype.WrappedEncodePlanNextSetter, any, bool) {
	if u, ok := value.(uuid.UUID); ok {
		return &uuidEncodePlan{}, pgUUID(u), true
	}
	return nil, nil, false
}

// uuidEncodePlan encodes a uuid.UUID as a pgUUID.
type uuidEncodePlan struct{ next pgtype.EncodePlan }

func (p *uuidEncodePlan) SetNext(next pgtype.EncodePlan) { p.next = next }

func (p *uuidEncodePlan) Encode(value any, buf []byte) ([]byte, error) {
	return p.next.Encode(pgUUID(value.(uuid.UUID)), buf)
}
