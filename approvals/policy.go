package approvals

import (
	"context"
	"errors"
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

// Person is what the chat directory says of a user.
type Person struct {
	ID    string
	Name  string
	Email string
	// Bot and Deleted users cannot be revocation targets by mention, nor act.
	Bot     bool
	Deleted bool
	// Guest: a single- or multi-channel guest of the workspace.
	Guest bool
	// External: a member of another organisation (a Slack Connect user).
	External bool
}

// Directory is the chat directory: groups, and people.
type Directory interface {
	GroupDirectory
	// Person returns what the directory says of user. An error means it
	// could not be established; callers must treat it as "not allowed".
	Person(ctx context.Context, user string) (Person, error)
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

// Policy says who may ask for a revocation, who may decide one, and how many
// must approve. It denies by default: an empty audience allows nobody.
type Policy struct {
	Requesters Audience
	Approvers  Audience
	// EscalationApprovers may also approve a request once it is escalated.
	EscalationApprovers Audience
	// RequiredApprovals is how many distinct approvers (never the requester)
	// must approve a request before it is carried out. Zero means 1.
	RequiredApprovals int
}

// MayRequest says whether user may submit revocation requests: "" if so, or
// the fact why not. An error means it could not be established (the answer
// is then WhyUnverified).
func (p Policy) MayRequest(ctx context.Context, dir Directory, user string) (Why, error) {
	return check(ctx, dir, user, WhyNotRequester, p.Requesters)
}

// MayApprove says whether user may approve req: "" if so, or the fact why
// not. Nobody may approve their own request, whatever the configured
// audiences say; the escalation approvers may once req is escalated.
func (p Policy) MayApprove(ctx context.Context, dir Directory, user string, req Request) (Why, error) {
	if user == req.Requester {
		return WhyOwnRequest, nil
	}
	audiences := []Audience{p.Approvers}
	if !req.EscalatedAt.IsZero() {
		audiences = append(audiences, p.EscalationApprovers)
	}
	return check(ctx, dir, user, WhyNotApprover, audiences...)
}

// MayView says whether user may read requests (status, pending): requesters
// and approvers may.
func (p Policy) MayView(ctx context.Context, dir Directory, user string) (Why, error) {
	return check(ctx, dir, user, WhyNotRequester, p.Requesters, p.Approvers, p.EscalationApprovers)
}

// check says whether user is in one of the audiences and a full member of
// the workspace: "" if so, else the fact why not (notListed if in none).
func check(ctx context.Context, dir Directory, user string, notListed Why, audiences ...Audience) (Why, error) {
	listed := false
	var lookupErrs []error
	for _, a := range audiences {
		in, err := a.Includes(ctx, dir, user)
		if err != nil {
			// Another audience may still list the user.
			lookupErrs = append(lookupErrs, err)
			continue
		}
		if in {
			listed = true
			break
		}
	}
	switch {
	case !listed && len(lookupErrs) > 0:
		return WhyUnverified, errors.Join(lookupErrs...)
	case !listed:
		return notListed, nil
	}
	if dir == nil {
		return WhyUnverified, fmt.Errorf("check %s: no directory configured", user)
	}
	p, err := dir.Person(ctx, user)
	if err != nil {
		return WhyUnverified, fmt.Errorf("look up %s: %w", user, err)
	}
	switch {
	case p.External:
		return WhyExternal, nil
	case p.Guest:
		return WhyGuest, nil
	case p.Bot || p.Deleted:
		return notListed, nil
	}
	return "", nil
}
