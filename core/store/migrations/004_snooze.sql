-- 004: snoozing. An open update may be put off until a time: until then it is
-- left out of the default list of pending updates (ListUpdates), and comes
-- back by itself afterwards. A new candidate is a new update, not snoozed.
ALTER TABLE updates ADD COLUMN snoozed_until INTEGER;
CREATE INDEX updates_open_list ON updates (status, snoozed_until) WHERE closed_at IS NULL;
