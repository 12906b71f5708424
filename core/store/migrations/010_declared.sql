-- 010: deploys of what a git source's compose files declare go through the
-- outbox. A delivery keeps the declared deploy it fires (JSON of
-- core.Declared; '' for an update found by the watcher). Such a delivery's
-- update and container rows are the service's, named "<project>/<service>"
-- (a name no engine gives a container), written gone and closed: they exist
-- for the delivery and the history, never in the lists of what runs.
ALTER TABLE deliveries ADD COLUMN declared TEXT NOT NULL DEFAULT '';
