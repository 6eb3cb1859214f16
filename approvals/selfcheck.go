package approvals

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// AuditRequestID is the request that the audit trail's own records (the
// self-check's checked and tampered events) belong to, since every event
// belongs to a request. It is made with the first of them, is refused
// (never pending, never revoked), names nobody, and is no request of
// anyone's: Status and the lists leave it out.
const AuditRequestID = "00000000-0000-0000-0000-000000000000"

// auditSubmitKey identifies the creation of the audit's own request.
const auditSubmitKey = "revokebot:audit-trail"

// RecordSelfCheck records the result of a self-check of the audit trail as
// a checked event (ok) or a tampered one, with detail saying what was
// compared or what differs. The record is part of the chain like any
// other.
func (s *Service) RecordSelfCheck(ctx context.Context, ok bool, detail string) error {
	now := s.now()
	e := Event{Kind: EventChecked, Detail: detail, At: now}
	if !ok {
		e.Kind = EventTampered
	}
	audit := Request{
		ID:         AuditRequestID,
		Targets:    []Target{{Email: "(the audit trail)", State: TargetWaiting}},
		Reason:     "the audit trail's own records",
		Requester:  "revokebot",
		Required:   1,
		SubmitKey:  auditSubmitKey,
		Refusal:    "not a request: the audit trail's own records",
		CreatedAt:  now,
		ExpiresAt:  now,
		FinishedAt: now,
	}
	e.Request, e.State = audit, StateRefused
	err := s.Store.Create(ctx, audit, e, 0)
	if errors.Is(err, ErrDuplicate) {
		e.Request = Request{ID: AuditRequestID}
		err = s.Store.Append(ctx, e)
	}
	if err != nil {
		return fmt.Errorf("record the audit self-check (%s): %w", e.Kind, err)
	}
	s.announce(ctx, e)
	return nil
}

// RunSelfCheck runs check every interval until ctx ends, on the one replica
// holding the lease SelfCheckLease, and records each result (see
// RecordSelfCheck). check returns whether everything matched, and the
// record's detail.
func (s *Service) RunSelfCheck(ctx context.Context, interval time.Duration, check func(context.Context) (bool, string, error)) {
	owner := s.replica() + "/audit"
	t := time.NewTicker(interval)
	defer t.Stop()
	// The first check comes soon after the start, not an interval later:
	// a replica restarted more often than the interval still checks.
	first := time.NewTimer(min(interval, time.Minute))
	defer first.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-first.C:
		case <-t.C:
		}
		// The lease lasts one interval: whoever holds it checks once per
		// interval, whatever the number of replicas.
		held, err := s.Store.Lease(ctx, SelfCheckLease, owner, interval)
		if err != nil || !held {
			continue
		}
		ok, detail, err := check(ctx)
		if err != nil {
			if ctx.Err() == nil {
				s.logger().ErrorContext(ctx, "audit self-check", "err", err)
			}
			continue
		}
		if err := s.RecordSelfCheck(context.WithoutCancel(ctx), ok, detail); err != nil {
			s.logger().ErrorContext(ctx, "record the audit self-check", "err", err)
		}
	}
}

// SelfCheckLease is the lease of the replica that runs the audit self-check.
const SelfCheckLease = "audit-self-check"
