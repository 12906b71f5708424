package rollout

import (
	"context"
	"sync"
)

// Locks are named mutexes of one process whose acquisition honours a
// context: one rollout per container (or project) at a time.
type Locks struct {
	mu sync.Mutex
	m  map[string]chan struct{}
}

// Acquire waits until key is free or ctx ends, and returns the release
// (safe to call more than once).
func (l *Locks) Acquire(ctx context.Context, key string) (release func(), err error) {
	l.mu.Lock()
	if l.m == nil {
		l.m = map[string]chan struct{}{}
	}
	ch, ok := l.m[key]
	if !ok {
		ch = make(chan struct{}, 1)
		l.m[key] = ch
	}
	l.mu.Unlock()
	select {
	case ch <- struct{}{}:
		var once sync.Once
		return func() { once.Do(func() { <-ch }) }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
