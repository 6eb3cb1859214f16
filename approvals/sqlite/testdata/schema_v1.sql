-- The schema of revokebot's first release (migration 0001, user_version 1),
-- frozen here to test upgrades from it. Do not edit.
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
PRAGMA user_version = 1;
INSERT INTO requests (id, email, devices, requester, state, created_at, expires_at, channel, message_ts)
VALUES ('7d4f8e9a-1c2b-4d3e-8f5a-6b7c8d9e0f1a', 'alice@example.com', 1, 'U1', 'pending',
        1764158400000, 1764160200000, 'C1', '1764158400.000100');
