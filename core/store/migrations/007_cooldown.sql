-- 007: cooldowns, and an index for a run's writes.
--
-- Cooldowns (tidewatch.update.min-age, a trigger's MIN_AGE): when a
-- candidate image was created, from its config, by "repo@digest|platform":
-- reading it costs manifest GETs, which Docker Hub counts as pulls, so each
-- candidate is read once, across runs and restarts; created is NULL when the
-- config held no usable time. An update keeps its candidate's creation time.
CREATE TABLE image_created (
    key     TEXT    PRIMARY KEY,
    created INTEGER,
    read_at INTEGER NOT NULL
);
ALTER TABLE updates ADD COLUMN candidate_created INTEGER;
-- A new update looks up the container's earlier updates of the same
-- candidate (a rolled-back or dismissed one keeps its status): without this
-- index that read scanned every update, and the first run over 10,000
-- containers spent most of its time there.
CREATE INDEX updates_container ON updates (container, id);
