-- 006: one index of due deliveries. The dispatcher always reads the outbox
-- by trigger (deliveries_due); deliveries_due_all, over every trigger, was
-- one more index page written by each enqueue, claim and outcome.
DROP INDEX IF EXISTS deliveries_due_all;
