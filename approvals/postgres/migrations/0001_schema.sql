-- revokebot's schema for PostgreSQL, written fresh (SQLite's history is not
-- replayed). The domain's times (millisecond precision, zero meaning unset)
-- are bigint Unix milliseconds, 0 for unset, as in the SQLite store, so that
-- both map them alike. Leases, delivery claims and rate budgets are
-- timestamptz on the server's clock, which every replica shares.
--
-- IDs and names are COLLATE "C": byte order, so that a range on the primary
-- key finds an ID prefix and listings order as in SQLite.

CREATE TABLE requests (
    id                 text COLLATE "C" PRIMARY KEY,
    requester          text NOT NULL,
    reason             text NOT NULL DEFAULT '',
    devices            boolean NOT NULL DEFAULT false,
    warp_reauth        boolean NOT NULL DEFAULT false,
    user_uid           text NOT NULL DEFAULT '',
    state              text NOT NULL,      -- computed from the rest (approvals.Request.State), for listing
    dry_run            boolean NOT NULL DEFAULT false,
    required_approvals integer NOT NULL DEFAULT 1,
    submit_key         text NOT NULL DEFAULT '',
    version            bigint NOT NULL DEFAULT 1,
    created_at         bigint NOT NULL,
    expires_at         bigint NOT NULL,
    escalated_at       bigint NOT NULL DEFAULT 0,
    expired_at         bigint NOT NULL DEFAULT 0,
    finished_at        bigint NOT NULL DEFAULT 0,
    refusal            text NOT NULL DEFAULT '',
    channel            text NOT NULL DEFAULT '',
    message_ts         text NOT NULL DEFAULT '',
    message_posting_at bigint NOT NULL DEFAULT 0  -- when posting the approval message was first tried
);

-- A redelivered command (same submission) makes no second request.
CREATE UNIQUE INDEX requests_submit_key ON requests (submit_key) WHERE submit_key <> '';
CREATE INDEX requests_state ON requests (state, created_at, id);
CREATE INDEX requests_requester_state ON requests (requester, state);

CREATE TABLE targets (
    request_id  text COLLATE "C" NOT NULL REFERENCES requests (id),
    position    integer NOT NULL,          -- 0-based, in the order named
    email       text NOT NULL,
    person      text NOT NULL DEFAULT '',  -- chat user the email was resolved from
    state       text NOT NULL CHECK (state IN ('waiting', 'revoked', 'failed')),
    outcome     text NOT NULL DEFAULT '',
    finished_at bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (request_id, position)
);

-- One review per (request, person): the primary key is the invariant.
CREATE TABLE reviews (
    request_id text COLLATE "C" NOT NULL REFERENCES requests (id),
    reviewer   text NOT NULL,
    decision   text NOT NULL CHECK (decision IN ('approve', 'deny')),
    reason     text NOT NULL DEFAULT '',
    at         bigint NOT NULL,
    seq        integer NOT NULL,           -- order of the reviews of one request
    CONSTRAINT reviews_pkey PRIMARY KEY (request_id, reviewer)
);

-- The event log, which is also the outbox of deliveries to chat: an event is
-- written in the same transaction as the change it records. Each of its
-- three parts (audit record, message update, notice) is marked done apart,
-- and may be claimed by one replica for a while (owner, until) so that
-- replicas never deliver the same part twice. Rows are never deleted.
CREATE TABLE events (
    seq                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    request_id          text COLLATE "C" NOT NULL REFERENCES requests (id),
    kind                text NOT NULL,
    state               text NOT NULL,           -- the request's state after the event
    actor               text NOT NULL DEFAULT '',
    detail              text NOT NULL DEFAULT '',
    target              text NOT NULL DEFAULT '',
    at                  bigint NOT NULL,
    key                 text NOT NULL DEFAULT '', -- the person's action (one click), recorded once

    audited_at          bigint NOT NULL DEFAULT 0, -- 0: audit record not delivered yet
    audit_attempted_at  bigint NOT NULL DEFAULT 0,
    audit_claim_owner   text NOT NULL DEFAULT '',
    audit_claim_until   timestamptz,

    message_due         boolean NOT NULL DEFAULT false,
    message_updated_at  bigint NOT NULL DEFAULT 0,
    message_claim_owner text NOT NULL DEFAULT '',
    message_claim_until timestamptz,

    notice_due          boolean NOT NULL DEFAULT false,
    notice_attempted_at bigint NOT NULL DEFAULT 0,
    notice_done_at      bigint NOT NULL DEFAULT 0,
    notice_claim_owner  text NOT NULL DEFAULT '',
    notice_claim_until  timestamptz
);

CREATE UNIQUE INDEX events_key ON events (key) WHERE key <> '';
CREATE INDEX events_request ON events (request_id, seq);
-- The deliveries still to do, each part on its own small index.
CREATE INDEX events_audit_due ON events (seq) WHERE audited_at = 0;
CREATE INDEX events_message_due ON events (seq) WHERE message_due AND message_updated_at = 0;
CREATE INDEX events_notice_due ON events (seq) WHERE notice_due AND notice_done_at = 0;
-- Refused attempts are audited per actor, apart from the other events.
CREATE INDEX events_refused_due ON events (actor, seq) WHERE audited_at = 0 AND kind = 'refused';
CREATE INDEX events_refused_audited ON events (actor, audited_at) WHERE kind = 'refused';

-- Named leases on work (approvals.Leases), on the server's clock.
CREATE TABLE leases (
    name  text COLLATE "C" PRIMARY KEY,
    owner text NOT NULL,
    until timestamptz NOT NULL
);

-- Shared rate budgets (DB.Reserve): the theoretical arrival time of GCRA.
CREATE TABLE rate_budgets (
    name text COLLATE "C" PRIMARY KEY,
    tat  timestamptz NOT NULL
);
