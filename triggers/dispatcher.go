package triggers

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tidewatch/tidewatch/core"
	"github.com/tidewatch/tidewatch/core/store"
	"github.com/tidewatch/tidewatch/plugins/sdk"
)

// Outbox is the part of the store the dispatcher uses; *store.Store has it.
// Its methods are documented there.
type Outbox interface {
	Enqueue(ctx context.Context, ds []store.NewDelivery) ([]store.Delivery, error)
	EnqueueDeclared(ctx context.Context, nd store.NewDeclared) (store.Delivery, bool, error)
	UnfinishedDeclared(ctx context.Context, trigger, principal string) ([]int64, error)
	Due(ctx context.Context, now time.Time, limit int, triggers ...string) ([]store.Delivery, error)
	Claim(ctx context.Context, ids []int64, at, lease time.Time) ([]int64, error)
	Resume(ctx context.Context, at time.Time, triggers ...string) (int, error)
	Release(ctx context.Context, ids []int64, at time.Time) error
	Finish(ctx context.Context, outs []store.Outcome) error
	Outstanding(ctx context.Context, triggers ...string) (int, time.Time, error)
	Update(ctx context.Context, id int64) (core.Update, error)
	Delivery(ctx context.Context, id int64) (store.Delivery, error)
	AddEvent(ctx context.Context, e store.Event) error
}

var _ Outbox = (*store.Store)(nil)

// Errors callers branch on.
var (
	// ErrUnknownTrigger: no instance has that name.
	ErrUnknownTrigger = errors.New("unknown trigger")
	// ErrBusy: Run or Drain is already running on this dispatcher.
	ErrBusy = errors.New("dispatcher already running")
	// ErrApplying: the update is being applied already.
	ErrApplying = errors.New("the update is being applied already")
	// ErrNotDeploying: the instance does not deploy (Declare).
	ErrNotDeploying = errors.New("the trigger does not deploy")
)

// Instance is a configured trigger.
type Instance struct {
	// Name is the instance, "type.name" ("webhook.ops").
	Name string
	// Trigger is the trigger, configured.
	Trigger sdk.Trigger
	// Policy is what tidewatch decides for it; its zero fields get defaults.
	Policy core.TriggerPolicy
	// Deploys is what the trigger's description says: it rolls updates out.
	// Applying an update through it marks the update applying, and its
	// Deadline defaults to core.DefaultDeployDeadline.
	Deploys bool
}

// Dispatcher fans updates out to trigger instances through the outbox.
type Dispatcher struct {
	out      Outbox
	insts    []*Instance
	byName   map[string]*Instance
	names    []string
	log      *slog.Logger
	base     time.Duration
	factor   float64
	max      time.Duration
	poll     time.Duration
	grace    time.Duration
	prefetch int
	wake     chan struct{}
	running  sync.Mutex
	observe  func(trigger string, id int64, status store.DeliveryStatus, event core.Event)
	creds    Credentials
	rollouts func(ctx context.Context, u core.Update, r core.Rollout)
	services func(trigger string, outcomes []sdk.ServiceOutcome)
	waiters  waiters
	inbox    inbox
	looping  atomic.Bool // Run or Drain is firing what the inbox hands over
}

// Credentials gives the registry credentials a trigger that deploys pulls
// with (*registries.Client).
type Credentials interface {
	// Credentials returns the credentials image's registry is read with.
	Credentials(ctx context.Context, image string) (core.RegistryAuth, error)
}

// New returns a dispatcher over out for instances, whose policies get their
// defaults. Instances after the first of the same name are ignored.
func New(out Outbox, instances []Instance, log *slog.Logger, opts ...Option) *Dispatcher {
	d := &Dispatcher{
		out: out, byName: map[string]*Instance{}, log: log,
		base: time.Second, factor: 2, max: 5 * time.Minute, poll: 5 * time.Second, prefetch: 32,
		wake: make(chan struct{}, 1),
	}
	for _, o := range opts {
		o(d)
	}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	for _, in := range instances {
		if _, dup := d.byName[in.Name]; dup {
			d.log.Warn("trigger configured twice; keeping the first", "trigger", in.Name)
			continue
		}
		in := in
		if in.Deploys && !in.Policy.DeadlineSet {
			in.Policy.Deadline = core.DefaultDeployDeadline // a rollout takes minutes, not a notification's seconds
		}
		in.Policy.SetDefaults()
		d.insts = append(d.insts, &in)
		d.byName[in.Name] = &in
		d.names = append(d.names, in.Name)
	}
	return d
}

// Instance returns the instance named name ("type.name"), as the
// dispatcher holds it (its policy with defaults).
func (d *Dispatcher) Instance(name string) (Instance, bool) {
	in, ok := d.byName[name]
	if !ok {
		return Instance{}, false
	}
	return *in, true
}

// signal wakes the loop.
func (d *Dispatcher) signal() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Option configures a Dispatcher.
type Option func(*Dispatcher)

// WithBackoff sets the retry delay: base after the first failed attempt,
// multiplied by factor after each next one, at most max; each delay is
// drawn at random from its upper half (jitter). Default 1s, 2, 5m.
func WithBackoff(base time.Duration, factor float64, max time.Duration) Option {
	return func(d *Dispatcher) { d.base, d.factor, d.max = base, factor, max }
}

// WithPollInterval sets how often an idle dispatcher looks at the outbox
// for deliveries it was not told about. Default 5s.
func WithPollInterval(p time.Duration) Option { return func(d *Dispatcher) { d.poll = p } }

// WithShutdownGrace sets how long Run, when its context ends, lets Fire
// calls in flight finish before cutting them off. Default: until their own
// deadline (Policy.Deadline).
func WithShutdownGrace(g time.Duration) Option { return func(d *Dispatcher) { d.grace = g } }

// WithObserver calls observe after every finished attempt, once its
// outcome is written to the store: the instance, the delivery, its new
// status (delivered, pending for a retry, failed) and the event it caused,
// if any (a rollout's outcome). It must not block.
// Default: none.
func WithObserver(observe func(trigger string, id int64, status store.DeliveryStatus, event core.Event)) Option {
	return func(d *Dispatcher) { d.observe = observe }
}

// WithCredentials gives the triggers that deploy the credentials detection
// reads each update's registry with, so that they pull what it saw. Default:
// none (they pull anonymously, or with the engine's own credentials).
func WithCredentials(c Credentials) Option { return func(d *Dispatcher) { d.creds = c } }

// WithServiceObserver calls observe after every finished attempt whose
// result says what each of the trigger's services did (sdk.Result.Services:
// the notify trigger's URLs), once its outcome is written, with the
// instance and those outcomes. It must not block. Default: none.
func WithServiceObserver(observe func(trigger string, outcomes []sdk.ServiceOutcome)) Option {
	return func(d *Dispatcher) { d.services = observe }
}

// WithRolloutObserver calls observe after each rollout's final outcome is
// written, with the update and the rollout's report (an applied rollout's
// files, to commit them in git); ctx is the dispatcher's, which ends when it
// stops. It must not block. Default: none.
func WithRolloutObserver(observe func(ctx context.Context, u core.Update, r core.Rollout)) Option {
	return func(d *Dispatcher) { d.rollouts = observe }
}

// WithPrefetch sets how many deliveries (or batches) per instance are claimed
// ahead of free Fire slots, so that claims are written several at a time.
// Default 32.
func WithPrefetch(n int) Option { return func(d *Dispatcher) { d.prefetch = n } }

// newID returns prefix-<16 hex digits>, unique enough for runs and requests.
func newID(prefix string) string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return prefix + "-" + hex.EncodeToString(b[:])
}
