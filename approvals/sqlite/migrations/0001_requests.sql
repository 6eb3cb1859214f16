-- Requests and everything that happened to them. Times are Unix milliseconds, UTC.
CREATE TABLE requests (
    id           TEXT PRIMARY KEY,
    email        TEXT NOT NULL,
    devices      INTEGER NOT NULL DEFAULT 0,
    warp_reauth  INTEGER NOT NULL DEFAULT 0,
    user_uid     TEXT NOT NULL DEFAULT '',
    reason       TEXT NOT NULL DEFAULT '',
    requester    TEXT NOT NULL,
    state        TEXT NOT NULL,
    dry_run      INTEGER NOT NULL DEFAULT 0,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    decided_by   TEXT NOT NULL DEFAULT '',
    decided_at   INTEGER NOT NULL DEFAULT 0,
    outcome      TEXT NOT NULL DEFAULT '',
    finished_at  INTEGER NOT NULL DEFAULT 0,
    channel      TEXT NOT NULL DEFAULT '',
    message_ts   TEXT NOT NULL DEFAULT ''
);

CREATE INDEX requests_state ON requests (state, created_at);
