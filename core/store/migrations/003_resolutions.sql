-- 003: what resolving a changed digest answered (is the registry's manifest
-- at this digest the image that runs?), so that the manifest GETs it costs,
-- which Docker Hub counts as pulls, are paid once per digest, across runs
-- and restarts. key is "repo@digest|image-id|platform|local digests".
CREATE TABLE resolutions (
    key         TEXT    PRIMARY KEY,
    same        INTEGER NOT NULL,
    resolved_at INTEGER NOT NULL
);
