package storetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/revokebot/revokebot/approvals"
)

// The event log is a hash chain: every event, as it is recorded, carries
// the hash that its content and its predecessor's hash give.

func testChain(t *testing.T, s approvals.Store) {
	ids := withEvents(t, s, 3) // 9 events: requested and two approvals each
	e := approvals.Event{Kind: approvals.EventRefused, Request: approvals.Request{ID: ids[0]}, Actor: "UX",
		Detail: `user is not an approver <@U1> & "quotes"`, At: base.Add(time.Hour), Key: "k1"}
	if err := s.Append(ctx, e); err != nil {
		t.Fatal(err)
	}
	links, err := s.Chain(ctx, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	if len(links) != 10 {
		t.Fatalf("%d links, want 10", len(links))
	}
	last, err := approvals.VerifyChain("", links)
	if err != nil {
		t.Fatalf("the chain as stored does not hold: %v", err)
	}
	if last != links[9].Hash || len(last) != 64 {
		t.Errorf("last hash %q, want the tenth link's, 64 hex digits", last)
	}
	if l := links[9]; l.Event.Kind != approvals.EventRefused || l.Event.Detail != e.Detail || l.Event.Key != "k1" || l.Event.Request.ID != ids[0] {
		t.Errorf("tenth link %+v, want the refusal as appended", l)
	}
	// A part of the log verifies from the hash before it.
	tail, err := s.Chain(ctx, links[4].Seq, 3)
	if err != nil || len(tail) != 3 || tail[0].Seq != links[4].Seq {
		t.Fatalf("Chain from %d: %d links, %v", links[4].Seq, len(tail), err)
	}
	if _, err := approvals.VerifyChain(links[3].Hash, tail); err != nil {
		t.Errorf("a part of the chain: %v", err)
	}
	// A changed event, or one left out, breaks it there.
	changed := append([]approvals.Link(nil), links...)
	changed[6].Event.Detail = "edited"
	var brk *approvals.ChainBreak
	if _, err := approvals.VerifyChain("", changed); !errors.As(err, &brk) || brk.Seq != links[6].Seq {
		t.Errorf("a changed event: %v, want a break at %d", err, links[6].Seq)
	}
	removed := append(append([]approvals.Link(nil), links[:5]...), links[6:]...)
	if _, err := approvals.VerifyChain("", removed); !errors.As(err, &brk) || brk.Seq != links[6].Seq {
		t.Errorf("an event left out: %v, want a break at %d", err, links[6].Seq)
	}
	// Deliveries carry their event's hash, for the audit record.
	ds, err := outbox(t, s).Undelivered(ctx, approvals.AuditRecord, 1)
	if err != nil || len(ds) != 1 || ds[0].Event.Hash != links[0].Hash {
		t.Errorf("delivery %+v, %v: want the first event with its hash %s", ds, err, links[0].Hash)
	}
}

// Events recorded by racing writers are chained one after the other: the
// chain holds whatever the interleaving.
func testChainRace(t *testing.T, s approvals.Store) {
	ids := withEvents(t, s, 4)
	atOnce(8, func(i int) {
		if _, err := s.Update(ctx, ids[i%4], approve(fmt.Sprintf("URACE%d", i), base)); err != nil {
			t.Errorf("Update: %v", err)
		}
	})
	links, err := s.Chain(ctx, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	if len(links) != 12+8 {
		t.Fatalf("%d links, want 20", len(links))
	}
	if _, err := approvals.VerifyChain("", links); err != nil {
		t.Errorf("after racing updates: %v", err)
	}
}
