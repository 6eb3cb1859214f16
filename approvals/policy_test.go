package approvals_test

import (
	"context"
	"errors"
	"testing"

	"github.com/revokebot/revokebot/approvals"
)

// directory is a fake chat directory. Users not in people are full members
// of the workspace; a lookup of a user in down fails.
type directory struct {
	groups map[string][]string
	people map[string]approvals.Person
	down   map[string]bool
}

func (d directory) GroupMembers(_ context.Context, id string) ([]string, error) {
	m, ok := d.groups[id]
	if !ok {
		return nil, errors.New("no such group")
	}
	return m, nil
}

func (d directory) Person(_ context.Context, user string) (approvals.Person, error) {
	if d.down[user] {
		return approvals.Person{}, errors.New("users.info: ratelimited")
	}
	if p, ok := d.people[user]; ok {
		return p, nil
	}
	return approvals.Person{ID: user, Name: "user " + user}, nil
}

func TestPolicy(t *testing.T) {
	t.Parallel()
	dir := directory{groups: map[string][]string{"S1": {"U10", "U11"}}}
	p := approvals.Policy{
		Requesters: approvals.Audience{Users: []string{"U1"}, Groups: []string{"S1"}},
		Approvers:  approvals.Audience{Users: []string{"U2", "U1"}},
	}
	ctx := context.Background()
	for _, tt := range []struct {
		user string
		want approvals.Why
	}{{"U1", ""}, {"U10", ""}, {"U11", ""}, {"U2", approvals.WhyNotRequester}, {"", approvals.WhyNotRequester}, {"U99", approvals.WhyNotRequester}} {
		if got, err := p.MayRequest(ctx, dir, tt.user); err != nil || got != tt.want {
			t.Errorf("MayRequest(%q) = %q, %v; want %q", tt.user, got, err, tt.want)
		}
	}
	req := approvals.Request{Requester: "U1"}
	for _, tt := range []struct {
		user string
		want approvals.Why
	}{{"U1", approvals.WhyOwnRequest}, {"U2", ""}, {"U10", approvals.WhyNotApprover}} {
		if got, err := p.MayApprove(ctx, dir, tt.user, req); err != nil || got != tt.want {
			t.Errorf("MayApprove(%q) = %q, %v; want %q", tt.user, got, err, tt.want)
		}
	}
	// Requesters and approvers may view; nobody else.
	for _, tt := range []struct {
		user string
		want approvals.Why
	}{{"U1", ""}, {"U2", ""}, {"U10", ""}, {"U99", approvals.WhyNotRequester}} {
		if got, err := p.MayView(ctx, dir, tt.user); err != nil || got != tt.want {
			t.Errorf("MayView(%q) = %q, %v; want %q", tt.user, got, err, tt.want)
		}
	}
}

func TestPolicyDeniesByDefault(t *testing.T) {
	t.Parallel()
	var p approvals.Policy
	ctx := context.Background()
	if why, err := p.MayRequest(ctx, directory{}, "U1"); why != approvals.WhyNotRequester || err != nil {
		t.Fatalf("zero policy: MayRequest = %q, %v; want %q", why, err, approvals.WhyNotRequester)
	}
	if why, err := p.MayApprove(ctx, directory{}, "U2", approvals.Request{Requester: "U1"}); why != approvals.WhyNotApprover || err != nil {
		t.Fatalf("zero policy: MayApprove = %q, %v; want %q", why, err, approvals.WhyNotApprover)
	}
	if why, _ := p.MayView(ctx, directory{}, "U1"); why == "" {
		t.Fatal("zero policy lets someone view")
	}
}

func TestPolicyGroupErrorIsNo(t *testing.T) {
	t.Parallel()
	p := approvals.Policy{Requesters: approvals.Audience{Groups: []string{"SMISSING"}}}
	why, err := p.MayRequest(context.Background(), directory{}, "U1")
	if why != approvals.WhyUnverified || err == nil {
		t.Fatalf("MayRequest = %q, %v; want %q and an error", why, err, approvals.WhyUnverified)
	}
	why, err = p.MayRequest(context.Background(), nil, "U1")
	if why != approvals.WhyUnverified || err == nil {
		t.Fatalf("nil directory: MayRequest = %q, %v; want %q and an error", why, err, approvals.WhyUnverified)
	}
}

// guestDirectory knows U1 (a member), guests UG and UG2, externals UX and
// UX2, a bot UB, a deleted user UD, and UDOWN whose lookup fails; group S1
// holds UG2 and UX2.
func guestDirectory() directory {
	return directory{
		groups: map[string][]string{"S1": {"UG2", "UX2", "UM2"}},
		people: map[string]approvals.Person{
			"UG":  {ID: "UG", Guest: true},
			"UG2": {ID: "UG2", Guest: true},
			"UX":  {ID: "UX", External: true},
			"UX2": {ID: "UX2", External: true, Guest: true},
			"UB":  {ID: "UB", Bot: true},
			"UD":  {ID: "UD", Deleted: true},
		},
		down: map[string]bool{"UDOWN": true},
	}
}

func TestPolicyRefusesGuestsAndExternalUsers(t *testing.T) {
	t.Parallel()
	dir := guestDirectory()
	listed := approvals.Audience{Users: []string{"U1", "UG", "UX", "UB", "UD", "UDOWN"}, Groups: []string{"S1"}}
	p := approvals.Policy{Requesters: listed, Approvers: listed}
	req := approvals.Request{Requester: "U9"}
	ctx := context.Background()
	for _, tt := range []struct {
		user      string
		want      approvals.Why
		wantError bool
	}{
		{"U1", "", false},
		{"UM2", "", false}, // a member through the group
		{"UG", approvals.WhyGuest, false},
		{"UG2", approvals.WhyGuest, false},
		{"UX", approvals.WhyExternal, false},
		{"UX2", approvals.WhyExternal, false},
		{"UDOWN", approvals.WhyUnverified, true},
	} {
		why, err := p.MayRequest(ctx, dir, tt.user)
		if why != tt.want || (err != nil) != tt.wantError {
			t.Errorf("MayRequest(%s) = %q, %v; want %q (error: %t)", tt.user, why, err, tt.want, tt.wantError)
		}
		why, err = p.MayApprove(ctx, dir, tt.user, req)
		if why != tt.want || (err != nil) != tt.wantError {
			t.Errorf("MayApprove(%s) = %q, %v; want %q (error: %t)", tt.user, why, err, tt.want, tt.wantError)
		}
		why, err = p.MayView(ctx, dir, tt.user)
		if why != tt.want || (err != nil) != tt.wantError {
			t.Errorf("MayView(%s) = %q, %v; want %q (error: %t)", tt.user, why, err, tt.want, tt.wantError)
		}
	}
	// Bots and deleted users count as not listed.
	for _, user := range []string{"UB", "UD"} {
		if why, _ := p.MayRequest(ctx, dir, user); why != approvals.WhyNotRequester {
			t.Errorf("MayRequest(%s) = %q, want %q", user, why, approvals.WhyNotRequester)
		}
		if why, _ := p.MayApprove(ctx, dir, user, req); why != approvals.WhyNotApprover {
			t.Errorf("MayApprove(%s) = %q, want %q", user, why, approvals.WhyNotApprover)
		}
	}
	// Someone listed nowhere is not looked up at all: not listed, no error.
	if why, err := p.MayRequest(ctx, directory{groups: dir.groups, down: map[string]bool{"U77": true}}, "U77"); why != approvals.WhyNotRequester || err != nil {
		t.Errorf("MayRequest(unlisted) = %q, %v; want %q", why, err, approvals.WhyNotRequester)
	}
}

func TestPolicyEscalationApprovers(t *testing.T) {
	t.Parallel()
	dir := directory{}
	p := approvals.Policy{
		Approvers:           approvals.Audience{Users: []string{"U2"}},
		EscalationApprovers: approvals.Audience{Users: []string{"U5"}},
	}
	req := approvals.Request{Requester: "U1"}
	ctx := context.Background()
	if why, err := p.MayApprove(ctx, dir, "U5", req); why != approvals.WhyNotApprover || err != nil {
		t.Fatalf("before escalation: MayApprove(U5) = %q, %v; want %q", why, err, approvals.WhyNotApprover)
	}
	req.EscalatedAt = t0
	if why, err := p.MayApprove(ctx, dir, "U5", req); why != "" || err != nil {
		t.Fatalf("after escalation: MayApprove(U5) = %q, %v; want allowed", why, err)
	}
	if why, err := p.MayApprove(ctx, dir, "U2", req); why != "" || err != nil {
		t.Fatalf("after escalation: MayApprove(U2) = %q, %v; want allowed", why, err)
	}
	// Escalation approvers may view requests.
	if why, err := p.MayView(ctx, dir, "U5"); why != "" || err != nil {
		t.Fatalf("MayView(U5) = %q, %v; want allowed", why, err)
	}
}
