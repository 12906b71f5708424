-- 002: deliveries, the triggers' outbox; the trigger of a history event; when
-- an update's status last changed.

-- Deliveries: one row per (update, trigger instance, candidate, event) — and
-- per run when the trigger's ONCE is off — written before the trigger is
-- fired. key is the idempotency key handed to the trigger. status is pending
-- (due at next_attempt_at), running (claimed by a dispatcher: fired or about
-- to be; next_attempt_at is then the end of its lease, after which it counts
-- as abandoned and is due again), delivered or failed. batch groups the
-- deliveries fired together in one call (a trigger in batch mode); NULL for
-- single ones.
CREATE TABLE deliveries (
    id              INTEGER PRIMARY KEY,
    update_id       INTEGER NOT NULL REFERENCES updates (id),
    trigger         TEXT    NOT NULL,               -- instance: "webhook.ops"
    candidate       TEXT    NOT NULL,               -- tag, or tag@digest for digest updates
    event           TEXT    NOT NULL,               -- update-available, update-applied, …
    run             TEXT    NOT NULL DEFAULT '',    -- '' with ONCE on; the run (or request) otherwise
    key             TEXT    NOT NULL UNIQUE,
    batch           TEXT,
    event_detail    TEXT    NOT NULL DEFAULT '',    -- what happened, for rollout events
    status          TEXT    NOT NULL DEFAULT 'pending',
    attempts        INTEGER NOT NULL DEFAULT 0,     -- attempts finished (a crashed one is not counted)
    next_attempt_at INTEGER NOT NULL,
    last_error      TEXT    NOT NULL DEFAULT '',
    detail          TEXT    NOT NULL DEFAULT '',    -- the trigger's detail on success
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
-- ONCE: one delivery per candidate, whatever the runs.
CREATE UNIQUE INDEX deliveries_once ON deliveries (update_id, trigger, candidate, event) WHERE run = '';
CREATE INDEX deliveries_due ON deliveries (trigger, next_attempt_at) WHERE status IN ('pending', 'running');
CREATE INDEX deliveries_due_all ON deliveries (next_attempt_at) WHERE status IN ('pending', 'running');
CREATE INDEX deliveries_update ON deliveries (update_id);

ALTER TABLE events ADD COLUMN trigger TEXT NOT NULL DEFAULT '';
ALTER TABLE updates ADD COLUMN status_at INTEGER;
