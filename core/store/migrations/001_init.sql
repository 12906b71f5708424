-- 001: containers, the updates found for them, and the history of both.
-- Times are unix nanoseconds, UTC (INTEGER); NULL where a time may be absent.

-- One row per container name on a host: a container recreated under the same
-- name (a compose update) keeps its row, with its new engine ID.
CREATE TABLE containers (
    id             INTEGER PRIMARY KEY,
    host           TEXT    NOT NULL,
    name           TEXT    NOT NULL,
    container_id   TEXT    NOT NULL DEFAULT '',
    display_name   TEXT    NOT NULL DEFAULT '',
    image          TEXT    NOT NULL DEFAULT '',    -- as written: "nginx:1.25"
    image_id       TEXT    NOT NULL DEFAULT '',
    repo           TEXT    NOT NULL DEFAULT '',    -- normalised: "index.docker.io/library/nginx"
    current_tag    TEXT    NOT NULL DEFAULT '',
    current_digest TEXT    NOT NULL DEFAULT '',
    repo_digests   TEXT    NOT NULL DEFAULT '[]',  -- JSON array
    labels         TEXT    NOT NULL DEFAULT '{}',  -- JSON object
    state          TEXT    NOT NULL DEFAULT '',
    created_at     INTEGER,
    note           TEXT    NOT NULL DEFAULT '',
    first_seen     INTEGER NOT NULL,
    last_checked   INTEGER NOT NULL,
    last_error     TEXT    NOT NULL DEFAULT '',
    gone_at        INTEGER,                        -- set when the container disappeared
    UNIQUE (host, name)
);

-- Updates: a candidate found for a container. At most one is open per
-- container; a new candidate closes the open one ('superseded'), and so do a
-- check without update ('resolved') and the container's disappearance
-- ('gone'). Closed rows stay, so that what refers to them (deliveries,
-- rollouts) keeps its meaning.
CREATE TABLE updates (
    id               INTEGER PRIMARY KEY,
    container        INTEGER NOT NULL REFERENCES containers (id),
    image            TEXT    NOT NULL DEFAULT '',  -- normalised repository
    current_tag      TEXT    NOT NULL DEFAULT '',
    current_digest   TEXT    NOT NULL DEFAULT '',
    candidate_tag    TEXT    NOT NULL,
    candidate_digest TEXT    NOT NULL DEFAULT '',
    kind             TEXT    NOT NULL,
    link             TEXT    NOT NULL DEFAULT '',
    status           TEXT    NOT NULL DEFAULT 'pending',
    first_seen       INTEGER NOT NULL,
    last_seen        INTEGER NOT NULL,
    closed_at        INTEGER,
    closed_as        TEXT    NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX updates_open_per_container ON updates (container) WHERE closed_at IS NULL;
CREATE INDEX updates_open_status ON updates (status) WHERE closed_at IS NULL;

-- Events: the history, append-only. Host, container and image are copied so
-- that an event reads the same whatever happens to the rows it came from.
CREATE TABLE events (
    id          INTEGER PRIMARY KEY,
    at          INTEGER NOT NULL,
    host        TEXT    NOT NULL,
    container   TEXT    NOT NULL,
    image       TEXT    NOT NULL DEFAULT '',
    kind        TEXT    NOT NULL,                 -- detected, resolved, superseded, error, gone
    from_ref    TEXT    NOT NULL DEFAULT '',
    to_ref      TEXT    NOT NULL DEFAULT '',
    update_kind TEXT    NOT NULL DEFAULT '',
    update_id   INTEGER REFERENCES updates (id),
    detail      TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX events_at ON events (at, id);
CREATE INDEX events_container ON events (host, container, at);
