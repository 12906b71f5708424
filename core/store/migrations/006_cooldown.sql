-- 006: cooldowns (tidewatch.update.min-age, a trigger's MIN_AGE). When a
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
