-- A request becomes an aggregate: several targets, each with its own
-- outcome; reviews by several approvers; a version for optimistic updates.
-- Every existing request becomes a one-target aggregate with the review
-- that decided it. The old single-target columns (email, decided_by,
-- decided_at, outcome) stay as they were for old rows; new rows fill email
-- with the first target's and leave the others empty.
ALTER TABLE requests ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
ALTER TABLE requests ADD COLUMN required_approvals INTEGER NOT NULL DEFAULT 1;
ALTER TABLE requests ADD COLUMN escalated_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE requests ADD COLUMN expired_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE requests ADD COLUMN refusal TEXT NOT NULL DEFAULT '';

UPDATE requests SET expired_at = CASE WHEN finished_at != 0 THEN finished_at ELSE expires_at END
    WHERE state = 'expired';
UPDATE requests SET refusal = CASE WHEN outcome != '' THEN outcome ELSE 'refused' END
    WHERE state = 'refused';

CREATE TABLE targets (
    request_id  TEXT NOT NULL REFERENCES requests (id),
    position    INTEGER NOT NULL,          -- 0-based, in the order named
    email       TEXT NOT NULL,
    person      TEXT NOT NULL DEFAULT '',  -- chat user the email was resolved from
    state       TEXT NOT NULL,             -- waiting | revoked | failed
    outcome     TEXT NOT NULL DEFAULT '',
    finished_at INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (request_id, position)
);

INSERT INTO targets (request_id, position, email, state, outcome, finished_at)
SELECT id, 0, email,
       CASE state WHEN 'revoked' THEN 'revoked' WHEN 'failed' THEN 'failed' ELSE 'waiting' END,
       CASE WHEN state IN ('revoked', 'failed') THEN outcome ELSE '' END,
       CASE WHEN state IN ('revoked', 'failed') THEN finished_at ELSE 0 END
FROM requests;

-- One review per (request, person): the primary key is the invariant.
CREATE TABLE reviews (
    request_id TEXT NOT NULL REFERENCES requests (id),
    reviewer   TEXT NOT NULL,
    decision   TEXT NOT NULL,            -- approve | deny (the requester's deny: cancelled)
    reason     TEXT NOT NULL DEFAULT '',
    at         INTEGER NOT NULL,
    seq        INTEGER NOT NULL,         -- order of the reviews of one request
    PRIMARY KEY (request_id, reviewer)
);

-- A decided row always named who decided; one that does not (edited by
-- hand) keeps its state through a review by "(unknown)", never turning back
-- into a pending request.
INSERT INTO reviews (request_id, reviewer, decision, at, seq)
SELECT id, CASE WHEN decided_by != '' THEN decided_by ELSE '(unknown)' END,
       CASE WHEN state IN ('executing', 'revoked', 'failed') THEN 'approve' ELSE 'deny' END,
       CASE WHEN decided_at != 0 THEN decided_at ELSE finished_at END, 0
FROM requests
WHERE state IN ('executing', 'revoked', 'failed', 'denied', 'cancelled');

-- Events name the target they are about, and may carry a notice (a thread
-- post or a direct message) to deliver; old events carry none.
ALTER TABLE events ADD COLUMN target TEXT NOT NULL DEFAULT '';
UPDATE events SET target = (SELECT r.email FROM requests r WHERE r.id = events.request_id)
    WHERE kind IN ('revoked', 'failed');
ALTER TABLE events ADD COLUMN notice_due INTEGER NOT NULL DEFAULT 0;
ALTER TABLE events ADD COLUMN notice_attempted_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE events ADD COLUMN notice_done_at INTEGER NOT NULL DEFAULT 0;
CREATE INDEX events_notice_due ON events (seq) WHERE (notice_due = 1 AND notice_done_at = 0);
