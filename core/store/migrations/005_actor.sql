-- 005: who asked. A history event caused by an API request records the
-- request's principal ("user:alice", "token:ci", "anonymous" with auth off);
-- '' for what the daemon did on its own (a watch run, a delivery).
ALTER TABLE events ADD COLUMN actor TEXT NOT NULL DEFAULT '';
