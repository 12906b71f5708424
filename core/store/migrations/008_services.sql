-- 008: Swarm services beside containers. A watcher on a swarm manager lists
-- each service as a container row: kind is 'service' for one ('' for a
-- container), and service holds its replicas, nodes and update state (JSON of
-- core.Service; '' for a container).
ALTER TABLE containers ADD COLUMN kind TEXT NOT NULL DEFAULT '';
ALTER TABLE containers ADD COLUMN service TEXT NOT NULL DEFAULT '';
