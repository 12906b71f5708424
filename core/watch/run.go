package watch

import (
	"context"
	"errors"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tidewatch/tidewatch/core"
)

// run is the state of one run (full, or of one container) beside its checks:
// when it began, where its time goes, and the slots its registry requests
// take.
type run struct {
	id     uint64
	start  time.Time
	phases *phaseClock
	slots  chan struct{} // Options.Workers registry requests at once
}

var runIDs atomic.Uint64

func (w *Watcher) newRun() *run {
	start := w.opts.Now()
	return &run{id: runIDs.Add(1), start: start, phases: newPhaseClock(start), slots: make(chan struct{}, w.opts.Workers)}
}

// registry makes one registry call: it waits for one of the run's slots
// and times the call in the registry phase. It returns ctx's error when ctx
// ends while it waits.
func (w *Watcher) registry(ctx context.Context, r *run, call func() error) error {
	select {
	case r.slots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-r.slots }()
	return r.phases.registry.time(w.opts.Now, call)
}

// group is one repository of a run: the plans of its containers, and what
// it answered.
type group struct {
	ref   core.ImageRef
	plans []*plan
	tags  bool // a plan needs the tag list
	ans   repoAnswers
	cand  map[string]answer // the digests of candidate tags, for their age; made when needed
}

// repoAnswers is what a repository answered in this run.
type repoAnswers struct {
	asked     bool // the tag list was asked for
	tags      []string
	tagsErr   error
	digests   map[string]string // made when a digest is asked
	digestErr map[string]error
}

// transient reports whether the repository failed to answer something for
// a reason that may pass: the registry was unavailable (5xx, timeouts,
// resets).
func (a *repoAnswers) transient() bool {
	if errors.Is(a.tagsErr, core.ErrUnavailable) {
		return true
	}
	for _, err := range a.digestErr {
		if errors.Is(err, core.ErrUnavailable) {
			return true
		}
	}
	return false
}

// imageSource reads the images of a run's containers; nil when the
// containers carry their images already.
type imageSource interface {
	// start begins reading the images of these IDs, without waiting.
	start(ctx context.Context, ids []string)
	// get returns the image of c, waiting for it to be read.
	get(ctx context.Context, c core.Container) (core.LocalImage, error)
}

// check checks ctrs and returns one Check per container in the same order.
// The repositories are handed, as soon as the list names them, to
// Options.Workers goroutines; each asks its repository once: first its tag
// list (the only thing a container's name is enough to know it needs),
// then, once the images of its containers are read (from images, beside
// the registry requests; nil: the containers carry them), the digests that
// those need; then its containers are decided at once. A repository that a
// registry failed with a transient error is asked once more at the run's
// end.
func (w *Watcher) check(ctx context.Context, r *run, ctrs []core.Container, images imageSource) []core.Check {
	out := make([]core.Check, len(ctrs)) // the plans fill them in
	plans := make([]*plan, len(ctrs))
	groups := map[string]*group{}
	var repos []string
	for i, c := range ctrs {
		p := w.plan(c, &out[i])
		plans[i] = p
		if p.done {
			continue
		}
		g := groups[p.ref.Repo()]
		if g == nil {
			g = &group{ref: p.ref}
			groups[p.ref.Repo()] = g
			repos = append(repos, p.ref.Repo())
		}
		g.plans = append(g.plans, p)
		g.tags = g.tags || p.tags
	}
	sort.Strings(repos)
	refs := make([]core.ImageRef, len(repos))
	for i, repo := range repos {
		refs[i] = groups[repo].ref
	}
	w.reg.Prepare(refs)

	image := func(p *plan) {
		if images == nil {
			p.finish(core.LocalImage{RepoDigests: p.check.Container.RepoDigests, Platform: p.check.Container.Platform}, nil)
			return
		}
		p.finish(images.get(ctx, p.check.Container))
	}
	if images != nil {
		// Beside the registry requests that follow, in the order the
		// repositories are handed out, so that each repository's images are
		// read by the time its tag list is in.
		order := make([]string, 0, len(ctrs))
		for _, repo := range repos {
			for _, p := range groups[repo].plans {
				order = append(order, p.check.Container.ImageID)
			}
		}
		for _, p := range plans {
			if p.done {
				order = append(order, p.check.Container.ImageID)
			}
		}
		images.start(ctx, order)
	}
	var alone []*plan // decided without the registry: read before any goroutine may change a plan
	for _, p := range plans {
		if p.done {
			alone = append(alone, p)
		}
	}
	w.each(repos, func(repo string) {
		g := groups[repo]
		if g.tags {
			w.askTags(ctx, r, g)
		}
		for _, p := range g.plans {
			image(p)
		}
		w.askDigests(ctx, r, g)
		if !g.ans.transient() {
			w.decideGroup(ctx, r, g)
		}
	}, func() {
		// The containers the registry has nothing to say about still show
		// their image's digests.
		for _, p := range alone {
			image(p)
		}
	})

	// One more pass, at the run's end and within its deadline, for the
	// repositories that a registry failed with a transient error (5xx,
	// timeouts, resets) after all their retries: the registry has had time
	// to recover. Rate-limited ones are not asked again: they have waited
	// all the registry allowed.
	var again []*group
	var againRefs []core.ImageRef
	for _, repo := range repos {
		if g := groups[repo]; g.ans.transient() {
			again = append(again, g)
			againRefs = append(againRefs, g.ref)
		}
	}
	if len(again) > 0 {
		if ctx.Err() == nil {
			w.log.Info("asking again the repositories that failed", "repos", len(again))
			w.reg.Prepare(againRefs)
		}
		var names []string
		for _, g := range again {
			names = append(names, g.ref.Repo())
		}
		w.each(names, func(repo string) {
			g := groups[repo]
			if ctx.Err() == nil {
				w.askTags(ctx, r, g)
				w.askDigests(ctx, r, g)
			}
			w.decideGroup(ctx, r, g)
		}, nil)
	}

	for _, p := range plans {
		if p.check.CheckedAt.IsZero() {
			p.check.CheckedAt = w.opts.Now().UTC()
		}
		if p.check.Err != nil {
			// Shown with the container by the caller; logged here for debugging only.
			w.log.Debug("check failed", "container", p.check.Container.Name, "image", p.check.Container.Image, "error", p.check.Err)
		}
	}
	return out
}

// each calls do for every repository, Options.Workers at a time, and then
// (when not nil) while in the main goroutine once every repository is
// handed out, and returns when all are done. A goroutine per worker, not per
// repository: ten hosts of a thousand repositories would otherwise hold ten
// thousand goroutine stacks, grown deep by HTTP calls, at once.
func (w *Watcher) each(repos []string, do func(repo string), then func()) {
	work := make(chan string)
	var wg sync.WaitGroup
	for range min(w.opts.Workers, len(repos)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for repo := range work {
				do(repo)
			}
		}()
	}
	for _, repo := range repos {
		work <- repo
	}
	close(work)
	if then != nil {
		then()
	}
	wg.Wait()
}

// askTags asks g's tag list, unless it was answered already, or failed for
// a reason that will not pass this run.
func (w *Watcher) askTags(ctx context.Context, r *run, g *group) {
	a := &g.ans
	if !g.tags || (a.asked && !errors.Is(a.tagsErr, core.ErrUnavailable)) {
		return
	}
	a.tags, a.tagsErr = w.shareTags(ctx, r, g.ref)
	a.asked = true
}

// askDigests asks the digests of the running tags that g's plans watch,
// those not answered yet or failed transiently.
func (w *Watcher) askDigests(ctx context.Context, r *run, g *group) {
	want := map[string]bool{}
	for _, p := range g.plans {
		if !p.done && p.digest {
			want[p.ref.Tag] = true
		}
	}
	for _, t := range sortedKeys(want) {
		w.askDigest(ctx, r, g, t)
	}
}

// askDigest asks the digest of tag in g's repository, unless it was
// answered already or failed for a reason that will not pass this run.
func (w *Watcher) askDigest(ctx context.Context, r *run, g *group, tag string) {
	a := &g.ans
	if _, ok := a.digests[tag]; ok && !errors.Is(a.digestErr[tag], core.ErrUnavailable) {
		return
	}
	if a.digests == nil {
		a.digests, a.digestErr = map[string]string{}, map[string]error{}
	}
	a.digests[tag], a.digestErr[tag] = w.shareDigest(ctx, r, g.ref.WithTag(tag))
}

// decideGroup decides each of g's containers from what the repository
// answered, then reads the age of the candidates that a cooldown needs.
func (w *Watcher) decideGroup(ctx context.Context, r *run, g *group) {
	for _, p := range g.plans {
		if p.done {
			continue
		}
		r.phases.selection.time(w.opts.Now, func() error {
			w.decide(ctx, r, p, &g.ans)
			return nil
		})
		if p.check.HasUpdate() {
			w.readAge(ctx, r, g, p)
		}
		p.check.CheckedAt = w.opts.Now().UTC()
	}
}
