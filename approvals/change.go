package approvals

import (
	"errors"
	"fmt"
)

// NextVersion returns the request that Store.Update writes when its
// UpdateFunc has turned cur, the request as stored, into next. These are the
// rules every Store applies in Update, written once here; only where and how
// the result is stored is the Store's own.
//
// What is fixed at Create is taken from cur, whatever next says: ID,
// Requester, Reason, Options, SubmitKey, CreatedAt, ExpiresAt and Required,
// and Channel and MessageTS (which only SetMessage sets). Version becomes
// cur.Version+1.
//
// A change that breaks a rule is refused with an error, and the Store then
// writes nothing: targets cannot be added or removed, nor their Email or
// Person changed; a target that is done keeps its outcome; a changed target
// must have a known state; a target's observations (Look, Check, Watch) may
// change at any time, but a verification that is over is final, and so is
// a relogin seen; a dry run stays one (DryRun goes from false to
// true only); reviews are appended only, and those recorded never change.
// A second review by the same person is refused by the Store (ErrReviewed),
// which alone sees reviews written meanwhile.
func NextVersion(cur, next Request) (Request, error) {
	next.ID, next.Requester, next.Reason, next.Options = cur.ID, cur.Requester, cur.Reason, cur.Options
	next.SubmitKey, next.CreatedAt, next.ExpiresAt, next.Required = cur.SubmitKey, cur.CreatedAt, cur.ExpiresAt, cur.Required
	next.Channel, next.MessageTS = cur.Channel, cur.MessageTS
	next.Version = cur.Version + 1

	if len(next.Targets) != len(cur.Targets) {
		return Request{}, fmt.Errorf("targets cannot be added or removed (%d, was %d)", len(next.Targets), len(cur.Targets))
	}
	for i, t := range next.Targets {
		was := cur.Targets[i]
		if t.Email != was.Email || t.Person != was.Person {
			return Request{}, fmt.Errorf("target %d cannot change from %s to %s", i, was.Email, t.Email)
		}
		if t.State != was.State || t.Outcome != was.Outcome || !t.FinishedAt.Equal(was.FinishedAt) {
			if was.Done() {
				return Request{}, fmt.Errorf("target %s is %s already: its outcome cannot change", t.Email, was.State)
			}
			if !t.State.Valid() {
				return Request{}, fmt.Errorf("target %s has unknown state %q", t.Email, t.State)
			}
		}
		if err := checkObservations(was, t); err != nil {
			return Request{}, err
		}
	}
	if cur.DryRun && !next.DryRun {
		return Request{}, errors.New("a dry-run request cannot stop being one")
	}
	if len(next.Reviews) < len(cur.Reviews) {
		return Request{}, fmt.Errorf("reviews cannot be removed (%d, was %d)", len(next.Reviews), len(cur.Reviews))
	}
	for i, rv := range cur.Reviews {
		if next.Reviews[i] != rv {
			return Request{}, fmt.Errorf("review by %s cannot change", rv.By)
		}
	}
	return next, nil
}
