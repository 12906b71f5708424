package swarm

import (
	"context"
	"sync"
)

// serviceLocks allow one rollout per service at a time in this process (a
// trigger instance's process serves all its rollouts).
var serviceLocks = &locks{m: map[string]chan struct{}{}}

// locks are named mutexes whose acquisition honours a context.
type locks struct {
	mu sync.Mutex
	m  map[string]chan struct{}
}

// acquire waits until key is free or ctx ends, and returns the release.
func (l *locks) acquire(ctx context.Context, key string) (release func(), err error) {
	l.mu.Lock()
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
