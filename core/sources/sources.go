package sources

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/tidewatch/tidewatch/core"
	"github.com/tidewatch/tidewatch/core/gitsync"
	"github.com/tidewatch/tidewatch/core/store"
)

// History kinds of a sync (store.HistoryKinds has them).
const (
	// KindSynced: a new commit of a source was deployed.
	KindSynced = store.EventSynced
	// KindSyncFailed: a sync failed (fetch, diff) or a commit's deploy
	// failed and was rolled back; the commit is marked failed.
	KindSyncFailed = store.EventSyncFailed
)

// HistoryHost is the host of a sync's history events; their container is
// the source's name.
const HistoryHost = "git"

// Results of a sync, as Result.Outcome and the metrics name them.
const (
	// ResultInSync: the fetched commit is the one deployed.
	ResultInSync = "in-sync"
	// ResultDeployed: a new commit was deployed.
	ResultDeployed = "deployed"
	// ResultFailed: a new commit's deploy failed; the commit is marked failed.
	ResultFailed = "failed"
	// ResultSkipped: the fetched commit failed before and is not retried.
	ResultSkipped = "skipped"
	// ResultDrift: a new commit was fetched, but nothing deploys (no Deployer).
	ResultDrift = "drift"
	// ResultError: the sync itself failed (fetch, diff, checkout, state).
	ResultError = "error"
)

// Results lists every result, for metrics.
var Results = []string{ResultInSync, ResultDeployed, ResultFailed, ResultSkipped, ResultDrift, ResultError}

// Config is one source and how it is run.
type Config struct {
	// Source is the repository, branch and folder.
	Source gitsync.Source
	// Interval is how often it is fetched (> 0).
	Interval time.Duration
	// Timeout bounds one fetch (> 0).
	Timeout time.Duration
	// WebhookSecret checks its push webhooks; empty refuses them.
	WebhookSecret core.Secret
	// RemoveOrphans brings down the services a commit removes (compose's
	// --remove-orphans), only containers the source's folder deployed,
	// never volumes; false leaves them running, with a warning.
	RemoveOrphans bool
}

// Deploy is a commit to roll out.
type Deploy struct {
	// Source is the source's name.
	Source string
	// Commit is the commit deployed; Previous the one that ran before ("" at
	// the first deploy, or when the clone was made anew).
	Commit, Previous string
	// Dir is the clone's folder of the source's path, checked out at Commit:
	// the compose files are already as Commit declares them.
	Dir string
	// Files are the compose files that changed, with their services.
	Files []gitsync.FileDiff
	// Backups is a folder holding, at their paths relative to Dir, the
	// compose and .env files of the changed files' folders as they were at
	// Previous: what a rollback puts back. A file missing there did not
	// exist before. "" when what ran before is unknown (the clone was made
	// anew and no longer holds Previous): a rollback leaves the files.
	Backups string
	// RemoveOrphans is the source's: bring down the services the commit
	// removed.
	RemoveOrphans bool
}

// Services returns every service the deploy touches.
func (d Deploy) Services() []string {
	var s []string
	for _, f := range d.Files {
		s = append(s, f.Services()...)
	}
	slices.Sort(s)
	return slices.Compact(s)
}

// Deployer rolls a commit's changed services out, through the same pull,
// health gate, smoke checks and rollback as an update. On error, what ran
// before runs again (the deployer rolled back) unless the error says
// otherwise; the files in Dir may hold either version.
type Deployer interface {
	Deploy(ctx context.Context, d Deploy) error
}

// Settler is a Deployer whose deploys outlive a stop (OutboxDeployer):
// before a source deploys a commit, Settle waits for what its last deploy
// left in flight.
type Settler interface {
	Settle(ctx context.Context, source string) error
}

// Recorder writes the history (*store.Store).
type Recorder interface {
	AddEvent(ctx context.Context, e store.Event) error
}

// Status is what the API, the UI and the metrics show of a source.
type Status struct {
	// Name is the source's name; URL its repository without credentials;
	// Branch the branch followed (known after the first fetch when the
	// source names none); Path the folder of the compose files.
	Name   string `json:"name"`
	URL    string `json:"url"`
	Branch string `json:"branch"`
	Path   string `json:"path"`
	// Deployed is the commit deployed; Fetched the commit last fetched.
	Deployed string `json:"deployed"`
	Fetched  string `json:"fetched"`
	// InSync reports that the fetched commit is the one deployed.
	InSync bool `json:"in_sync"`
	// Failed is the newest commit whose deploy failed (not retried until a
	// newer one arrives), FailedReason why.
	Failed       string `json:"failed,omitempty"`
	FailedReason string `json:"failed_reason,omitempty"`
	// LastError is why the last sync failed; "" when it succeeded.
	LastError string `json:"last_error,omitempty"`
	// LastSync is when the last sync ended; zero before the first.
	LastSync time.Time `json:"last_sync,omitzero"`
	// Syncing is true while a sync runs.
	Syncing bool `json:"syncing"`
	// Interval is the time between fetches, in seconds.
	Interval float64 `json:"interval_seconds"`
	// Webhook reports that a webhook secret is configured.
	Webhook bool `json:"webhook"`
	// Syncs counts the syncs since start, by result.
	Syncs map[string]int64 `json:"syncs"`
}

// Result is what one sync did.
type Result struct {
	// Outcome is one of the Result* values.
	Outcome string
	// Commit is the commit fetched ("" when the fetch failed).
	Commit string
	// Services are the services a deploy touched.
	Services []string
	// Err is why the sync or the deploy failed.
	Err error
}

// Runner syncs the sources. Make it with New.
type Runner struct {
	byName map[string]*source
	names  []string
	state  gitsync.State
	rec    Recorder
	dep    Deployer
	log    *slog.Logger
	onSync func(source string, res Result)
}

// source is one source's clone and what its syncs found.
type source struct {
	cfg  Config
	m    *gitsync.Mirror
	wake chan struct{}
	one  sync.Mutex // one sync at a time

	mu       sync.Mutex
	fetched  string
	lastErr  string
	lastSync time.Time
	syncing  bool
	counts   map[string]int64
}

// New returns a runner of srcs, whose clones live under root/<name>.
// state keeps what each source deployed (the store); rec writes the
// history; dep deploys (nil: fetch and show drift only). It does no I/O.
func New(srcs []Config, root string, state gitsync.State, rec Recorder, dep Deployer, log *slog.Logger) (*Runner, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Runner{byName: map[string]*source{}, state: state, rec: rec, dep: dep, log: log.With("component", "git")}
	var es []error
	for _, c := range srcs {
		if c.Interval <= 0 || c.Timeout <= 0 {
			es = append(es, fmt.Errorf("source %s: interval and timeout must be positive", c.Source.Name))
			continue
		}
		m, err := gitsync.NewMirror(c.Source, root, log)
		if err != nil {
			es = append(es, err)
			continue
		}
		if _, dup := r.byName[c.Source.Name]; dup {
			es = append(es, fmt.Errorf("source %s: configured twice", c.Source.Name))
			continue
		}
		r.byName[c.Source.Name] = &source{cfg: c, m: m, wake: make(chan struct{}, 1), counts: map[string]int64{}}
		r.names = append(r.names, c.Source.Name)
	}
	slices.Sort(r.names)
	if err := errors.Join(es...); err != nil {
		return nil, err
	}
	return r, nil
}

// OnSync calls f after every sync with the source and what the sync did
// (from the source's goroutine: f must not block). Call it before Run.
func (r *Runner) OnSync(f func(source string, res Result)) { r.onSync = f }

// Names returns the sources' names, sorted.
func (r *Runner) Names() []string { return slices.Clone(r.names) }

// Run syncs every source at once, then every Interval and whenever Wake
// (a webhook) asks, until ctx ends.
func (r *Runner) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, name := range r.names {
		s := r.byName[name]
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.loop(ctx, s)
		}()
	}
	wg.Wait()
	return nil
}

func (r *Runner) loop(ctx context.Context, s *source) {
	t := time.NewTicker(s.cfg.Interval)
	defer t.Stop()
	for {
		r.sync(ctx, s)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.wake:
			t.Reset(s.cfg.Interval)
		}
	}
}

// Wake asks source name's loop to sync now; false for an unknown source.
// It does not wait.
func (r *Runner) Wake(name string) bool {
	s, ok := r.byName[name]
	if !ok {
		return false
	}
	select {
	case s.wake <- struct{}{}:
	default: // a sync is asked for already
	}
	return true
}

// Sync syncs source name now and returns what it did; it waits for a sync
// of the source already running. An unknown source wraps core.ErrNotFound.
func (r *Runner) Sync(ctx context.Context, name string) (Result, error) {
	s, ok := r.byName[name]
	if !ok {
		return Result{}, fmt.Errorf("git source %q: %w", name, core.ErrNotFound)
	}
	return r.sync(ctx, s), nil
}

// sync is one sync of s, recorded in its status.
func (r *Runner) sync(ctx context.Context, s *source) Result {
	s.one.Lock()
	defer s.one.Unlock()
	s.mu.Lock()
	s.syncing = true
	s.mu.Unlock()
	res := r.syncOnce(ctx, s)
	if res.Outcome == "" {
		res.Outcome = ResultError
	}
	s.mu.Lock()
	s.syncing = false
	s.lastSync = time.Now().UTC()
	if res.Commit != "" {
		s.fetched = res.Commit
	}
	prevErr := s.lastErr
	s.lastErr = ""
	if res.Err != nil {
		s.lastErr = res.Err.Error()
	}
	s.counts[res.Outcome]++
	s.mu.Unlock()
	if r.onSync != nil {
		r.onSync(s.cfg.Source.Name, res)
	}
	log := r.log.With("source", s.cfg.Source.Name, "commit", res.Commit, "result", res.Outcome)
	switch {
	case res.Outcome == ResultError && ctx.Err() != nil:
		// The daemon is stopping: not a failure of the source.
	case res.Outcome == ResultError:
		log.Warn("git source sync failed", "error", res.Err)
		if res.Err.Error() != prevErr {
			r.record(ctx, s, KindSyncFailed, "", res.Commit, res.Err.Error())
		}
	case res.Outcome == ResultFailed:
		log.Error("deploying a git commit failed; it is not tried again until a newer commit", "services", res.Services, "error", res.Err)
	case res.Outcome == ResultDeployed:
		log.Info("deployed a git commit", "services", res.Services)
	default:
		log.Debug("git source synced")
	}
	return res
}

// syncOnce fetches and, when a new commit came, deploys it.
func (r *Runner) syncOnce(ctx context.Context, s *source) Result {
	name := s.cfg.Source.Name
	fctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	fetched, err := s.m.Fetch(fctx)
	cancel()
	if err != nil {
		return Result{Err: err}
	}
	// Shown at once: a status read while the commit deploys (or once it is
	// marked failed) compares the commit deployed with this one.
	s.mu.Lock()
	s.fetched = fetched
	s.mu.Unlock()
	rec, err := r.state.Get(ctx, name)
	if err != nil {
		return Result{Commit: fetched, Err: fmt.Errorf("reading the state of source %s: %w", name, err)}
	}
	switch gitsync.Next(fetched, rec) {
	case gitsync.InSync:
		return Result{Outcome: ResultInSync, Commit: fetched}
	case gitsync.SkipFailed:
		return Result{Outcome: ResultSkipped, Commit: fetched}
	}
	if r.dep == nil {
		return Result{Outcome: ResultDrift, Commit: fetched}
	}
	return r.deploy(ctx, s, rec, fetched)
}

// deploy rolls fetched out and records what became of it.
func (r *Runner) deploy(ctx context.Context, s *source, rec gitsync.Record, fetched string) Result {
	name := s.cfg.Source.Name
	res := Result{Commit: fetched}
	if st, ok := r.dep.(Settler); ok {
		if err := st.Settle(ctx, name); err != nil {
			res.Err = fmt.Errorf("waiting for the deploy left unfinished by the last stop: %w", err)
			return res
		}
	}
	files, err := s.m.Changes(ctx, rec.Deployed, fetched)
	if err != nil {
		res.Err = fmt.Errorf("comparing %s with the commit deployed: %w", short(fetched), err)
		return res
	}
	d := Deploy{Source: name, Commit: fetched, Previous: rec.Deployed, Files: files, RemoveOrphans: s.cfg.RemoveOrphans}
	res.Services = d.Services()
	if err = unreadable(files); err == nil && len(files) > 0 {
		var cleanup func()
		if d.Backups, cleanup, err = r.backup(ctx, s, rec.Deployed, fetched, files); err != nil {
			res.Err = err
			return res
		}
		defer func() {
			// Kept when stopped midway: the deliveries resumed at the next
			// start name its files.
			if ctx.Err() == nil {
				cleanup()
				r.pruneBackups(s)
			}
		}()
		if d.Dir, err = s.m.Checkout(ctx, fetched); err != nil {
			res.Err = err
			r.restore(ctx, s, rec.Deployed)
			return res
		}
		err = r.dep.Deploy(ctx, d)
	} else if err == nil {
		// No compose file changed: the clone follows all the same.
		if _, err := s.m.Checkout(ctx, fetched); err != nil {
			res.Err = err
			return res
		}
	}
	at := time.Now().UTC()
	if err != nil {
		if ctx.Err() != nil {
			// Stopped midway: the commit is not marked; the next start tries it again.
			res.Err = fmt.Errorf("deploying %s: %w", short(fetched), err)
			return res
		}
		res.Outcome, res.Err = ResultFailed, err
		r.restore(ctx, s, rec.Deployed)
		if perr := r.state.Put(ctx, name, rec.Marked(fetched, err.Error(), at)); perr != nil {
			res.Err = errors.Join(err, fmt.Errorf("marking %s failed: %w", short(fetched), perr))
		}
		r.record(ctx, s, KindSyncFailed, rec.Deployed, fetched,
			fmt.Sprintf("deploying commit %s (%s) failed; it is not tried again until a newer commit: %v", short(fetched), servicesText(res.Services), err))
		return res
	}
	if err := r.state.Put(ctx, name, rec.Succeeded(fetched, at)); err != nil {
		res.Err = fmt.Errorf("recording %s deployed: %w", short(fetched), err)
		return res
	}
	res.Outcome = ResultDeployed
	detail := fmt.Sprintf("commit %s deployed", short(fetched))
	if len(files) == 0 {
		detail += ": no service changed"
	} else {
		detail += " (" + servicesText(res.Services) + ")"
	}
	r.record(ctx, s, KindSynced, rec.Deployed, fetched, detail)
	return res
}

// unreadable refuses a commit whose compose file could not be read (too
// large, not YAML, a symlink): nothing of it is deployed.
func unreadable(files []gitsync.FileDiff) error {
	var es []error
	for _, f := range files {
		if !filepath.IsLocal(filepath.FromSlash(f.Path)) {
			es = append(es, fmt.Errorf("%q: not a path inside the source", f.Path))
			continue
		}
		if f.Error != "" && f.Status != gitsync.Deleted {
			es = append(es, fmt.Errorf("%s: %s", f.Path, f.Error))
		}
	}
	if len(es) > 0 {
		return fmt.Errorf("nothing deployed: %w", errors.Join(es...))
	}
	return nil
}

// restore puts the clone back at the commit deployed, after a failed deploy.
func (r *Runner) restore(ctx context.Context, s *source, deployed string) {
	if deployed == "" {
		return
	}
	if _, err := s.m.Checkout(context.WithoutCancel(ctx), deployed); err != nil {
		r.log.Error("putting the clone back at the commit deployed", "source", s.cfg.Source.Name, "commit", deployed, "error", err)
	}
}

// record writes a sync to the history.
func (r *Runner) record(ctx context.Context, s *source, kind, from, to, detail string) {
	if r.rec == nil {
		return
	}
	e := store.Event{Host: HistoryHost, Container: s.cfg.Source.Name, Image: gitsync.RedactURL(s.cfg.Source.URL),
		Kind: kind, From: from, To: to, Detail: detail}
	if err := r.rec.AddEvent(context.WithoutCancel(ctx), e); err != nil {
		r.log.Error("recording a git sync in the history", "source", s.cfg.Source.Name, "error", err)
	}
}

// Status describes every source, sorted by name.
func (r *Runner) Status(ctx context.Context) ([]Status, error) {
	out := make([]Status, 0, len(r.names))
	var es []error
	for _, name := range r.names {
		s := r.byName[name]
		rec, err := r.state.Get(ctx, name)
		if err != nil {
			es = append(es, fmt.Errorf("reading the state of source %s: %w", name, err))
		}
		s.mu.Lock()
		st := Status{Name: name, URL: gitsync.RedactURL(s.cfg.Source.URL), Branch: s.m.Branch(), Path: s.cfg.Source.Path,
			Deployed: rec.Deployed, Fetched: s.fetched, Failed: rec.Failed, FailedReason: rec.FailedReason,
			LastError: s.lastErr, LastSync: s.lastSync, Syncing: s.syncing, Interval: s.cfg.Interval.Seconds(),
			Webhook: s.cfg.WebhookSecret != "", Syncs: map[string]int64{}}
		for k, v := range s.counts {
			st.Syncs[k] = v
		}
		s.mu.Unlock()
		if st.Path == "" {
			st.Path = "."
		}
		st.InSync = st.Fetched != "" && st.Fetched == st.Deployed
		out = append(out, st)
	}
	return out, errors.Join(es...)
}

// Webhook errors, besides gitsync's (ErrSignature, ErrNoSecret, ErrNotPush,
// ErrPayload, ErrUnknownProvider, ErrTooLarge).
var (
	// ErrOtherRef: a verified push of another branch or repository.
	ErrOtherRef = errors.New("the push is not for the source's repository and branch")
)

// Webhook verifies a push webhook for source name (its header and body, read
// with a bound) and, when it moved the source's branch, asks for a sync at
// once. Errors: core.ErrNotFound for an unknown source; gitsync.ErrNoSecret
// when the source has no secret; gitsync.ErrSignature for a bad signature;
// gitsync.ErrNotPush for another event and ErrOtherRef for another
// branch or repository (both harmless: nothing is done).
func (r *Runner) Webhook(name string, h http.Header, body []byte) (gitsync.Push, error) {
	s, ok := r.byName[name]
	if !ok {
		return gitsync.Push{}, fmt.Errorf("git source %q: %w", name, core.ErrNotFound)
	}
	push, err := gitsync.ParsePush(h, body, []byte(s.cfg.WebhookSecret.Reveal()))
	if err != nil {
		return push, fmt.Errorf("webhook of git source %s: %w", name, err)
	}
	branch := s.m.Branch()
	if branch == "" {
		branch = s.cfg.Source.Branch
	}
	if branch == "" {
		// Not fetched yet: any branch of the repository may be the default.
		branch = push.Branch
	}
	if !push.Matches(s.cfg.Source.URL, branch) {
		return push, fmt.Errorf("webhook of git source %s: %s of %s: %w", name, push.Ref, push.Repository, ErrOtherRef)
	}
	r.Wake(name)
	return push, nil
}

func servicesText(s []string) string {
	if len(s) == 0 {
		return "no service"
	}
	return "services " + strings.Join(s, ", ")
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
