package web

import (
	"context"
	"io/fs"
	"time"

	"github.com/tidewatch/tidewatch/core"
	"github.com/tidewatch/tidewatch/core/store"
)

// Deps are what the server reads and drives. Each is a small interface,
// satisfied by the daemon's parts (*store.Store for the stores). Deployer
// may be nil: /api/deploy then answers 501. Metrics may be nil: New makes
// its own.
type Deps struct {
	Containers ContainerStore
	Updates    UpdateStore
	History    HistoryStore
	Watcher    Watcher
	Registries Registries
	Triggers   Triggers
	Deployer   Deployer
	Events     Events
	Metrics    *Metrics
	// Git are the git sources; nil when none is configured.
	Git GitSources
	// UI holds the UI's static files, index.html at its root (ui.FS of
	// web/ui); nil serves a page saying the UI is not built in.
	UI fs.FS
	// Ready are the checks /readyz runs, by name ("store", "engine local");
	// each returns nil when its part is usable.
	Ready map[string]func(ctx context.Context) error
}

// ContainerStore reads containers and their open updates (*store.Store).
type ContainerStore interface {
	// Containers returns the containers present on host ("" for every host).
	Containers(ctx context.Context, host string) ([]store.ContainerRecord, error)
	// ListUpdates returns the open updates f selects.
	ListUpdates(ctx context.Context, f store.UpdateFilter) ([]store.OpenUpdate, error)
}

// UpdateStore reads and changes one update (*store.Store).
type UpdateStore interface {
	// Update returns update id; an error wrapping core.ErrNotFound when there is none.
	Update(ctx context.Context, id int64) (core.Update, error)
	// Dismiss marks the open update id dismissed.
	Dismiss(ctx context.Context, id int64, at time.Time) error
	// Snooze puts the open update id off until until.
	Snooze(ctx context.Context, id int64, until time.Time) error
}

// HistoryStore reads the history and the outbox, and records the requests
// whose effect is not recorded otherwise (*store.Store).
type HistoryStore interface {
	// AddEvent appends e to the history; an empty e.Principal is ctx's
	// (store.WithPrincipal, which the server sets to the request's principal).
	AddEvent(ctx context.Context, e store.Event) error
	// History returns the events f selects, newest first.
	History(ctx context.Context, f store.HistoryFilter) ([]store.Event, error)
	// CountHistory counts them, ignoring Limit and Offset.
	CountHistory(ctx context.Context, f store.HistoryFilter) (int, error)
	// Deliveries returns the deliveries f selects, newest first.
	Deliveries(ctx context.Context, f store.DeliveryFilter) ([]store.Delivery, error)
}

// Watcher runs the watch loops on demand and reports on them.
type Watcher interface {
	// RunAll asks every watcher to run now and returns without waiting for
	// the runs; their ends are published as "run" events.
	RunAll(ctx context.Context) error
	// RunContainer checks the container name of host now and returns the
	// check; an error wrapping core.ErrNotFound when host or container is unknown.
	RunContainer(ctx context.Context, host, name string) (core.Check, error)
	// Status describes every watcher.
	Status() []WatcherStatus
}

// WatcherStatus is what /api/watchers shows of one watcher.
type WatcherStatus struct {
	// Name is the watcher's name; Address the Docker host it watches
	// ("unix:///var/run/docker.sock", "tcp://host:2376").
	Name    string `json:"name"`
	Address string `json:"address"`
	// Cron is its schedule.
	Cron string `json:"cron,omitempty"`
	// LastRun is its last full run, nil before the first one ends.
	LastRun *RunInfo `json:"last_run"`
	// NextRun is when the schedule runs it next; zero when unknown.
	NextRun time.Time `json:"next_run,omitzero"`
	// Running is true while a run is in progress.
	Running bool `json:"running"`
}

// RunInfo describes one watch run.
type RunInfo struct {
	// Host is the watcher that ran.
	Host string `json:"host"`
	// Start and Duration bound the run.
	Start    time.Time     `json:"start"`
	Duration time.Duration `json:"duration_ns"`
	// Containers counts the containers checked, Updates those with an
	// update, Errors those whose check failed.
	Containers int `json:"containers"`
	Updates    int `json:"updates"`
	Errors     int `json:"errors"`
	// Error is the run's error, when the run as a whole failed.
	Error string `json:"error,omitempty"`
}

// Registries reports on the registries asked since start.
type Registries interface {
	// Status describes every registry host asked.
	Status() []core.RegistryStatus
}

// Triggers lists the trigger instances and fires them on request.
type Triggers interface {
	// List describes every trigger instance, sorted by name.
	List() []TriggerInfo
	// Request enqueues a delivery of update updateID to trigger because
	// principal asked (Apply), through the trigger's policy, and returns it
	// with the update as it now is (applying, for a trigger that deploys);
	// errors wrap core.ErrNotFound for an unknown update or trigger,
	// *core.RefusalError when the trigger's policy refuses the update, and
	// ErrConflict when it is being applied already.
	Request(ctx context.Context, updateID int64, trigger, principal string) (store.Delivery, error)
	// Test fires trigger with a sample update and returns what it answered;
	// the error is for a test that could not be run at all.
	Test(ctx context.Context, trigger string) (TestResult, error)
}

// TriggerInfo describes one trigger instance.
type TriggerInfo struct {
	// Name is "type.name"; Type the trigger type.
	Name string `json:"name"`
	Type string `json:"type"`
	// Auto, Threshold, Mode and Events are its common options.
	Auto      bool     `json:"auto"`
	Threshold string   `json:"threshold"`
	Mode      string   `json:"mode"`
	Events    []string `json:"events"`
	// Deploys is true for a trigger that rolls updates out (its plugin
	// says so): applying an update through it marks the update applying.
	Deploys bool `json:"deploys"`
	// Options are its own options as set; those flagged Secret are shown
	// as "[redacted]" whatever their value.
	Options []TriggerOption `json:"options"`
}

// TriggerOption is one option of a trigger instance.
type TriggerOption struct {
	Name   string `json:"name"`
	Value  string `json:"value"`
	Secret bool   `json:"secret"`
}

// TestResult is what a trigger answered to a test notification.
type TestResult struct {
	// OK is true when the trigger delivered it.
	OK bool `json:"ok"`
	// Detail is the trigger's detail; Error why it failed; Retryable whether
	// it said to try again.
	Detail    string `json:"detail,omitempty"`
	Error     string `json:"error,omitempty"`
	Retryable bool   `json:"retryable,omitempty"`
	// Duration is how long the call took.
	Duration time.Duration `json:"duration_ns"`
}

// Deployer rolls a compose service to a tag (push-based CD from CI).
type Deployer interface {
	// Deploy rolls req's service out through a deploying trigger, by the
	// outbox and the trigger's policy, on behalf of principal, and returns
	// the outcome once the rollout ends (or, when it takes longer than the
	// request may wait, the delivery to follow); errors wrap
	// core.ErrNotFound for an unknown project, service or trigger,
	// *core.RefusalError when the trigger's policy refuses the service, and
	// ErrConflict when it is being applied already.
	Deploy(ctx context.Context, req DeployRequest, principal string) (DeployResult, error)
}

// DeployRequest is the body of POST /api/deploy.
type DeployRequest struct {
	// Project and Service name the compose service; Tag the image tag to run.
	Project string `json:"project"`
	Service string `json:"service"`
	Tag     string `json:"tag"`
	// Trigger is the compose trigger instance to use; "" when only one exists.
	Trigger string `json:"trigger,omitempty"`
}

// DeployResult is the outcome of a deploy.
type DeployResult struct {
	// Result is "applied", "rolled-back", "failed" or "dry-run".
	Result string `json:"result"`
	// Project, Service, From and To say what moved.
	Project string `json:"project"`
	Service string `json:"service"`
	From    string `json:"from,omitempty"`
	To      string `json:"to"`
	// Detail says what happened; Steps the rollout's steps; Logs the failed
	// container's last log lines after a rollback.
	Detail string   `json:"detail,omitempty"`
	Steps  []string `json:"steps,omitempty"`
	Logs   []string `json:"logs,omitempty"`
	// Delivery is the delivery that carries the deploy, to follow in
	// /api/deliveries when Result is "pending" (it outlasted the request).
	Delivery int64 `json:"delivery,omitempty"`
}

// Events is where the UI's live events come from (*Broker).
type Events interface {
	// Subscribe returns the events published from now until ctx ends, when
	// the channel is closed. A subscriber that does not keep up loses events.
	Subscribe(ctx context.Context) <-chan Event
}
