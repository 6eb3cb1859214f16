package approvals

import (
	"context"
	"fmt"
	"slices"
)

// Audience is a set of people: listed users, and members of listed groups.
// The zero Audience includes nobody.
type Audience struct {
	Users  []string
	Groups []string
}

// Empty reports whether the audience lists nobody at all.
func (a Audience) Empty() bool { return len(a.Users) == 0 && len(a.Groups) == 0 }

// GroupDirectory resolves a group ID to the user IDs of its members.
type GroupDirectory interface {
	GroupMembers(ctx context.Context, groupID string) ([]string, error)
}

// Includes reports whether user is listed, or a member of a listed group.
// Groups are only looked up when the user is not listed directly. An error
// means membership could not be established; callers must treat it as "no".
func (a Audience) Includes(ctx context.Context, dir GroupDirectory, user string) (bool, error) {
	if user == "" {
		return false, nil
	}
	if slices.Contains(a.Users, user) {
		return true, nil
	}
	for _, g := range a.Groups {
		if dir == nil {
			return false, fmt.Errorf("resolve group %s: no group directory configured", g)
		}
		members, err := dir.GroupMembers(ctx, g)
		if err != nil {
			return false, fmt.Errorf("resolve group %s: %w", g, err)
		}
		if slices.Contains(members, user) {
			return true, nil
		}
	}
	return false, nil
}

// Policy says who may ask for a revocation and who may decide one.
// It denies by default: an empty audience allows nobody.
type Policy struct {
	Requesters Audience
	Approvers  Audience
}

// MayRequest reports whether user may submit revocation requests.
func (p Policy) MayRequest(ctx context.Context, dir GroupDirectory, user string) (bool, error) {
	return p.Requesters.Includes(ctx, dir, user)
}

// MayApprove reports whether user may approve req. Nobody may approve their
// own request, whatever the configured audiences say.
func (p Policy) MayApprove(ctx context.Context, dir GroupDirectory, user string, req Request) (bool, error) {
	if user == req.Requester {
		return false, nil
	}
	return p.Approvers.Includes(ctx, dir, user)
}
