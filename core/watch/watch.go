package watch

import (
	"context"
	"errors"
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

// Engine is what the watch loop needs of a Docker host.
type Engine interface {
	List(ctx context.Context, all bool) ([]core.Container, error)
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
}

// Memo remembers, across runs and restarts, what resolving a changed digest
// answered, so that its manifest GETs are paid once per digest.
type Memo interface {
	Resolution(ctx context.Context, key string) (same, ok bool, err error)
	RememberResolution(ctx context.Context, key string, same bool) error
}

// Recorder keeps the results of runs.
type Recorder interface {
	// RecordRun keeps the checks of one run (full, or of one container) and
	// returns the open update of each check that found one, as recorded.
	RecordRun(ctx context.Context, host string, checks []core.Check, at time.Time) ([]core.Update, error)
	// MarkGone marks the host's containers not in keepIDs as gone, after a full run.
	MarkGone(ctx context.Context, host string, keepIDs []string, at time.Time) error
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
	// Workers is how many repositories are checked at once. Default 64: the
	// registries client limits, and adapts, the requests in flight to each
	// registry, up to 64 for a private one.
	Workers int
	// Now returns the time; default time.Now.
	Now func() time.Time
	// Memo keeps digest resolutions beyond the Watcher's life (the store);
	// nil: they are remembered in memory only.
	Memo Memo
	// Dispatcher is handed the updates each run records; nil: none is.
	Dispatcher Dispatcher
}

// Watcher checks the containers of one Docker host.
type Watcher struct {
	opts   Options
	engine Engine
	reg    Registry
	rec    Recorder
	log    *slog.Logger

	mu       sync.Mutex
	resolved map[string]bool // repo@digest|imageID → same image, so a mismatch is resolved by GET once
	runs     sync.Mutex      // one full run at a time
}

// New returns a watcher for one host. rec may be nil (nothing is recorded).
func New(opts Options, engine Engine, reg Registry, rec Recorder, log *slog.Logger) *Watcher {
	if opts.Workers <= 0 {
		opts.Workers = 64
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Watcher{opts: opts, engine: engine, reg: reg, rec: rec, log: log.With("watcher", opts.Host), resolved: map[string]bool{}}
}

// Run checks every watched container of the host once, records the result
// and hands the updates it recorded to the Dispatcher. The error is for the
// run as a whole (the engine cannot be listed, the store or the outbox
// cannot be written); errors of single containers or repositories are in
// their Check.
func (w *Watcher) Run(ctx context.Context) ([]core.Check, error) {
	w.runs.Lock()
	defer w.runs.Unlock()
	start := w.opts.Now()
	ctrs, err := w.engine.List(ctx, w.opts.WatchAll)
	if err != nil {
		return nil, fmt.Errorf("watching %s: %w", w.opts.Host, err)
	}
	checks := w.Check(ctx, w.selectWatched(ctrs))
	w.log.Info("run done", "containers", len(ctrs), "watched", len(checks), "updates", countUpdates(checks), "duration_ms", time.Since(start).Milliseconds())
	updates, err := w.record(ctx, checks)
	if err != nil {
		return checks, err
	}
	if w.rec != nil && ctx.Err() == nil {
		keep := make([]string, len(checks))
		for i, c := range checks {
			keep[i] = c.Container.ID
		}
		if err := w.rec.MarkGone(ctx, w.opts.Host, keep, w.opts.Now().UTC()); err != nil {
			return checks, fmt.Errorf("recording gone containers of %s: %w", w.opts.Host, err)
		}
	}
	return checks, w.dispatch(ctx, start, updates)
}

// RunContainer checks one container by ID, if it is watched, records it and
// hands its update, if any, to the Dispatcher. It returns ok=false when the
// container is not watched.
func (w *Watcher) RunContainer(ctx context.Context, id string) (core.Check, bool, error) {
	ctr, err := w.engine.Inspect(ctx, id)
	if err != nil {
		return core.Check{}, false, fmt.Errorf("watching container %s on %s: %w", id, w.opts.Host, err)
	}
	if len(w.selectWatched([]core.Container{ctr})) == 0 {
		return core.Check{}, false, nil
	}
	start := w.opts.Now()
	checks := w.Check(ctx, []core.Container{ctr})
	updates, err := w.record(ctx, checks)
	if err != nil {
		return checks[0], true, err
	}
	return checks[0], true, w.dispatch(ctx, start, updates)
}

// record keeps the checks and returns the updates they recorded.
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
	var out []core.Container
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
	ctr    core.Container
	ref    core.ImageRef
	policy policy.Policy
	tags   bool // needs the tag list
	digest bool // needs the digest of its running tag
	check  core.Check
	done   bool // decided without the registry (an error, a pinned digest)
}

// need is what the containers of one repository need from it in a run.
type need struct {
	ref  core.ImageRef
	tags bool            // the tag list
	tagz map[string]bool // the digests of these tags
}

// repoAnswers is what a repository answered in this run.
type repoAnswers struct {
	asked     bool // the tag list was asked for
	tags      []string
	tagsErr   error
	digests   map[string]string
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

// ask fills a with what n needs from its repository: everything the first
// time, then only what failed transiently.
func (w *Watcher) ask(ctx context.Context, n *need, a *repoAnswers) {
	if n.tags && (!a.asked || errors.Is(a.tagsErr, core.ErrUnavailable)) {
		a.tags, a.tagsErr = w.reg.Tags(ctx, n.ref)
		a.asked = true
	}
	for _, t := range sortedKeys(n.tagz) {
		if _, ok := a.digests[t]; ok && !errors.Is(a.digestErr[t], core.ErrUnavailable) {
			continue
		}
		d, err := w.reg.Digest(ctx, n.ref.WithTag(t))
		a.digests[t], a.digestErr[t] = d, err
	}
}

// each calls do for every repository, Workers at a time, until ctx ends.
func (w *Watcher) each(ctx context.Context, repos []string, do func(repo string)) {
	work := make(chan string)
	var wg sync.WaitGroup
	for range min(w.opts.Workers, max(len(repos), 1)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range work {
				do(r)
			}
		}()
	}
	for _, r := range repos {
		select {
		case work <- r:
		case <-ctx.Done():
		}
	}
	close(work)
	wg.Wait()
}

// Check checks the given containers, asking each repository once, and returns
// one Check per container in the same order. It records nothing.
func (w *Watcher) Check(ctx context.Context, ctrs []core.Container) []core.Check {
	plans := make([]*plan, len(ctrs))
	needs := map[string]*need{}
	for i, c := range ctrs {
		p := w.plan(c)
		plans[i] = p
		if p.done {
			continue
		}
		n := needs[p.ref.Repo()]
		if n == nil {
			n = &need{ref: p.ref, tagz: map[string]bool{}}
			needs[p.ref.Repo()] = n
		}
		n.tags = n.tags || p.tags
		if p.digest {
			n.tagz[p.ref.Tag] = true
		}
	}

	repos := make([]string, 0, len(needs))
	refs := make([]core.ImageRef, 0, len(needs))
	for r := range needs {
		repos = append(repos, r)
	}
	sort.Strings(repos)
	for _, r := range repos {
		refs = append(refs, needs[r].ref)
	}
	w.reg.Prepare(refs)

	answers := make(map[string]*repoAnswers, len(needs))
	var amu sync.Mutex
	w.each(ctx, repos, func(r string) {
		a := &repoAnswers{digests: map[string]string{}, digestErr: map[string]error{}}
		w.ask(ctx, needs[r], a)
		amu.Lock()
		answers[r] = a
		amu.Unlock()
	})
	// One more pass, at the run's end and within its deadline, for the
	// repositories that a registry failed with a transient error (5xx,
	// timeouts, resets) after all their retries: the registry has had time
	// to recover. Rate-limited ones are not asked again: they have waited
	// all the registry allowed.
	var again []string
	var againRefs []core.ImageRef
	for _, r := range repos {
		if a := answers[r]; a != nil && a.transient() {
			again = append(again, r)
			againRefs = append(againRefs, needs[r].ref)
		}
	}
	if len(again) > 0 && ctx.Err() == nil {
		w.log.Info("asking again the repositories that failed", "repos", len(again))
		w.reg.Prepare(againRefs)
		w.each(ctx, again, func(r string) { w.ask(ctx, needs[r], answers[r]) })
	}

	out := make([]core.Check, len(plans))
	for i, p := range plans {
		if !p.done {
			a := answers[p.ref.Repo()]
			if a == nil {
				p.check.Err = fmt.Errorf("checking %s: %w", p.ref.Repo(), ctx.Err())
			} else {
				w.decide(ctx, p, a)
			}
		}
		p.check.CheckedAt = w.opts.Now().UTC()
		if p.check.Err != nil {
			// Shown with the container by the caller; logged here for debugging only.
			w.log.Debug("check failed", "container", p.ctr.Name, "image", p.ctr.Image, "error", p.check.Err)
		}
		out[i] = p.check
	}
	return out
}

func (w *Watcher) plan(c core.Container) *plan {
	p := &plan{ctr: c, check: core.Check{Container: c}}
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
	p.ref, p.policy = ref, pol
	p.check.Ref = ref
	p.check.Current = ref.Tag
	local := core.RepoDigestsFor(c.RepoDigests, ref.Repo())
	if len(local) > 0 {
		p.check.CurrentDigest = local[0]
	}
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
	if len(c.RepoDigests) == 0 && !p.tags {
		// Never pulled nor pushed (a compose build:, docker load): no
		// registry knows it, so there is no digest to compare with.
		p.check.Note = "built locally (the image has no registry digest): not watched"
		p.done = true
		return p
	}
	if !p.tags && !p.digest {
		p.check.Note = "not a version and digest watching is off"
		p.done = true
	}
	return p
}

// decide sets the candidate of p from what its repository answered.
func (w *Watcher) decide(ctx context.Context, p *plan, a *repoAnswers) {
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
	local := core.RepoDigestsFor(p.ctr.RepoDigests, p.ref.Repo())
	if len(local) == 0 && p.ctr.ImageID == "" {
		p.check.Note = "the running image has no digest from this repository: digest not compared"
		return
	}
	for _, d := range local {
		if d == remote {
			return
		}
	}
	same, err := w.sameImage(ctx, p, remote, local)
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
// manifest is fetched once per changed digest, not on every run.
func (w *Watcher) sameImage(ctx context.Context, p *plan, remote string, local []string) (bool, error) {
	key := p.ref.Repo() + "@" + remote + "|" + p.ctr.ImageID + "|" + p.ctr.Platform.String() + "|" + strings.Join(local, ",")
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
	same, err := w.reg.Resolve(ctx, p.ref, remote, local, p.ctr.ImageID, p.ctr.Platform)
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
