-- 005: deploys through the outbox. A delivery keeps who asked for it (the
-- API's principal: a user, a token, "mqtt"; '' for automatic ones) and, for a
-- trigger that deploys, its rollout report (JSON of sdk.Rollout); a history
-- event keeps its principal too. Display names are filled where they were
-- left empty (a container without the label is shown by its name).
ALTER TABLE deliveries ADD COLUMN principal TEXT NOT NULL DEFAULT '';
ALTER TABLE deliveries ADD COLUMN rollout TEXT NOT NULL DEFAULT '';
ALTER TABLE events ADD COLUMN principal TEXT NOT NULL DEFAULT '';
UPDATE containers SET display_name = name WHERE display_name = '';
