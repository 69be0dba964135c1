package postgres

import (
	"context"
	"encoding/binary"
	"io"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// copyIn writes n rows into table with COPY in PostgreSQL's binary format,
// encoding each row as the server reads it (encode(i, r) writes row i's columns,
// in order). Encoding the wire format directly, rather than through []any values,
// spares an allocation per value: bulk appends write millions of rows.
func copyIn(ctx context.Context, tx pgx.Tx, table string, columns []string, n int, encode func(i int, r *copyRow)) error {
	if n == 0 {
		return nil
	}
	sql := "COPY " + pgx.Identifier{table}.Sanitize() + " (" + strings.Join(columns, ", ") + ") FROM STDIN (FORMAT binary)"
	src := &binaryCopy{n: n, fields: len(columns), encode: encode}
	_, err := tx.Conn().PgConn().CopyFrom(ctx, src, sql)
	return err
}

// binaryCopy is an io.Reader of rows in binary COPY format, encoded on demand a
// chunk at a time, so memory stays small whatever the row count.
type binaryCopy struct {
	n, fields int
	encode    func(i int, r *copyRow)
	next      int // next row to encode
	row       copyRow
	off       int // read offset in row.buf
	started   bool
	finished  bool
}

// copyChunk is how many bytes are encoded ahead of the reader.
const copyChunk = 256 << 10

var copyHeader = []byte("PGCOPY\n\xff\r\n\x00\x00\x00\x00\x00\x00\x00\x00\x00")

func (c *binaryCopy) Read(p []byte) (int, error) {
	for c.off == len(c.row.buf) {
		if c.finished {
			return 0, io.EOF
		}
		c.row.buf, c.off = c.row.buf[:0], 0
		if !c.started {
			c.row.buf = append(c.row.buf, copyHeader...)
			c.started = true
		}
		for c.next < c.n && len(c.row.buf) < copyChunk {
			c.row.buf = binary.BigEndian.AppendUint16(c.row.buf, uint16(c.fields))
			c.encode(c.next, &c.row)
			c.next++
		}
		if c.next == c.n {
			c.row.buf = binary.BigEndian.AppendUint16(c.row.buf, 0xffff) // end of data
			c.finished = true
		}
	}
	n := copy(p, c.row.buf[c.off:])
	c.off += n
	return n, nil
}

// copyRow appends the fields of one row in binary COPY format: each a length and
// the value in the type's binary send format.
type copyRow struct {
	buf []byte
}

// pgEpochMicros is 2000-01-01T00:00:00Z, PostgreSQL's time zero, in Unix microseconds.
const pgEpochMicros = 946_684_800_000_000

func (r *copyRow) null() { r.buf = binary.BigEndian.AppendUint32(r.buf, 0xffffffff) }

func (r *copyRow) int8(v int64) {
	r.buf = binary.BigEndian.AppendUint32(r.buf, 8)
	r.buf = binary.BigEndian.AppendUint64(r.buf, uint64(v))
}

func (r *copyRow) int4(v int32) {
	r.buf = binary.BigEndian.AppendUint32(r.buf, 4)
	r.buf = binary.BigEndian.AppendUint32(r.buf, uint32(v))
}

func (r *copyRow) bool(v bool) {
	b := byte(0)
	if v {
		b = 1
	}
	r.buf = append(binary.BigEndian.AppendUint32(r.buf, 1), b)
}

func (r *copyRow) text(s string) {
	r.buf = binary.BigEndian.AppendUint32(r.buf, uint32(len(s)))
	r.buf = append(r.buf, s...)
}

// textOrNull writes "" as NULL.
func (r *copyRow) textOrNull(s string) {
	if s == "" {
		r.null()
		return
	}
	r.text(s)
}

func (r *copyRow) timestamptz(t time.Time) {
	r.int8(t.UnixMicro() - pgEpochMicros)
}

// uuidOrNull writes the zero UUID as NULL.
func (r *copyRow) uuidOrNull(id [16]byte) {
	if id == ([16]byte{}) {
		r.null()
		return
	}
	r.buf = binary.BigEndian.AppendUint32(r.buf, 16)
	r.buf = append(r.buf, id[:]...)
}

// jsonbOrNull writes JSON text as jsonb (format version 1), nil as NULL.
func (r *copyRow) jsonbOrNull(j []byte) {
	if j == nil {
		r.null()
		return
	}
	r.buf = binary.BigEndian.AppendUint32(r.buf, uint32(len(j)+1))
	r.buf = append(r.buf, 1)
	r.buf = append(r.buf, j...)
}
