-- The event log, which is also the outbox of deliveries to chat: an event is
-- written in the same transaction as the state change it records, and marked
-- once its audit record (and, for a state change, the request message update)
-- reached Slack. Rows are never deleted: this is the local audit history.
CREATE TABLE events (
    seq                INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id         TEXT NOT NULL REFERENCES requests (id),
    kind               TEXT NOT NULL,
    state              TEXT NOT NULL,            -- the request's state after the event
    actor              TEXT NOT NULL DEFAULT '',
    detail             TEXT NOT NULL DEFAULT '',
    at                 INTEGER NOT NULL,
    audited_at         INTEGER NOT NULL DEFAULT 0,  -- 0: audit record not delivered yet
    message_due        INTEGER NOT NULL DEFAULT 0,  -- 1: the request message must be redrawn
    message_updated_at INTEGER NOT NULL DEFAULT 0
);

CREATE INDEX events_audit_due ON events (seq) WHERE audited_at = 0;
CREATE INDEX events_message_due ON events (seq) WHERE (message_due = 1 AND message_updated_at = 0);
CREATE INDEX events_request ON events (request_id, seq);

-- Identifies a submission (the Slack envelope that carried /revoke), so that a
-- redelivered command does not make a second request, even after a restart.
ALTER TABLE requests ADD COLUMN submit_key TEXT NOT NULL DEFAULT '';
CREATE UNIQUE INDEX requests_submit_key ON requests (submit_key) WHERE submit_key != '';

CREATE INDEX requests_requester_state ON requests (requester, state);
