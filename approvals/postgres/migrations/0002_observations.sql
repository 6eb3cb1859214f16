-- What revokebot observes of a target besides its outcome: the identity
-- platform's preview before approval, the verification that its sessions
-- are gone, and the watch for its return, as one JSON text (see package
-- approvals/internal/observed). Two times are kept apart, and indexed, to
-- find the targets still observed: when a pending verification gives up,
-- and when a watch ends (0: neither).
ALTER TABLE targets ADD COLUMN observed text NOT NULL DEFAULT '';
ALTER TABLE targets ADD COLUMN check_pending_until bigint NOT NULL DEFAULT 0;
ALTER TABLE targets ADD COLUMN watch_until bigint NOT NULL DEFAULT 0;
CREATE INDEX targets_observed ON targets (request_id) WHERE check_pending_until <> 0 OR watch_until <> 0;
