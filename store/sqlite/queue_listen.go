package sqlite

import (
	"context"
)

// Listen returns a channel that receives a value whenever steps may have become
// ready in this store. A SQLite store serves one process, so the wake-ups are an
// in-process broadcast to every listener of the same *Store; the channel holds
// one value, a send never blocks (wake-ups coalesce), and the channel is closed
// when ctx ends or the store is closed.
func (s *Store) Listen(ctx context.Context) (<-chan struct{}, error) {
	ch := make(chan struct{}, 1)
	s.listenMu.Lock()
	if s.listeners == nil {
		s.listeners = make(map[chan struct{}]struct{})
	}
	s.listeners[ch] = struct{}{}
	s.listenMu.Unlock()
	go func() {
		select {
		case <-ctx.Done():
		case <-s.closed:
		}
		s.dropListener(ch)
	}()
	return ch, nil
}

// dropListener closes ch unless Close did already.
func (s *Store) dropListener(ch chan struct{}) {
	s.listenMu.Lock()
	defer s.listenMu.Unlock()
	if _, ok := s.listeners[ch]; ok {
		delete(s.listeners, ch)
		close(ch)
	}
}

// closeListeners closes every listener's channel, at Close.
func (s *Store) closeListeners() {
	s.closeOnce.Do(func() { close(s.closed) })
	s.listenMu.Lock()
	defer s.listenMu.Unlock()
	for ch := range s.listeners {
		delete(s.listeners, ch)
		close(ch)
	}
}

// notify wakes every listener, after a commit that made steps ready. Channels
// are sent to and closed under listenMu, so a send never hits a closed channel.
func (s *Store) notify() {
	s.listenMu.Lock()
	defer s.listenMu.Unlock()
	for ch := range s.listeners {
		select {
		case ch <- struct{}{}:
		default: // a wake-up is pending already
		}
	}
}
