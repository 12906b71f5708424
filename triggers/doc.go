// Package triggers is the dispatcher: it decides which trigger instances act
// on each update a watch run found, writes one delivery per (update,
// candidate, trigger) to the store's outbox before anything is fired, fires
// them (sdk.Trigger values: plugin processes behind plugins/host, or
// in-process fakes in tests), retries what failed, and records every outcome
// in the store's history. It knows triggers only as sdk.Trigger values.
//
// # Policy
//
// Every instance ("type.name") has a Policy, the common options
// TIDEWATCH_TRIGGER_<type>_<name>_*: THRESHOLD (see Threshold: a ceiling, as
// in What's Up Docker; "minor" acts on minor, patch and prerelease updates,
// not on major ones), MODE (once: a delivery per update; batch: one Fire per
// run with every matching update), AUTO (fire on detection, or only when a
// person asks: Dispatcher.Request), ONCE (one delivery per candidate, or one
// per run), INCLUDE/EXCLUDE (container globs), and the container labels
// tidewatch.trigger.include and tidewatch.trigger.exclude.
//
// # Deliveries
//
// Notify enqueues deliveries; Run (the daemon) or Drain (`tidewatch check`)
// fires them. Each delivery carries an idempotency key (sdk.Update.Key),
// stable across retries and restarts. A delivery is claimed (running) in the
// store before its Fire, and its outcome is written after: delivered;
// retried with exponential backoff and jitter (1s, doubling, at most 5m) for
// an error that is not sdk.Permanent, until Policy.Retries attempts; failed
// with the reason otherwise. A delivery cut short by a crash is still
// running in the store, and the next dispatcher fires it again with the same
// key (at least once; exactly once for a trigger that honours the key); a
// delivered or failed one is never fired again. One store is served by one
// dispatcher at a time.
//
// Each Fire runs under the instance's Timeout, at most Concurrency at a time
// per instance. Store writes are batched: deliveries are claimed several at
// a time, and the outcomes that complete together are written in one
// transaction.
package triggers
