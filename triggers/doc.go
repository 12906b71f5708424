// Package triggers is the dispatcher: it decides which trigger instances act
// on each update a watch run recorded, writes one delivery per (update,
// candidate, trigger) to the store's outbox before anything is fired, fires
// them (sdk.Trigger values: plugin processes behind plugins/host, or
// in-process fakes in tests), retries what failed, and records every outcome
// in the store's history. It knows triggers only as sdk.Trigger values and
// by what they describe (Instance.Deploys).
//
// The files follow a delivery's life: enqueue.go (Notify after a watch run,
// NotifyEvent after a rollout, Request when a person asks, Check for a dry
// run, Await), inbox.go (what was enqueued, handed to the loop), loop.go
// (claim due deliveries and fire them), project.go (one rollout per compose
// project), outcome.go (classify each result, write the outcomes, hand the
// events on), convert.go (the domain's update to the SDK's and the SDK's
// rollout report back).
//
// # Policy
//
// Every instance ("type.name") has a core.TriggerPolicy, the common options
// TIDEWATCH_TRIGGER_<type>_<name>_*: THRESHOLD (a ceiling, as in What's Up
// Docker; "minor" acts on minor, patch and prerelease updates, not on major
// ones), MODE (once: a delivery per update; batch: one Fire per run with
// every matching update), AUTO (fire on detection, or only when a person
// asks: Dispatcher.Request), ONCE (one delivery per candidate, or one per
// run), INCLUDE/EXCLUDE (container globs), LABELS (the container labels a
// notifying trigger may see besides tidewatch.*), and the container labels
// tidewatch.watch, tidewatch.trigger.include and tidewatch.trigger.exclude.
// A person's request skips AUTO and THRESHOLD and honours the rest; a
// refusal names its rule.
//
// # Deploying triggers
//
// A trigger whose description says it deploys (compose, and any plugin that
// says so) is offered for Apply and deploys; a delivery to it marks its
// update applying in the same transaction, it is handed every label of the
// container, its DEADLINE defaults to 10 minutes, and its result carries a
// typed rollout report whose outcome becomes the update's status
// (applied, rolled back, failed) and an event for the triggers listening.
//
// # Deliveries
//
// Notify enqueues deliveries; Run (the daemon) or Drain (`tidewatch check`)
// fires them. Each delivery carries an idempotency key (sdk.Update.Key),
// stable across retries and restarts. A delivery is claimed (running) in the
// store before its Fire, and its outcome is written after: delivered;
// retried with exponential backoff and jitter (1s, doubling, at most 5m) for
// an error that is not sdk.Permanent, until RETRIES attempts; failed
// with the reason otherwise. A delivery cut short by a crash is still
// running in the store, and the next dispatcher fires it again with the same
// key (at least once; exactly once for a trigger that honours the key); a
// delivered or failed one is never fired again. One store is served by one
// dispatcher at a time.
//
// Each Fire runs under the instance's DEADLINE, at most CONCURRENCY at a
// time per instance, and a deploying instance's at most one per compose
// project (host, project, working folder) at a time, across instances
// (project.go): the others of the project wait in the queue, not inside the
// trigger, and those of other projects go first.
//
// # Store writes
//
// What Notify, NotifyEvent and Request write is handed to the loop (the
// inbox, inbox.go), which claims it without reading it back; the loop reads
// the outbox for what it was not handed (a backlog, a batch, retries at
// their time, an earlier process's deliveries when Outstanding says they are
// due) and polls it every poll interval. While the loop runs, a Notify of no
// more deliveries per instance than its CONCURRENCY writes them claimed in
// the enqueue's transaction: enqueue and claim in one commit, the outcome in
// a second. Otherwise deliveries are claimed several at a time. Outcomes
// that end while other Fire calls are in flight wait up to 5 ms to be
// written with theirs in one transaction (group commit); one delivery at a
// time is written at once.
package triggers
