-- 009: git sources (TIDEWATCH_GIT_<name>_URL). Per source: the commit
-- deployed, and the newest commit whose deploy failed and was rolled back,
-- which is not tried again until a newer one arrives. at is when the row
-- last changed (unix nanoseconds). (008 is taken by another change in flight.)
CREATE TABLE git_sources (
    name          TEXT    PRIMARY KEY,
    deployed      TEXT    NOT NULL DEFAULT '',
    failed        TEXT    NOT NULL DEFAULT '',
    failed_reason TEXT    NOT NULL DEFAULT '',
    at            INTEGER
);
