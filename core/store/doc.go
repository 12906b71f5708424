// Package store keeps tidewatch's state in SQLite (modernc.org/sqlite, pure
// Go, no cgo): the containers seen on each watched host, the updates found
// for them, and the history of what happened.
//
// # Location and settings
//
// Open(ctx, dir) keeps everything in one file, dir/tidewatch.db (dir is
// TIDEWATCH_STORE_PATH, default ./data, created with mode 0750), opened with
// journal_mode=WAL (readers do not wait for the writer; expect the -wal and
// -shm files beside it), busy_timeout=10s, foreign_keys=on, and write
// transactions that take the write lock when they begin, so concurrent
// writers queue instead of failing. Back it up with `sqlite3 tidewatch.db
// ".backup copy.db"` or by copying the folder while tidewatch is stopped.
//
// # Schema
//
// Migrations are embedded (migrations/NNN_name.sql) and applied at Open, each
// in its own transaction together with its row in schema_migrations; Open
// refuses a database whose schema is newer than the binary's. Tables:
//
//   - containers: one row per (host, container name), so a container
//     recreated under the same name keeps its row; gone_at is set when it
//     disappears (MarkGone) and cleared when it is seen again.
//   - updates: a candidate found for a container, with its status
//     (core.UpdateStatus). At most one update per container is open; a new
//     candidate closes it as superseded, a check without update as resolved,
//     the container's disappearance as gone. Closed rows are kept, so that
//     later tables (deliveries, rollouts) can refer to them.
//   - events: the append-only history (detected, superseded, resolved, error,
//     gone; delivered, delivery-retry, delivery-failed with the trigger's name).
//   - deliveries: the triggers' outbox. One row per (update, trigger,
//     candidate, event) — per run too when the trigger's ONCE is off — written
//     before the trigger is fired, with its idempotency key, status (pending,
//     running under a lease, delivered, failed), attempts and next attempt.
//   - resolutions: what resolving a changed digest answered, so that its
//     manifest GETs are paid once.
//
// The database is opened in WAL mode with synchronous=NORMAL: a crash of the
// process loses nothing committed; a power loss may lose the last commits,
// which the outbox survives by firing again under the same key.
//
// Times are stored as INTEGER unix nanoseconds in UTC (NULL for unknown) and
// come back as UTC time.Time values.
package store
