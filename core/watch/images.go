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
	workers chan struct{}
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
	return &images{engine: engine, workers: make(chan struct{}, workers), ttl: ttl, now: now, m: map[string]*imageEntry{}}
}

// source returns the image source of run r: each image is read once, by
// the first container that needs it (or at once by start), and timed in
// r's inspect phase.
func (c *images) source(r *run) imageSource { return runImages{c: c, r: r} }

// runImages is the image source of one run.
type runImages struct {
	c *images
	r *run
}

// start begins reading the images of ctrs that are not known, without
// waiting.
func (s runImages) start(ctx context.Context, ctrs []core.Container) {
	for _, ctr := range ctrs {
		s.c.entry(ctx, s.r, ctr.ImageID)
	}
}

// get returns the image of ctr, waiting for it to be read.
func (s runImages) get(ctx context.Context, ctr core.Container) (core.LocalImage, error) {
	e := s.c.entry(ctx, s.r, ctr.ImageID)
	if e == nil {
		return core.LocalImage{}, nil
	}
	select {
	case <-e.ready:
		return e.img, e.err
	case <-ctx.Done():
		return core.LocalImage{}, ctx.Err()
	}
}

// entry returns the entry of image id, starting to inspect it unless a
// fresh answer is kept or being read; nil for no image.
func (c *images) entry(ctx context.Context, r *run, id string) *imageEntry {
	if id == "" {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[id]
	if ok && isReady(e) && (e.err != nil || c.now().Sub(e.at) >= c.ttl) {
		ok = false // stale or failed: read it again
	}
	if !ok {
		e = &imageEntry{ready: make(chan struct{})}
		c.m[id] = e
		go c.inspect(ctx, r, id, e)
	}
	e.run = r.id
	return e
}

// inspect reads image id into e, once a worker slot is free.
func (c *images) inspect(ctx context.Context, r *run, id string, e *imageEntry) {
	defer close(e.ready)
	select {
	case c.workers <- struct{}{}:
	case <-ctx.Done():
		e.err = ctx.Err()
		return
	}
	defer func() { <-c.workers }()
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
