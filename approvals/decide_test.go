package approvals_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/revokebot/revokebot/approvals"
)

// countKinds counts the events told about request id by kind.
func (f *fixture) countKinds(t *testing.T, id string) map[approvals.EventKind]int {
	t.Helper()
	out := map[approvals.EventKind]int{}
	for _, e := range f.events.all() {
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
	in := approvals.DecideInput{ID: r.ID, Actor: "U2", Decision: approvals.Deny, Reason: "false alarm", Key: "click:U2:1.000001"}
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
	_, err := f.svc.DecideFrom(ctx, out)
	wantError(t, err, approvals.EFORBIDDEN, approvals.WhyNotApprover)
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
	// Forbidden for not being an approver, not a conflict saying who decided.
	_, err := f.svc.Decide(ctx, r.ID, "U9", approvals.Approve)
	wantError(t, err, approvals.EFORBIDDEN, approvals.WhyNotApprover)
	// Nor through CheckDecider.
	_, err = f.svc.CheckDecider(ctx, approvals.DecideInput{ID: r.ID, Actor: "U9", Decision: approvals.Deny})
	wantError(t, err, approvals.EFORBIDDEN, approvals.WhyNotApprover)
}

func TestDecisionCountsOnlyOnTheRequestsOwnMessage(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	r := f.submit(t)

	// Before the message is recorded, a click cannot be checked: not counted.
	_, err := f.svc.DecideFrom(ctx, approvals.DecideInput{ID: r.ID, Actor: "U2", Decision: approvals.Approve,
		On: &approvals.MessageRef{Channel: r.Channel, TS: "1.0"}})
	wantError(t, err, approvals.EUNAVAILABLE, approvals.WhyMessageNotRecorded)
	if err := f.store.SetMessage(ctx, r.ID, "CSEC", "1700.1"); err != nil {
		t.Fatal(err)
	}
	for _, on := range []approvals.MessageRef{{Channel: "CSEC", TS: "1700.2"}, {Channel: "COTHER", TS: "1700.1"}, {}} {
		_, err := f.svc.DecideFrom(ctx, approvals.DecideInput{ID: r.ID, Actor: "U2", Decision: approvals.Approve, On: &on})
		wantError(t, err, approvals.EFORBIDDEN, approvals.WhyOtherMessage)
	}
	if n := f.revoker.calls.Load(); n != 0 {
		t.Fatalf("%d revocations from clicks on other messages", n)
	}
	if stored := f.get(t, r.ID); len(stored.Reviews) != 0 {
		t.Fatalf("reviews recorded from clicks on other messages: %+v", stored.Reviews)
	}
	got, err := f.svc.DecideFrom(ctx, approvals.DecideInput{ID: r.ID, Actor: "U2", Decision: approvals.Approve,
		On: &approvals.MessageRef{Channel: "CSEC", TS: "1700.1"}})
	if err != nil || got.State() != approvals.StateRevoked {
		t.Fatalf("click on the request's message: %v, %v", got.State(), err)
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
		Targets: []approvals.TargetInput{{Email: "a@example.com"}}, Options: approvals.Options{Devices: true}})
	e := wantError(t, err, approvals.EINVALID, approvals.WhyInvalid)
	if !strings.Contains(e.Message, "zone mode") {
		t.Fatalf("message %q, want the revoker's reason", e.Message)
	}
	if len(f.events.kinds()) != 0 {
		t.Fatalf("events recorded for a request the revoker cannot carry out: %v", f.events.kinds())
	}
}

func TestQuorumOfTwo(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.svc.Policy.RequiredApprovals = 2
	ctx := context.Background()
	r := f.submit(t, "alice@example.com", "bob@example.com")
	if got, want := r.Required, 2; got != want {
		t.Fatalf("Required = %d, want %d", got, want)
	}

	// The requester, though an approver, may not approve their own request.
	_, err := f.svc.Decide(ctx, r.ID, "U1", approvals.Approve)
	wantError(t, err, approvals.EFORBIDDEN, approvals.WhyOwnRequest)
	if last := f.events.last(t); last.Kind != approvals.EventRefused || last.Actor != "U1" {
		t.Fatalf("refused self-approval told as %+v", last)
	}
	if k := f.outboxKinds(t); !equalKinds(k, approvals.EventRequested, approvals.EventRefused) {
		t.Fatalf("recorded events %v", k)
	}

	// The first approval: still pending.
	got, err := f.svc.Decide(ctx, r.ID, "U2", approvals.Approve)
	if err != nil {
		t.Fatal(err)
	}
	if got.State() != approvals.StatePending || len(got.Approvals()) != 1 {
		t.Fatalf("after one approval: %s with %d approvals", got.State(), len(got.Approvals()))
	}
	if last := f.events.last(t); last.Kind != approvals.EventApproved || last.Detail != "1 of 2" ||
		last.Actor != "U2" || last.State != approvals.StatePending {
		t.Fatalf("first approval told as %+v", last)
	}
	if n := f.revoker.calls.Load(); n != 0 {
		t.Fatalf("%d revocations after one approval of two", n)
	}

	// The same approver again: a conflict, and nothing changes.
	before := f.get(t, r.ID)
	told, recorded := len(f.events.all()), len(f.recorded(t))
	_, err = f.svc.Decide(ctx, r.ID, "U2", approvals.Approve)
	wantError(t, err, approvals.ECONFLICT, approvals.WhyReviewed)
	after := f.get(t, r.ID)
	if after.Version != before.Version || len(after.Reviews) != 1 || after.State() != approvals.StatePending {
		t.Fatalf("a second approval by the same person changed the request: version %d → %d, %d reviews, %s",
			before.Version, after.Version, len(after.Reviews), after.State())
	}
	if len(f.events.all()) != told || len(f.recorded(t)) != recorded {
		t.Fatal("a second approval by the same person was recorded")
	}
	// Nor may they change their mind.
	_, err = f.svc.DecideFrom(ctx, approvals.DecideInput{ID: r.ID, Actor: "U2", Decision: approvals.Deny, Reason: "second thoughts"})
	wantError(t, err, approvals.ECONFLICT, approvals.WhyReviewed)

	// The second approver: executing, and only now revoked, once per target.
	got, err = f.svc.Decide(ctx, r.ID, "U3", approvals.Approve)
	if err != nil {
		t.Fatal(err)
	}
	var approved []approvals.Event
	for _, e := range f.events.all() {
		if e.Kind == approvals.EventApproved {
			approved = append(approved, e)
		}
	}
	if len(approved) != 2 || approved[1].Detail != "2 of 2" || approved[1].State != approvals.StateExecuting {
		t.Fatalf("approved events %+v", approved)
	}
	if got, want := f.revoker.revoked(), []string{"alice@example.com", "bob@example.com"}; !slices.Equal(got, want) {
		t.Fatalf("revoked %v, want %v", got, want)
	}
	if got.State() != approvals.StateRevoked {
		t.Fatalf("after two approvals: %s", got.State())
	}
	if k := f.outboxKinds(t); !equalKinds(k, approvals.EventRequested, approvals.EventRefused, approvals.EventApproved,
		approvals.EventApproved, approvals.EventRevoked, approvals.EventRevoked) {
		t.Fatalf("recorded events %v", k)
	}

	// A third approval comes too late.
	_, err = f.svc.Decide(ctx, r.ID, "U4", approvals.Approve)
	e := wantError(t, err, approvals.ECONFLICT, approvals.WhyDecided)
	if e.Request == nil || e.Request.State() != approvals.StateRevoked {
		t.Fatalf("conflict about %+v", e.Request)
	}
	if n := f.revoker.calls.Load(); n != 2 {
		t.Fatalf("%d revocations, want 2", n)
	}
}

func TestQuorumDenialAfterAnApproval(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.svc.Policy.RequiredApprovals = 2
	ctx := context.Background()
	r := f.submit(t)
	if _, err := f.svc.Decide(ctx, r.ID, "U2", approvals.Approve); err != nil {
		t.Fatal(err)
	}
	// One denial ends the request, whatever approvals it had.
	got, err := f.svc.DecideFrom(ctx, approvals.DecideInput{ID: r.ID, Actor: "U3", Decision: approvals.Deny, Reason: "not her laptop"})
	if err != nil || got.State() != approvals.StateDenied {
		t.Fatalf("deny after one approval: %s, %v", got.State(), err)
	}
	if n := f.revoker.calls.Load(); n != 0 {
		t.Fatalf("%d revocations of a denied request", n)
	}
}

func TestConcurrentApprovalsRevokeOnce(t *testing.T) {
	t.Parallel()
	for _, required := range []int{1, 2} {
		t.Run(fmt.Sprintf("quorum of %d", required), func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			f.revoker.delay = 20 * time.Millisecond
			f.svc.Policy.RequiredApprovals = required
			var approvers []string
			for i := range 20 {
				approvers = append(approvers, fmt.Sprintf("U%d", 100+i))
			}
			f.svc.Directory = directory{groups: map[string][]string{"SAPPROVERS": approvers}}
			r := f.submit(t, "alice@example.com", "bob@example.com", "carol@example.com")
			var (
				wg        sync.WaitGroup
				ok, confl atomic.Int32
			)
			for _, who := range approvers {
				wg.Go(func() {
					_, err := f.svc.Decide(context.Background(), r.ID, who, approvals.Approve)
					switch {
					case err == nil:
						ok.Add(1)
					case approvals.ErrorCode(err) == approvals.ECONFLICT && approvals.ErrorWhy(err) == approvals.WhyDecided:
						confl.Add(1)
					default:
						t.Errorf("decide by %s: %v", who, err)
					}
				})
			}
			wg.Wait()
			if got, want := int(ok.Load()), required; got != want {
				t.Fatalf("%d succeeded, %d conflicted; want %d successes", got, confl.Load(), want)
			}
			if got, want := int(confl.Load()), len(approvers)-required; got != want {
				t.Fatalf("%d conflicted, want %d", got, want)
			}
			got := f.revoker.revoked()
			slices.Sort(got)
			if want := []string{"alice@example.com", "bob@example.com", "carol@example.com"}; !slices.Equal(got, want) {
				t.Fatalf("revoked %v, want each of %v once", got, want)
			}
			stored := f.get(t, r.ID)
			if stored.State() != approvals.StateRevoked || len(stored.Reviews) != required {
				t.Fatalf("stored %s with %d reviews", stored.State(), len(stored.Reviews))
			}
		})
	}
}

func TestDenyNeedsAReason(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	r := f.submit(t)
	for _, reason := range []string{"", "  \n "} {
		_, err := f.svc.DecideFrom(ctx, approvals.DecideInput{ID: r.ID, Actor: "U2", Decision: approvals.Deny, Reason: reason})
		wantError(t, err, approvals.EINVALID, approvals.WhyReasonRequired)
	}
	_, err := f.svc.DecideFrom(ctx, approvals.DecideInput{ID: r.ID, Actor: "U2", Decision: approvals.Deny,
		Reason: strings.Repeat("x", approvals.MaxDenyReason+1)})
	wantError(t, err, approvals.EINVALID, approvals.WhyInvalid)
	// Nothing recorded.
	if stored := f.get(t, r.ID); stored.Version != 1 || len(stored.Reviews) != 0 || stored.State() != approvals.StatePending {
		t.Fatalf("stored %+v", stored)
	}
	if k := f.outboxKinds(t); !equalKinds(k, approvals.EventRequested) {
		t.Fatalf("recorded events %v", k)
	}

	// With a reason: denied, and the reason kept and told.
	got, err := f.svc.DecideFrom(ctx, approvals.DecideInput{ID: r.ID, Actor: "U2", Decision: approvals.Deny, Reason: " she found it \n"})
	if err != nil || got.State() != approvals.StateDenied {
		t.Fatalf("deny with a reason: %s, %v", got.State(), err)
	}
	stored := f.get(t, r.ID)
	if len(stored.Reviews) != 1 || stored.Reviews[0].Reason != "she found it" || stored.Reviews[0].Decision != approvals.Deny {
		t.Fatalf("reviews %+v", stored.Reviews)
	}
	if last := f.events.last(t); last.Kind != approvals.EventDenied || last.Detail != "she found it" || last.Actor != "U2" {
		t.Fatalf("denied event %+v", last)
	}
	recorded := f.recorded(t)
	if last := recorded[len(recorded)-1]; last.Kind != approvals.EventDenied || last.Detail != "she found it" {
		t.Fatalf("recorded denied event %+v", last)
	}

	// The requester withdraws without a reason: cancelled.
	r2 := f.submit(t)
	got, err = f.svc.DecideFrom(ctx, approvals.DecideInput{ID: r2.ID, Actor: "U1", Decision: approvals.Deny})
	if err != nil || got.State() != approvals.StateCancelled {
		t.Fatalf("requester's deny: %s, %v", got.State(), err)
	}
	if last := f.events.last(t); last.Kind != approvals.EventCancelled || last.Actor != "U1" {
		t.Fatalf("cancelled event %+v", last)
	}
	if n := f.revoker.calls.Load(); n != 0 {
		t.Fatalf("%d revocations", n)
	}
}

func TestCheckDeciderChangesNothing(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	r := f.submit(t)
	got, err := f.svc.CheckDecider(ctx, approvals.DecideInput{ID: r.ID, Actor: "U2", Decision: approvals.Deny})
	if err != nil || got.ID != r.ID {
		t.Fatalf("CheckDecider(approver) = %s, %v", got.ID, err)
	}
	_, err = f.svc.CheckDecider(ctx, approvals.DecideInput{ID: r.ID, Actor: "U1", Decision: approvals.Approve})
	wantError(t, err, approvals.EFORBIDDEN, approvals.WhyOwnRequest)
	if _, err := f.svc.CheckDecider(ctx, approvals.DecideInput{ID: r.ID, Actor: "U1", Decision: approvals.Deny}); err != nil {
		t.Fatalf("CheckDecider(requester cancels) = %v", err)
	}
	// Neither checked attempt is recorded: DecideFrom audits refusals.
	if k := f.outboxKinds(t); !equalKinds(k, approvals.EventRequested) {
		t.Fatalf("recorded events %v", k)
	}
	if _, err := f.svc.Decide(ctx, r.ID, "U2", approvals.Approve); err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.CheckDecider(ctx, approvals.DecideInput{ID: r.ID, Actor: "U2", Decision: approvals.Deny})
	wantError(t, err, approvals.ECONFLICT, approvals.WhyDecided)
}
