package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
)

// How the listener keeps its connection.
const (
	// listenCheck is how long the listener waits for a notification before it
	// checks that its connection still answers: a server that vanished without
	// closing the socket (a network partition) is noticed within it.
	listenCheck = 30 * time.Second
	// listenBackoff and listenMaxBackoff bound the wait between reconnections.
	listenBackoff    = 100 * time.Millisecond
	listenMaxBackoff = 10 * time.Second
)

// listenAppName is the application_name of a listener's connection, so that an
// operator (or a test) can tell it in pg_stat_activity: the pool's name with
// " listen", or "freshet listen".
func listenAppName(poolName string) string {
	if poolName == "" {
		return "freshet listen"
	}
	return poolName + " listen"
}

// Listen returns a channel that receives a value whenever steps may have become
// ready. It holds a connection of its own, outside the pool, running LISTEN; when
// the connection drops (the server restarted, the backend was terminated) it
// reconnects with backoff and then sends one value, since notifications sent
// meanwhile were lost. The channel holds one value (wake-ups coalesce, and the
// store never waits for the reader) and is closed when ctx ends. The first
// connection is made before Listen returns: an error says the server cannot be
// reached. Closing the store stops the listener too.
func (s *Store) Listen(ctx context.Context) (<-chan struct{}, error) {
	cfg := s.pool.Config().ConnConfig.Copy()
	cfg.RuntimeParams["application_name"] = listenAppName(cfg.RuntimeParams["application_name"])
	// Waiting for a notification is ended by a deadline on the socket, not by a
	// cancel request to the server: there is no query to cancel.
	cfg.BuildContextWatcherHandler = func(c *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.DeadlineContextWatcherHandler{Conn: c.Conn()}
	}
	conn, err := listenConn(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("listen for ready steps: %w", err)
	}
	ctx, stop := context.WithCancel(ctx)
	go func() {
		select {
		case <-s.closed:
			stop()
		case <-ctx.Done():
		}
	}()
	ch := make(chan struct{}, 1)
	go func() {
		defer stop()
		listenLoop(ctx, cfg, conn, ch)
	}()
	return ch, nil
}

// listenConn connects and runs LISTEN.
func listenConn(ctx context.Context, cfg *pgx.ConnConfig) (*pgx.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if _, err := conn.Exec(ctx, "LISTEN "+notifyChannel); err != nil {
		_ = conn.Close(context.Background())
		return nil, err
	}
	return conn, nil
}

// wake sends a value on ch unless one is waiting already.
func wake(ch chan<- struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// listenLoop forwards notifications from conn to ch until ctx ends, reconnecting
// when the connection fails.
func listenLoop(ctx context.Context, cfg *pgx.ConnConfig, conn *pgx.Conn, ch chan<- struct{}) {
	defer close(ch)
	defer func() {
		if conn != nil {
			closeCtx, cancel := context.WithTimeout(context.Background(), time.Second)
			_ = conn.Close(closeCtx)
			cancel()
		}
	}()
	for {
		if listenUntilBroken(ctx, conn, ch) {
			return // ctx ended
		}
		_ = conn.Close(context.Background())
		conn = nil
		for backoff := listenBackoff; conn == nil; backoff = min(2*backoff, listenMaxBackoff) {
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			c, err := listenConn(ctx, cfg)
			if err == nil {
				conn = c
			}
		}
		// Notifications sent while the connection was down are lost.
		wake(ch)
	}
}

// listenUntilBroken forwards notifications until ctx ends (it returns true) or
// the connection fails (false).
func listenUntilBroken(ctx context.Context, conn *pgx.Conn, ch chan<- struct{}) bool {
	for {
		wctx, cancel := context.WithTimeout(ctx, listenCheck)
		_, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case err == nil:
			wake(ch)
			continue
		case ctx.Err() != nil:
			return true
		case errors.Is(err, context.DeadlineExceeded) && !conn.IsClosed():
			// Quiet for a while: check the connection still answers.
			pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			err = conn.Ping(pctx)
			cancel()
			if err == nil {
				continue
			}
			if ctx.Err() != nil {
				return true
			}
		}
		return false
	}
}
