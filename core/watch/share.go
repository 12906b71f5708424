package watch

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/tidewatch/tidewatch/core"
)

// Share lets the watchers of one daemon (one per Docker host) ask each
// repository once between them: a tag list, a digest or a candidate's
// creation time that one watcher asked is reused by another watcher whose
// run started at most Window after it was asked, and a watcher that asks
// while another's request is in flight waits for that answer instead of
// sending its own. So a repository used on ten hosts costs one request per
// round of runs, not ten.
//
// A watcher never reuses its own answers: each of its runs asks afresh (a
// retry pass too), so a single host gains nothing and loses nothing by a
// Share, and an answer shared is never older, at the start of the run that
// reuses it, than Window. Errors are not kept: an ask that failed is
// repeated by the next watcher that needs it (one that waited for it gets
// its error, and asks again in its own retry pass when it was transient).
//
// A Share is safe for concurrent use; give the same one to every watcher
// of the daemon (Options.Share).
type Share struct {
	window time.Duration
	now    func() time.Time

	mu      sync.Mutex
	m       map[string]*shared
	swept   time.Time
	reused  int // answers served to another watcher than the one that asked
	waiting int // watchers waiting for an ask in flight now
}

// Reused returns how many answers the Share has served to a watcher other
// than the one that asked: requests saved.
func (s *Share) Reused() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reused
}

// DefaultShareWindow is NewShare's default window: a minute, the least time
// between two full runs of one watcher (DefaultMinGap) and the default
// JITTER, so that hosts on the same schedule share their answers even when
// each run is delayed at random by up to a minute, while no answer is
// staler than one run.
const DefaultShareWindow = time.Minute

// NewShare returns a Share whose answers serve the runs that start at most
// window after they were asked (DefaultShareWindow when window <= 0).
func NewShare(window time.Duration) *Share {
	if window <= 0 {
		window = DefaultShareWindow
	}
	return &Share{window: window, now: time.Now, m: map[string]*shared{}}
}

// shared is one answer, or one ask in flight.
type shared struct {
	ready chan struct{} // closed when v and err are set
	by    string        // the watcher that asked
	at    time.Time     // when it asked
	v     any
	err   error
}

// shareCall returns the answer to key for watcher by, whose run started at
// since: another watcher's answer asked at or after since-window, waited
// for if in flight; else what fetch returns, kept for the others. Without
// a Share it is fetch.
func shareCall[T any](ctx context.Context, s *Share, key, by string, since time.Time, fetch func() (T, error)) (T, error) {
	var zero T
	if s == nil {
		return fetch()
	}
	s.mu.Lock()
	now := s.now()
	s.sweep(now)
	e := s.m[key]
	if e != nil && e.by != by && !e.at.Before(since.Add(-s.window)) && !(isDone(e) && e.err != nil) {
		s.waiting++
		s.mu.Unlock()
		select {
		case <-e.ready:
		case <-ctx.Done():
			s.mu.Lock()
			s.waiting--
			s.mu.Unlock()
			return zero, ctx.Err()
		}
		s.mu.Lock()
		s.waiting--
		if e.err == nil {
			s.reused++
		}
		s.mu.Unlock()
		if e.err == nil {
			return e.v.(T), nil
		}
		if !errors.Is(e.err, context.Canceled) && !errors.Is(e.err, context.DeadlineExceeded) {
			return zero, e.err // what the registry answered, as fresh as our own ask
		}
		// The other run ended before its answer came: ask for ourselves.
		s.mu.Lock()
		now = s.now()
	}
	e = &shared{ready: make(chan struct{}), by: by, at: now}
	s.m[key] = e
	s.mu.Unlock()
	v, err := fetch()
	e.v, e.err = v, err
	close(e.ready)
	return v, err
}

// sweep drops the answers no run may reuse any more, once per window; s.mu is held.
func (s *Share) sweep(now time.Time) {
	if now.Sub(s.swept) < s.window {
		return
	}
	s.swept = now
	for k, e := range s.m {
		if isDone(e) && now.Sub(e.at) > 2*s.window {
			delete(s.m, k)
		}
	}
}

func isDone(e *shared) bool {
	select {
	case <-e.ready:
		return true
	default:
		return false
	}
}

// shareTags lists the tags of ref's repository for run r, through the Share.
func (w *Watcher) shareTags(ctx context.Context, r *run, ref core.ImageRef) ([]string, error) {
	return shareCall(ctx, w.opts.Share, "tags "+ref.Repo(), w.opts.Host, r.start, func() (tags []string, err error) {
		err = w.registry(ctx, r, func() (err error) {
			tags, err = w.reg.Tags(ctx, ref)
			return err
		})
		if err != nil && err == ctx.Err() {
			err = fmt.Errorf("listing tags of %s: %w", ref.Repo(), err)
		}
		return tags, err
	})
}

// shareDigest reads the digest of ref's tag for run r, through the Share.
func (w *Watcher) shareDigest(ctx context.Context, r *run, ref core.ImageRef) (string, error) {
	return shareCall(ctx, w.opts.Share, "digest "+ref.String(), w.opts.Host, r.start, func() (d string, err error) {
		err = w.registry(ctx, r, func() (err error) {
			d, err = w.reg.Digest(ctx, ref)
			return err
		})
		if err != nil && err == ctx.Err() {
			err = fmt.Errorf("reading digest of %s: %w", ref, err)
		}
		return d, err
	})
}
