-- What makes every delivery to chat happen once, even across a crash:
-- key: identifies the person's action that caused an event (one click), so
--   that a redelivered click is recorded once;
-- audit_attempted_at: when posting the event's audit record was first tried;
--   a later attempt looks for that post in the channel before posting again;
-- message_posting_at: the same for a request's approval message.
ALTER TABLE events ADD COLUMN key TEXT NOT NULL DEFAULT '';
CREATE UNIQUE INDEX events_key ON events (key) WHERE key != '';
ALTER TABLE events ADD COLUMN audit_attempted_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE requests ADD COLUMN message_posting_at INTEGER NOT NULL DEFAULT 0;

-- Refused attempts are audited per actor, apart from the other events.
CREATE INDEX events_refused_due ON events (actor, seq) WHERE audited_at = 0 AND kind = 'refused';
CREATE INDEX events_refused_audited ON events (actor, audited_at) WHERE kind = 'refused';
