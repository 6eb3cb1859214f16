-- The event log becomes a hash chain (see approvals/chain.go): each event
-- carries hash = SHA-256(previous hash ‖ its canonical encoding). Events
-- recorded before this migration are chained when the database is opened.
ALTER TABLE events ADD COLUMN hash text NOT NULL DEFAULT '';
