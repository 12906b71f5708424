package watch

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tidewatch/tidewatch/core"
	"github.com/tidewatch/tidewatch/core/policy"
)

// Engine is what the watch loop needs of a Docker host (*docker.Client).
type Engine interface {
	// Containers lists the host's containers, running ones or all, without
	// inspecting their images: RepoDigests and Platform are left to Image.
	Containers(ctx context.Context, all bool) ([]core.Container, error)
	// Image returns the RepoDigests and platform of the image with this ID;
	// nothing, without error, for an image the engine no longer has.
	Image(ctx context.Context, id string) (core.LocalImage, error)
	// Inspect returns one container by ID, its image's RepoDigests and
	// platform included; an error wrapping core.ErrNotFound when it is gone.
	Inspect(ctx context.Context, id string) (core.Container, error)
	// Events streams container events, replaying those since the given time
	// (when not zero) that the engine still holds.
	Events(ctx context.Context, since time.Time) (<-chan core.EngineEvent, <-chan error)
	Ping(ctx context.Context) error
}

// Registry is what the watch loop needs of the registries.
type Registry interface {
	// Prepare declares the repositories a run (or its last pass) will ask,
	// before it asks them.
	Prepare(repos []core.ImageRef)
	// Tags lists every tag of ref's repository.
	Tags(ctx context.Context, ref core.ImageRef) ([]string, error)
	// Digest returns the manifest digest of ref's tag, by HEAD.
	Digest(ctx context.Context, ref core.ImageRef) (string, error)
	// Resolve tells whether the manifest at digest (an index or an image) is
	// the image that runs: known locally under one of local digests, or with
	// image ID imageID on platform.
	Resolve(ctx context.Context, ref core.ImageRef, digest string, local []string, imageID string, platform core.Platform) (bool, error)
	// Created returns when the image at ref's digest was created, from its
	// config (of platform's child, for an index). It GETs manifests, which
	// Docker Hub counts as a pull: the watcher asks it once per candidate
	// digest, under a cooldown only.
	Created(ctx context.Context, ref core.ImageRef, platform core.Platform) (time.Time, error)
}

// Memo remembers, across runs and restarts, what registries answered that
// cost manifest GETs: resolutions of changed digests, and the creation
// times of candidates.
type Memo interface {
	Resolution(ctx context.Context, key string) (same, ok bool, err error)
	RememberResolution(ctx context.Context, key string, same bool) error
	// ImageCreated returns the creation time remembered under key
	// (repository@digest|platform); a zero time remembered means the
	// config held no usable one.
	ImageCreated(ctx context.Context, key string) (created time.Time, ok bool, err error)
	RememberImageCreated(ctx context.Context, key string, created time.Time) error
}

// Recorder keeps the results of runs.
type Recorder interface {
	// RecordRun keeps the checks of one container's run and returns the
	// open update of each check that found one, as recorded.
	RecordRun(ctx context.Context, host string, checks []core.Check, at time.Time) ([]core.Update, error)
	// RecordFullRun is RecordRun for a full run of the host, which also
	// marks as gone the host's containers that are not among checks, in
	// the same transaction.
	RecordFullRun(ctx context.Context, host string, checks []core.Check, at time.Time) ([]core.Update, error)
}

// Dispatcher takes the updates a run recorded, for the triggers
// (*triggers.Dispatcher).
type Dispatcher interface {
	// Notify enqueues the deliveries of the updates that run runID recorded.
	Notify(ctx context.Context, runID string, updates []core.Update) error
}

// Options tune one watcher.
type Options struct {
	// Host is the watcher's name, recorded on every container.
	Host string
	// WatchByDefault watches containers without a tidewatch.watch label. Default false
	// in the zero value; config sets true unless TIDEWATCH_WATCHER_<name>_WATCHBYDEFAULT=false.
	WatchByDefault bool
	// WatchAll lists stopped containers too.
	WatchAll bool
	// Workers is how many registry requests a run has under way at once.
	// Default 64: the registries client limits, and adapts, the requests in
	// flight to each registry, up to 64 for a private one.
	Workers int
	// InspectWorkers is how many images a run inspects at once on the
	// engine, beside its registry requests. Default 8.
	InspectWorkers int
	// ImageTTL is how long what an image inspect said (RepoDigests,
	// platform) is reused by later runs, by image ID, before the image is
	// inspected again. Default DefaultImageTTL; an event-driven check of a
	// container always reads its image afresh.
	ImageTTL time.Duration
	// Now returns the time; default time.Now.
	Now func() time.Time
	// Memo keeps digest resolutions and candidates' creation times beyond
	// the Watcher's life (the store); nil: they are remembered in memory only.
	Memo Memo
	// Dispatcher is handed the updates each run records; nil: none is.
	Dispatcher Dispatcher
	// Share, when set, lets the watchers that hold the same Share (the
	// hosts of one daemon) ask each repository once between them when
	// their runs come close together; see Share. Nil: every run asks for
	// itself, as a single host needs.
	Share *Share
	// ReadCreated reads the creation time of every candidate, for the
	// triggers' MIN_AGE; without it, only the candidates of containers with
	// a tidewatch.update.min-age label are read (a trigger's MIN_AGE then
	// counts from when tidewatch first saw the candidate, which is never
	// sooner). Default false.
	ReadCreated bool
	// OnPhases, when set, is called at the end of every full run with
	// where its time went (for metrics).
	OnPhases func(Phases)
}

// DefaultImageTTL is Options.ImageTTL's default: an image's RepoDigests
// only grow (a push or pull under another name), and the watcher copes
// with a digest it does not know locally (it resolves it once), so an
// hour-old answer is safe and saves an inspect per image per run.
const DefaultImageTTL = time.Hour

// Watcher checks the containers of one Docker host.
type Watcher struct {
	opts   Options
	engine Engine
	reg    Registry
	rec    Recorder
	log    *slog.Logger
	images *images

	mu       sync.Mutex
	resolved map[string]bool         // repo@digest|imageID → same image, so a mismatch is resolved by GET once
	created  map[string]createdEntry // repo@digest|platform → creation time, read once per candidate
	runs     sync.Mutex              // one full run at a time
}

// New returns a watcher for one host. rec may be nil (nothing is recorded).
func New(opts Options, engine Engine, reg Registry, rec Recorder, log *slog.Logger) *Watcher {
	if opts.Workers <= 0 {
		opts.Workers = 64
	}
	if opts.InspectWorkers <= 0 {
		opts.InspectWorkers = 8
	}
	if opts.ImageTTL <= 0 {
		opts.ImageTTL = DefaultImageTTL
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Watcher{
		opts: opts, engine: engine, reg: reg, rec: rec, log: log.With("watcher", opts.Host),
		images:   newImages(engine, opts.InspectWorkers, opts.ImageTTL, opts.Now),
		resolved: map[string]bool{}, created: map[string]createdEntry{},
	}
}

// Run checks every watched container of the host once, records the result
// and hands the updates it recorded to the Dispatcher. The error is for the
// run as a whole (the engine cannot be listed, the store or the outbox
// cannot be written); errors of single containers, images or repositories
// are in their Check.
//
// The work overlaps: as soon as the container list names the repositories,
// their registry requests start; the images are inspected beside them (at
// most InspectWorkers at once, each image ID once, reused by later runs for
// ImageTTL), and each repository's containers are decided as soon as its
// answers and their images are in. The checks are then recorded in one
// transaction (RecordFullRun) and the updates handed to the Dispatcher.
// Where the time went is logged with "run done" and handed to OnPhases.
func (w *Watcher) Run(ctx context.Context) ([]core.Check, error) {
	checks, _, err := w.run(ctx)
	return checks, err
}

// run is Run, which also returns where the run's time went.
func (w *Watcher) run(ctx context.Context) ([]core.Check, Phases, error) {
	w.runs.Lock()
	defer w.runs.Unlock()
	r := w.newRun()
	var ctrs []core.Container
	err := r.phases.list.time(w.opts.Now, func() (err error) {
		ctrs, err = w.engine.Containers(ctx, w.opts.WatchAll)
		return err
	})
	if err != nil {
		return nil, Phases{}, fmt.Errorf("watching %s: %w", w.opts.Host, err)
	}
	listed := len(ctrs)
	watched := w.selectWatched(ctrs)
	ctrs = nil // the watched ones are copied; the list need not live through the run
	checks := w.check(ctx, r, watched, w.images.source(r))
	w.images.prune(r.id)
	w.pruneCreated(r.id)
	if ctx.Err() != nil {
		return checks, r.phases.done(w.opts.Now()), fmt.Errorf("watching %s: %w", w.opts.Host, ctx.Err())
	}
	var updates []core.Update
	if w.rec != nil {
		err = r.phases.store.time(w.opts.Now, func() (err error) {
			updates, err = w.rec.RecordFullRun(ctx, w.opts.Host, checks, w.opts.Now().UTC())
			return err
		})
		if err != nil {
			return checks, r.phases.done(w.opts.Now()), fmt.Errorf("recording run of %s: %w", w.opts.Host, err)
		}
	}
	err = r.phases.dispatch.time(w.opts.Now, func() error { return w.dispatch(ctx, r.start, updates) })
	ph := r.phases.done(w.opts.Now())
	w.log.Info("run done", "containers", listed, "watched", len(checks), "updates", countUpdates(checks),
		"duration_ms", ph.Total.Milliseconds(), ph.logGroup())
	if w.opts.OnPhases != nil {
		w.opts.OnPhases(ph)
	}
	return checks, ph, err
}

// RunContainer checks one container by ID, if it is watched, records it and
// hands its update, if any, to the Dispatcher. It returns ok=false when the
// container is not watched. Its image is read afresh (Inspect) and kept for
// the next full run.
func (w *Watcher) RunContainer(ctx context.Context, id string) (core.Check, bool, error) {
	ctr, err := w.engine.Inspect(ctx, id)
	if err != nil {
		return core.Check{}, false, fmt.Errorf("watching container %s on %s: %w", id, w.opts.Host, err)
	}
	if len(w.selectWatched([]core.Container{ctr})) == 0 {
		return core.Check{}, false, nil
	}
	w.images.put(ctr.ImageID, core.LocalImage{RepoDigests: ctr.RepoDigests, Platform: ctr.Platform})
	r := w.newRun()
	checks := w.check(ctx, r, w.selectWatched([]core.Container{ctr}), nil)
	updates, err := w.record(ctx, checks)
	if err != nil {
		return checks[0], true, err
	}
	return checks[0], true, w.dispatch(ctx, r.start, updates)
}

// Check checks the given containers, whose RepoDigests and Platform are
// filled, asking each repository once, and returns one Check per container
// in the same order. It records nothing.
func (w *Watcher) Check(ctx context.Context, ctrs []core.Container) []core.Check {
	return w.check(ctx, w.newRun(), ctrs, nil)
}

// record keeps the checks of a single container's run and returns the updates they recorded.
func (w *Watcher) record(ctx context.Context, checks []core.Check) ([]core.Update, error) {
	if w.rec == nil {
		return nil, nil
	}
	updates, err := w.rec.RecordRun(ctx, w.opts.Host, checks, w.opts.Now().UTC())
	if err != nil {
		return nil, fmt.Errorf("recording run of %s: %w", w.opts.Host, err)
	}
	return updates, nil
}

// dispatch hands the updates of the run that began at start to the Dispatcher.
func (w *Watcher) dispatch(ctx context.Context, start time.Time, updates []core.Update) error {
	if w.opts.Dispatcher == nil || len(updates) == 0 || ctx.Err() != nil {
		return nil
	}
	runID := fmt.Sprintf("%s-%d", w.opts.Host, start.UnixNano())
	if err := w.opts.Dispatcher.Notify(ctx, runID, updates); err != nil {
		return fmt.Errorf("handing the updates of %s to the triggers: %w", w.opts.Host, err)
	}
	return nil
}

// selectWatched keeps the containers the labels and options say to watch.
func (w *Watcher) selectWatched(ctrs []core.Container) []core.Container {
	out := make([]core.Container, 0, len(ctrs))
	for _, c := range ctrs {
		if !w.opts.WatchAll && c.State != "" && c.State != "running" {
			continue
		}
		watch := w.opts.WatchByDefault
		if v, ok := c.Labels[core.LabelWatch]; ok {
			if b, err := strconv.ParseBool(strings.TrimSpace(v)); err == nil {
				watch = b
			} else {
				watch = true // shown with its error rather than silently skipped
			}
		}
		if watch {
			c.Host = w.opts.Host
			out = append(out, c)
		}
	}
	return out
}

// plan is what one container needs from its repository.
type plan struct {
	ref    core.ImageRef
	policy policy.Policy
	tags   bool        // needs the tag list
	digest bool        // needs the digest of its running tag
	check  *core.Check // the run's result for it (its Container is the container checked)
	done   bool        // decided without the registry (an error, a pinned digest)
	named  bool        // its name parsed: its image's digests are worth reading
}

// plan reads what c needs from what its labels and image name say, into
// check; finish completes it with what its image says.
func (w *Watcher) plan(c core.Container, check *core.Check) *plan {
	*check = core.Check{Container: c}
	p := &plan{check: check}
	pol, err := policy.FromLabels(c.Labels)
	if err != nil {
		p.check.Err = fmt.Errorf("reading labels: %w", err)
		p.done = true
		return p
	}
	if v, ok := c.Labels[core.LabelWatch]; ok {
		if _, perr := strconv.ParseBool(strings.TrimSpace(v)); perr != nil {
			p.check.Err = fmt.Errorf("label %s=%q: not a boolean; expected true or false", core.LabelWatch, v)
			p.done = true
			return p
		}
	}
	if looksLikeImageID(c.Image) {
		p.check.Current = c.Image
		p.check.Note = "created from an image ID, not a name: not watched"
		p.done = true
		return p
	}
	ref, err := core.ParseImageRef(c.Image)
	if err != nil {
		p.check.Err = err
		p.done = true
		return p
	}
	p.ref, p.policy, p.named = ref, pol, true
	p.check.Ref = ref
	p.check.Current = ref.Tag
	if ref.Digest != "" {
		// Docker ignores the tag of "name:tag@digest": the digest is what runs.
		if ref.Tag == "" {
			p.check.Current = ref.Digest
		}
		p.check.Note = "pinned by digest: not watched"
		p.done = true
		return p
	}
	p.tags = pol.WatchesTags(ref.Tag)
	p.digest = pol.WatchesDigest(ref.Tag)
	if !p.tags && !p.digest {
		p.check.Note = "not a version and digest watching is off"
		p.done = true
	}
	return p
}

// finish completes p with what its image says (or why it could not be read).
func (p *plan) finish(img core.LocalImage, err error) {
	if err != nil {
		p.check.Err = fmt.Errorf("reading the image of %s: %w", p.check.Container.Name, err)
		p.done = true
		return
	}
	p.check.Container.RepoDigests, p.check.Container.Platform = img.RepoDigests, img.Platform
	if !p.named {
		return
	}
	if local := core.RepoDigestsFor(p.check.Container.RepoDigests, p.ref.Repo()); len(local) > 0 {
		p.check.CurrentDigest = local[0]
	}
	if !p.done && len(p.check.Container.RepoDigests) == 0 && !p.tags {
		// Never pulled nor pushed (a compose build:, docker load): no
		// registry knows it, so there is no digest to compare with.
		p.check.Note = "built locally (the image has no registry digest): not watched"
		p.done = true
	}
}

// decide sets the candidate of p from what its repository answered.
func (w *Watcher) decide(ctx context.Context, r *run, p *plan, a *repoAnswers) {
	if p.tags {
		if a.tagsErr != nil {
			p.check.Err = a.tagsErr
			return
		}
		sel := policy.Select(p.ref.Tag, a.tags, p.policy)
		if sel.Candidate != "" {
			p.check.Candidate, p.check.Kind = sel.Candidate, sel.Kind
			p.check.Link = w.link(p)
			return
		}
	}
	if !p.digest {
		return
	}
	remote, err := a.digests[p.ref.Tag], a.digestErr[p.ref.Tag]
	if err != nil {
		p.check.Err = err
		return
	}
	p.check.CandidateDigest = remote
	local := core.RepoDigestsFor(p.check.Container.RepoDigests, p.ref.Repo())
	if len(local) == 0 && p.check.Container.ImageID == "" {
		p.check.Note = "the running image has no digest from this repository: digest not compared"
		return
	}
	for _, d := range local {
		if d == remote {
			return
		}
	}
	same, err := w.sameImage(ctx, r, p, remote, local)
	if err != nil {
		p.check.Err = err
		return
	}
	if same {
		return
	}
	if len(local) == 0 {
		p.check.Note = "the running image has no digest from this repository: compared by image ID"
	}
	p.check.Candidate, p.check.Kind = p.ref.Tag, core.KindDigest
	p.check.Link = w.link(p)
}

// sameImage resolves a digest that differs from the local ones: the remote may
// be an index whose platform child runs here, or the same image by config
// digest. The answer for a (repository, digest, image) is remembered, so the
// manifest is fetched once per changed digest, not on every run (nor by
// every host that runs the image, through the Share).
func (w *Watcher) sameImage(ctx context.Context, r *run, p *plan, remote string, local []string) (bool, error) {
	key := p.ref.Repo() + "@" + remote + "|" + p.check.Container.ImageID + "|" + p.check.Container.Platform.String() + "|" + strings.Join(local, ",")
	w.mu.Lock()
	same, ok := w.resolved[key]
	w.mu.Unlock()
	if ok {
		return same, nil
	}
	if w.opts.Memo != nil {
		same, ok, err := w.opts.Memo.Resolution(ctx, key)
		if err != nil {
			w.log.Warn("reading a remembered digest resolution", "repo", p.ref.Repo(), "digest", remote, "error", err)
		} else if ok {
			w.remember(key, same)
			return same, nil
		}
	}
	same, err := shareCall(ctx, w.opts.Share, "resolve "+key, w.opts.Host, r.start, func() (same bool, err error) {
		err = w.registry(ctx, r, func() (err error) {
			same, err = w.reg.Resolve(ctx, p.ref, remote, local, p.check.Container.ImageID, p.check.Container.Platform)
			return err
		})
		return same, err
	})
	if err != nil {
		return false, err
	}
	w.remember(key, same)
	if w.opts.Memo != nil {
		if err := w.opts.Memo.RememberResolution(ctx, key, same); err != nil {
			w.log.Warn("keeping a digest resolution", "repo", p.ref.Repo(), "digest", remote, "error", err)
		}
	}
	return same, nil
}

func (w *Watcher) remember(key string, same bool) {
	w.mu.Lock()
	w.resolved[key] = same
	w.mu.Unlock()
}

// looksLikeImageID reports whether a container's image is an image ID
// ("sha256:…" or a bare hex ID) rather than a name.
func looksLikeImageID(s string) bool {
	s = strings.TrimPrefix(s, "sha256:")
	if len(s) != 64 && len(s) != 12 {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

func (w *Watcher) link(p *plan) string {
	if p.policy.Link == nil {
		return ""
	}
	s, err := p.policy.RenderLink(p.policy.LinkData(p.ref.Repo(), p.ref.Tag, p.check.Candidate))
	if err != nil {
		p.check.Note = joinNote(p.check.Note, fmt.Sprintf("link template: %v", err))
		return ""
	}
	return s
}

func joinNote(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

func countUpdates(cs []core.Check) int {
	n := 0
	for _, c := range cs {
		if c.HasUpdate() {
			n++
		}
	}
	return n
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
