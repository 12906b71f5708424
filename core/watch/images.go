package watch

import (
	"context"
	"sync"
	"time"

	"github.com/tidewatch/tidewatch/core"
)

// images keeps what the engine said of each image a run needed, by image
// ID: the first run that needs an image inspects it (at most workers at
// once), the runs after it reuse the answer for ttl. An image no full run
// needed last time is forgotten; a failed inspect is not kept.
type images struct {
	engine  Engine
	workers int
	ttl     time.Duration
	now     func() time.Time

	mu sync.Mutex
	m  map[string]*imageEntry
}

type imageEntry struct {
	ready chan struct{} // closed once img and err are set
	img   core.LocalImage
	err   error
	at    time.Time // when it was read
	run   uint64    // the last run that needed it
}

func newImages(engine Engine, workers int, ttl time.Duration, now func() time.Time) *images {
	return &images{engine: engine, workers: workers, ttl: ttl, now: now, m: map[string]*imageEntry{}}
}

// source returns the image source of run r: each image is read once,
// timed in r's inspect phase.
func (c *images) source(r *run) imageSource { return runImages{c: c, r: r} }

// runImages is the image source of one run.
type runImages struct {
	c *images
	r *run
}

// start begins reading, in their order, the images of ids that are not
// known, workers at a time, without waiting.
func (s runImages) start(ctx context.Context, ids []string) {
	type job struct {
		id string
		e  *imageEntry
	}
	var todo []job
	s.c.mu.Lock()
	for _, id := range ids {
		if e, fresh := s.c.entry(s.r, id); e != nil && fresh {
			todo = append(todo, job{id, e})
		}
	}
	s.c.mu.Unlock()
	if len(todo) == 0 {
		return
	}
	work := make(chan job)
	for range min(s.c.workers, len(todo)) {
		go func() {
			for j := range work {
				s.c.inspect(ctx, s.r, j.id, j.e)
			}
		}()
	}
	go func() {
		for _, j := range todo {
			work <- j
		}
		close(work)
	}()
}

// get returns the image of ctr, waiting for it to be read (and reading it
// itself when start did not).
func (s runImages) get(ctx context.Context, ctr core.Container) (core.LocalImage, error) {
	s.c.mu.Lock()
	e, fresh := s.c.entry(s.r, ctr.ImageID)
	s.c.mu.Unlock()
	if e == nil {
		return core.LocalImage{}, nil
	}
	if fresh {
		s.c.inspect(ctx, s.r, ctr.ImageID, e)
	}
	select {
	case <-e.ready:
		return e.img, e.err
	case <-ctx.Done():
		return core.LocalImage{}, ctx.Err()
	}
}

// entry returns the entry of image id for run r, and whether it is new
// (the caller then reads it); nil for no image. c.mu is held.
func (c *images) entry(r *run, id string) (e *imageEntry, fresh bool) {
	if id == "" {
		return nil, false
	}
	e, ok := c.m[id]
	if ok && isReady(e) && (e.err != nil || c.now().Sub(e.at) >= c.ttl) {
		ok = false // stale or failed: read it again
	}
	if !ok {
		e = &imageEntry{ready: make(chan struct{})}
		c.m[id] = e
	}
	e.run = r.id
	return e, !ok
}

// inspect reads image id into e.
func (c *images) inspect(ctx context.Context, r *run, id string, e *imageEntry) {
	defer close(e.ready)
	e.err = r.phases.inspect.time(c.now, func() (err error) {
		e.img, err = c.engine.Image(ctx, id)
		return err
	})
	e.at = c.now()
}

// put keeps what an inspect made elsewhere (a container's Inspect) said of image id.
func (c *images) put(id string, img core.LocalImage) {
	if id == "" {
		return
	}
	e := &imageEntry{ready: make(chan struct{}), img: img, at: c.now()}
	close(e.ready)
	c.mu.Lock()
	if old, ok := c.m[id]; ok {
		e.run = old.run
	}
	c.m[id] = e
	c.mu.Unlock()
}

// prune forgets the images that full run run did not need, and the failed ones.
func (c *images) prune(run uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, e := range c.m {
		if e.run != run || (isReady(e) && e.err != nil) {
			delete(c.m, id)
		}
	}
}

func isReady(e *imageEntry) bool {
	select {
	case <-e.ready:
		return true
	default:
		return false
	}
}
