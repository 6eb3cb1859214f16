package approvals_test

import (
	"context"
	"errors"
	"testing"

	"github.com/revokebot/revokebot/approvals"
)

type directory map[string][]string

func (d directory) GroupMembers(_ context.Context, id string) ([]string, error) {
	m, ok := d[id]
	if !ok {
		return nil, errors.New("no such group")
	}
	return m, nil
}

func TestPolicy(t *testing.T) {
	t.Parallel()
	dir := directory{"S1": {"U10", "U11"}}
	p := approvals.Policy{
		Requesters: approvals.Audience{Users: []string{"U1"}, Groups: []string{"S1"}},
		Approvers:  approvals.Audience{Users: []string{"U2", "U1"}},
	}
	ctx := context.Background()
	for _, tt := range []struct {
		user string
		want bool
	}{{"U1", true}, {"U10", true}, {"U11", true}, {"U2", false}, {"", false}, {"U99", false}} {
		got, err := p.MayRequest(ctx, dir, tt.user)
		if err != nil || got != tt.want {
			t.Errorf("MayRequest(%q) = %v, %v; want %v", tt.user, got, err, tt.want)
		}
	}
	req := approvals.Request{Requester: "U1"}
	if ok, _ := p.MayApprove(ctx, dir, "U1", req); ok {
		t.Error("requester may approve their own request")
	}
	if ok, _ := p.MayApprove(ctx, dir, "U2", req); !ok {
		t.Error("approver U2 may not approve")
	}
	if ok, _ := p.MayApprove(ctx, dir, "U10", req); ok {
		t.Error("non-approver U10 may approve")
	}
}

func TestPolicyDeniesByDefault(t *testing.T) {
	t.Parallel()
	var p approvals.Policy
	if ok, err := p.MayRequest(context.Background(), directory{}, "U1"); ok || err != nil {
		t.Fatalf("zero policy: MayRequest = %v, %v", ok, err)
	}
	if ok, _ := p.MayApprove(context.Background(), directory{}, "U2", approvals.Request{Requester: "U1"}); ok {
		t.Fatal("zero policy lets someone approve")
	}
}

func TestPolicyGroupErrorIsNo(t *testing.T) {
	t.Parallel()
	p := approvals.Policy{Requesters: approvals.Audience{Groups: []string{"SMISSING"}}}
	ok, err := p.MayRequest(context.Background(), directory{}, "U1")
	if ok || err == nil {
		t.Fatalf("MayRequest = %v, %v; want false and an error", ok, err)
	}
	ok, err = p.MayRequest(context.Background(), nil, "U1")
	if ok || err == nil {
		t.Fatalf("nil directory: MayRequest = %v, %v; want false and an error", ok, err)
	}
}
