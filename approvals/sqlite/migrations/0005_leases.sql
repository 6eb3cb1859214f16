-- Several replicas share the work: leases name who does a piece of work
-- (such as revoking a request's targets) until when, and each part of an
-- event's delivery may be claimed by one replica until a time. Times are
-- Unix milliseconds; an empty owner or a time past means unclaimed.
CREATE TABLE leases (
    name  TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    until INTEGER NOT NULL
);

ALTER TABLE events ADD COLUMN audit_claim_owner TEXT NOT NULL DEFAULT '';
ALTER TABLE events ADD COLUMN audit_claim_until INTEGER NOT NULL DEFAULT 0;
ALTER TABLE events ADD COLUMN message_claim_owner TEXT NOT NULL DEFAULT '';
ALTER TABLE events ADD COLUMN message_claim_until INTEGER NOT NULL DEFAULT 0;
ALTER TABLE events ADD COLUMN notice_claim_owner TEXT NOT NULL DEFAULT '';
ALTER TABLE events ADD COLUMN notice_claim_until INTEGER NOT NULL DEFAULT 0;
