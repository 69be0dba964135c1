package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// pipeTx is a transaction whose BEGIN travels with the first batch of statements
// and whose COMMIT may travel with the last, on a connection of its own from the
// pool. A transaction that reads, decides in Go and writes then costs two round
// trips, not four: on a server one network hop away a round trip costs as much as
// the statements of a small transaction, so the queue's hot paths (FinishStep,
// ClaimSteps, a one-event Append) are built from such batches.
//
// It implements pgx.Tx, so the catalog's helpers that take a transaction (the
// state loader, the interner, COPY) run in it unchanged.
type pipeTx struct {
	conn *pgxpool.Conn
}

var _ pgx.Tx = (*pipeTx)(nil)

// txBatch returns a batch that begins a transaction with opts: send it with
// beginBatch.
func txBatch(opts pgx.TxOptions) *pgx.Batch {
	b := &pgx.Batch{}
	b.BeginTx(opts)
	return b
}

// beginBatch sends b (from txBatch) on a connection of the pool and returns the
// transaction it began and the results of its statements after the BEGIN. The
// caller reads the results, closes them, and ends the transaction with commit,
// commitWith or release (release always, deferred: it rolls back what was not
// committed and returns the connection).
func (s *Store) beginBatch(ctx context.Context, b *pgx.Batch) (*pipeTx, pgx.BatchResults, error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, nil, err
	}
	tx := &pipeTx{conn: conn}
	results := conn.SendBatch(ctx, b)
	if _, err := results.Exec(); err != nil {
		_ = results.Close()
		tx.release()
		return nil, nil, fmt.Errorf("begin: %w", err)
	}
	return tx, results, nil
}

// release rolls back the transaction unless it ended, and returns its connection
// to the pool. It is safe to call more than once.
func (tx *pipeTx) release() {
	if tx.conn == nil {
		return
	}
	if tx.conn.Conn().PgConn().TxStatus() != 'I' && !tx.conn.Conn().IsClosed() {
		// A fresh context: the caller's may be canceled, and the connection must go
		// back to the pool without an open transaction.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := tx.conn.Exec(ctx, "rollback")
		cancel()
		if err != nil {
			// The pool destroys a connection left inside a transaction.
			_ = tx.conn.Conn().Close(context.Background())
		}
	}
	tx.conn.Release()
	tx.conn = nil
}

// commitWith sends b, with a COMMIT queued after its statements, and hands the
// results of b's statements to read before checking that the transaction
// committed. The transaction is over when it returns (released on error).
func (tx *pipeTx) commitWith(ctx context.Context, b *pgx.Batch, read func(pgx.BatchResults) error) error {
	defer tx.release()
	b.Queue("commit")
	results := tx.conn.SendBatch(ctx, b)
	if read != nil {
		if err := read(results); err != nil {
			_ = results.Close()
			return err
		}
		// The statements read; what is left is the COMMIT.
		tag, err := results.Exec()
		if err != nil {
			_ = results.Close()
			return fmt.Errorf("commit: %w", err)
		}
		if tag.String() == "ROLLBACK" {
			_ = results.Close()
			return fmt.Errorf("commit: %w", pgx.ErrTxCommitRollback)
		}
	}
	if err := results.Close(); err != nil {
		return err
	}
	if tx.conn.Conn().PgConn().TxStatus() != 'I' {
		return fmt.Errorf("commit: %w", pgx.ErrTxCommitRollback)
	}
	return nil
}

// Commit commits the transaction and releases its connection.
func (tx *pipeTx) Commit(ctx context.Context) error {
	if tx.conn == nil {
		return pgx.ErrTxClosed
	}
	defer tx.release()
	tag, err := tx.conn.Exec(ctx, "commit")
	if err != nil {
		return err
	}
	if tag.String() == "ROLLBACK" {
		return pgx.ErrTxCommitRollback
	}
	return nil
}

// Rollback rolls the transaction back and releases its connection.
func (tx *pipeTx) Rollback(ctx context.Context) error {
	if tx.conn == nil {
		return pgx.ErrTxClosed
	}
	tx.release()
	return nil
}

// Begin is not supported: the queue never nests transactions.
func (tx *pipeTx) Begin(ctx context.Context) (pgx.Tx, error) {
	return nil, errors.New("nested transactions are not supported")
}

func (tx *pipeTx) CopyFrom(ctx context.Context, table pgx.Identifier, columns []string, src pgx.CopyFromSource) (int64, error) {
	return tx.conn.CopyFrom(ctx, table, columns, src)
}

func (tx *pipeTx) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	return tx.conn.SendBatch(ctx, b)
}

func (tx *pipeTx) LargeObjects() pgx.LargeObjects { return pgx.LargeObjects{} }

func (tx *pipeTx) Prepare(ctx context.Context, name, sql string) (*pgconn.StatementDescription, error) {
	return tx.conn.Conn().Prepare(ctx, name, sql)
}

func (tx *pipeTx) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	return tx.conn.Exec(ctx, sql, args...)
}

func (tx *pipeTx) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	return tx.conn.Query(ctx, sql, args...)
}

func (tx *pipeTx) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	return tx.conn.QueryRow(ctx, sql, args...)
}

func (tx *pipeTx) Conn() *pgx.Conn { return tx.conn.Conn() }

// planSettingsSQL makes the statements of the rest of a transaction plan for
// what the queue does: find a few rows by key through an index. It sets, for the
// transaction only:
//
//   - plan_cache_mode = force_generic_plan: PostgreSQL plans a prepared statement
//     whose parameters are arrays again on every execution (it cannot tell that
//     the generic plan is as good), and planning the larger statements costs more
//     than running them;
//   - enable_seqscan and enable_hashjoin off: without statistics (a fresh schema,
//     tables that grew since the last ANALYZE) the planner takes the queue's tables
//     for tiny and scans them whole, which makes a long run of steps quadratic.
//     With them off it uses the indexes every statement is written for;
//   - jit off: a plan's estimated cost grows with the run (10,000 steps put the
//     statement that makes dependents ready past jit_above_cost), and JIT compiles
//     a plan again on every execution: 20 to 50 ms for a statement that touches
//     a few dozen rows. A layered run of 10,000 steps took 76 s instead of 11.
//
// The plans are cached with the connection's prepared statements, so they are
// made once per connection.
const planSettingsSQL = `SELECT set_config('plan_cache_mode', 'force_generic_plan', true),
	set_config('enable_seqscan', 'off', true), set_config('enable_hashjoin', 'off', true),
	set_config('jit', 'off', true)`

// readTx are the options of the queue's reads: one snapshot for everything a read
// returns.
var readTx = pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}

// batchTx runs the statements of b in one transaction of one round trip, its
// BEGIN and COMMIT travelling with them: b is from txBatch (readTx for a read, one
// REPEATABLE READ snapshot); read reads the results of b's statements in order.
func (s *Store) batchTx(ctx context.Context, b *pgx.Batch, read func(pgx.BatchResults) error) error {
	b.Queue("commit")
	tx, results, err := s.beginBatch(ctx, b)
	if err != nil {
		return err
	}
	defer tx.release()
	if read != nil {
		if err := read(results); err != nil {
			_ = results.Close()
			return err
		}
	}
	return results.Close()
}

// Transactions that lose a deadlock or a serialization conflict are run again,
// a few times: the queue's writers lock rows in a fixed order where they can, but
// cascades across runs (a failure or cancel reaching steps that joined another
// run) may meet another writer coming the other way.
const maxTxAttempts = 5

// retryable reports whether err is a deadlock or serialization failure, after
// which the whole transaction may simply run again.
func retryable(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "40P01" || pgErr.Code == "40001")
}

// retry runs f, a whole transaction, again while it fails retryably.
func retry(ctx context.Context, f func() error) error {
	var err error
	for attempt := 1; ; attempt++ {
		err = f()
		if err == nil || attempt == maxTxAttempts || !retryable(err) || ctx.Err() != nil {
			return err
		}
		time.Sleep(time.Duration(attempt) * 5 * time.Millisecond)
	}
}
