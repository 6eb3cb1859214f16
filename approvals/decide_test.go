package approvals_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/revokebot/revokebot/approvals"
)

// countKinds counts the recorded events of request id by kind.
func (f *fixture) countKinds(t *testing.T, id string) map[approvals.EventKind]int {
	t.Helper()
	out := map[approvals.EventKind]int{}
	for _, e := range f.events.events {
		if e.Request.ID == id {
			out[e.Kind]++
		}
	}
	return out
}

func TestRedeliveredClickIsDecidedOnce(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	r := f.submit(t)
	in := approvals.DecideInput{ID: r.ID, Actor: "U2", Decision: approvals.Deny, Key: "click:U2:1.000001"}
	if _, err := f.svc.DecideFrom(ctx, in); err != nil {
		t.Fatal(err)
	}
	// The same click again (Slack redelivered it): nothing, not even the
	// "already denied" reply a second click would get.
	if _, err := f.svc.DecideFrom(ctx, in); !errors.Is(err, approvals.ErrDuplicate) {
		t.Fatalf("redelivered click: err = %v, want ErrDuplicate", err)
	}

	// A refused click, redelivered, is recorded once.
	r2 := f.submit(t)
	out := approvals.DecideInput{ID: r2.ID, Actor: "U9", Decision: approvals.Approve, Key: "click:U9:2.000001"}
	if _, err := f.svc.DecideFrom(ctx, out); approvals.ErrorCode(err) != approvals.EFORBIDDEN {
		t.Fatalf("outsider: %v", err)
	}
	if _, err := f.svc.DecideFrom(ctx, out); !errors.Is(err, approvals.ErrDuplicate) {
		t.Fatalf("redelivered refused click: err = %v, want ErrDuplicate", err)
	}
	if n := f.countKinds(t, r2.ID)[approvals.EventRefused]; n != 1 {
		t.Fatalf("%d refused events for one click, want 1", n)
	}
	// The key is durable: it holds for a new service on the same store.
	svc2 := &approvals.Service{Store: f.store, Revoker: f.revoker, Policy: f.svc.Policy, Directory: f.svc.Directory, Now: f.clock.Now}
	if _, err := svc2.DecideFrom(ctx, in); !errors.Is(err, approvals.ErrDuplicate) {
		t.Fatalf("after a restart: err = %v, want ErrDuplicate", err)
	}
}

func TestOutsiderLearnsNothingOfADecidedRequest(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	r := f.submit(t)
	if _, err := f.svc.Decide(ctx, r.ID, "U2", approvals.Deny); err != nil {
		t.Fatal(err)
	}
	_, err := f.svc.Decide(ctx, r.ID, "U9", approvals.Approve)
	if approvals.ErrorCode(err) != approvals.EFORBIDDEN {
		t.Fatalf("outsider on a decided request: %v, want forbidden (not who decided)", err)
	}
	var e *approvals.Error
	if errors.As(err, &e) && strings.Contains(e.Message, "denied") {
		t.Fatalf("outsider told the state: %q", e.Message)
	}
}

func TestDecisionCountsOnlyOnTheRequestsOwnMessage(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	r := f.submit(t)

	// Before the message is recorded, a click cannot be checked: not counted.
	_, err := f.svc.DecideFrom(ctx, approvals.DecideInput{ID: r.ID, Actor: "U2", Decision: approvals.Approve,
		On: &approvals.MessageRef{Channel: r.Channel, TS: "1.0"}})
	if approvals.ErrorCode(err) != approvals.EUNAVAILABLE {
		t.Fatalf("click before the message is recorded: %v, want unavailable", err)
	}
	if err := f.store.SetMessage(ctx, r.ID, "CSEC", "1700.1"); err != nil {
		t.Fatal(err)
	}
	for _, on := range []approvals.MessageRef{{Channel: "CSEC", TS: "1700.2"}, {Channel: "COTHER", TS: "1700.1"}, {}} {
		_, err := f.svc.DecideFrom(ctx, approvals.DecideInput{ID: r.ID, Actor: "U2", Decision: approvals.Approve, On: &on})
		if approvals.ErrorCode(err) != approvals.EFORBIDDEN {
			t.Fatalf("click on %+v: %v, want forbidden", on, err)
		}
	}
	if n := f.revoker.calls.Load(); n != 0 {
		t.Fatalf("%d revocations from clicks on other messages", n)
	}
	got, err := f.svc.DecideFrom(ctx, approvals.DecideInput{ID: r.ID, Actor: "U2", Decision: approvals.Approve,
		On: &approvals.MessageRef{Channel: "CSEC", TS: "1700.1"}})
	if err != nil || got.State != approvals.StateRevoked {
		t.Fatalf("click on the request's message: %v, %v", got.State, err)
	}
}

// checkingRevoker refuses every revocation with devices.
type checkingRevoker struct{ fakeRevoker }

func (c *checkingRevoker) CheckRevocation(r approvals.Revocation) error {
	if r.Devices {
		return errors.New("--devices cannot be used in zone mode")
	}
	return nil
}

func TestSubmitAsksTheRevokerFirst(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.svc.Revoker = &checkingRevoker{}
	_, err := f.svc.Submit(context.Background(), approvals.SubmitInput{Requester: "U1",
		Revocation: approvals.Revocation{Email: "a@example.com", Devices: true}})
	if approvals.ErrorCode(err) != approvals.EINVALID || !strings.Contains(approvals.ErrorMessage(err), "zone mode") {
		t.Fatalf("err = %v, want invalid with the revoker's reason", err)
	}
	if len(f.events.kinds()) != 0 {
		t.Fatalf("events recorded for a request the revoker cannot carry out: %v", f.events.kinds())
	}
}
