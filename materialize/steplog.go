package materialize

import (
	"context"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/hashicorp/go-hclog"

	"github.com/freshetdev/freshet/store"
)

// stepLogBatch is how many lines make a write to the store before the flush timer
// fires: a chatty step costs a write per few hundred lines, not one per line.
const stepLogBatch = 500

// stepLog collects one attempt's log lines and writes them to the store in
// batches, every DefaultLogFlush or stepLogBatch lines, so that `freshet logs
// --follow` sees them while the step runs.
type stepLog struct {
	store   store.Queue
	step    uuid.UUID
	attempt int
	cap     int64
	logger  hclog.Logger

	mu      sync.Mutex
	pending []store.LogLine
	full    chan struct{}
	// stop asks the flusher to end, writing what is left (true) or not (false);
	// stopped is closed when it has ended, after any write in progress.
	stop     chan bool
	stopOnce sync.Once
	stopped  chan struct{}
}

func newStepLog(q store.Queue, step uuid.UUID, attempt int, maxBytes int64, logger hclog.Logger) *stepLog {
	l := &stepLog{store: q, step: step, attempt: attempt, cap: maxBytes, logger: logger,
		full: make(chan struct{}, 1), stop: make(chan bool, 1), stopped: make(chan struct{})}
	go l.loop()
	return l
}

// Line implements LogSink.
func (l *stepLog) Line(stream store.LogStream, text string) {
	l.mu.Lock()
	l.pending = append(l.pending, store.LogLine{Attempt: l.attempt, Stream: stream, At: time.Now(), Text: text})
	n := len(l.pending)
	l.mu.Unlock()
	if n >= stepLogBatch {
		select {
		case l.full <- struct{}{}:
		default:
		}
	}
}

func (l *stepLog) loop() {
	defer close(l.stopped)
	tick := time.NewTicker(DefaultLogFlush)
	defer tick.Stop()
	for {
		select {
		case flushRest := <-l.stop:
			if flushRest {
				l.flush()
			}
			return
		case <-tick.C:
		case <-l.full:
		}
		l.flush()
	}
}

func (l *stepLog) flush() {
	l.mu.Lock()
	lines := l.pending
	l.pending = nil
	l.mu.Unlock()
	if len(lines) == 0 {
		return
	}
	// The log outlives a canceled attempt: its last lines say why it stopped.
	ctx, cancel := context.WithTimeout(context.Background(), stopReportBudget)
	defer cancel()
	if err := l.store.AppendStepLog(ctx, l.step, lines, l.cap); err != nil {
		l.logger.Warn("write step log", "step", l.step, "lines", len(lines), "error", err)
	}
}

// close writes what is left and stops the flusher.
func (l *stepLog) close() {
	l.stopOnce.Do(func() { l.stop <- true })
	<-l.stopped
}

// handOver stops the flusher without writing what is left and returns it, for
// the step's report to carry (store.StepResult.Log): the lines written so far are
// in the store, so the rest follow them, and a short step's whole log costs no
// write of its own. Lines logged afterwards are dropped.
func (l *stepLog) handOver() []store.LogLine {
	l.stopOnce.Do(func() { l.stop <- false })
	<-l.stopped
	l.mu.Lock()
	defer l.mu.Unlock()
	lines := l.pending
	l.pending = nil
	return lines
}
