package bot

import (
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/revokebot/revokebot/approvals"
)

// whyConstants returns every approvals.Why constant declared in package
// approvals, by name, read from its source: a Why added there without
// words here fails TestUserMessageWordsEveryWhy.
func whyConstants(t *testing.T) map[string]approvals.Why {
	t.Helper()
	fset := token.NewFileSet()
	files, err := filepath.Glob(filepath.Join("..", "approvals", "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]approvals.Why{}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range f.Decls {
			gen, ok := decl.(*ast.GenDecl)
			if !ok || gen.Tok != token.CONST {
				continue
			}
			for _, spec := range gen.Specs {
				vs := spec.(*ast.ValueSpec)
				if id, ok := vs.Type.(*ast.Ident); !ok || id.Name != "Why" {
					continue
				}
				for i, n := range vs.Names {
					lit, ok := vs.Values[i].(*ast.BasicLit)
					if !ok {
						t.Fatalf("Why constant %s is not a string literal", n.Name)
					}
					v, err := strconv.Unquote(lit.Value)
					if err != nil {
						t.Fatal(err)
					}
					out[n.Name] = approvals.Why(v)
				}
			}
		}
	}
	if len(out) < 17 {
		t.Fatalf("found only %d Why constants: %v", len(out), out)
	}
	return out
}

// TestUserMessageWordsEveryWhy: every fact the domain can give gets words
// of its own for people, with or without the request concerned; none shows
// the raw code, nor falls back to the words for an unknown fact, and all
// are safe mrkdwn.
func TestUserMessageWordsEveryWhy(t *testing.T) {
	t.Parallel()
	unknown := userMessage(&approvals.Error{Code: approvals.EFORBIDDEN, Why: "no_such_fact"})
	if !strings.Contains(unknown, "no_such_fact") {
		t.Fatalf("an unknown fact is worded %q", unknown)
	}
	pending := threeTargets(approvals.StatePending)
	pending.Required = 2
	pending.Reviews = []approvals.Review{{By: "U2", Decision: approvals.Approve, At: hostileNow}}
	requests := map[string]*approvals.Request{"no request": nil}
	for _, st := range allStates {
		r := hostileRequest(st)
		requests[string(st)] = &r
	}
	requests["pending, 1 of 2"] = &pending
	for name, why := range whyConstants(t) {
		for what, r := range requests {
			e := &approvals.Error{Code: approvals.EFORBIDDEN, Why: why, Request: r, Limit: 7}
			if why == approvals.WhyInvalid {
				e.Code, e.Message = approvals.EINVALID, "a target has no email <!channel> & co"
			}
			msg := userMessage(fmt.Errorf("wrapped: %w", e))
			switch {
			case strings.TrimSpace(msg) == "":
				t.Errorf("%s, %s: no words", name, what)
			case strings.Contains(msg, "("+string(why)+")") || strings.Contains(string(why), "_") && strings.Contains(msg, string(why)):
				t.Errorf("%s, %s: the raw code shows: %q", name, what, msg)
			case msg == strings.ReplaceAll(unknown, "no_such_fact", string(why)):
				t.Errorf("%s, %s: worded as an unknown fact: %q", name, what, msg)
			}
			if err := checkSafeMrkdwn(msg); err != nil {
				t.Errorf("%s, %s: %v: %q", name, what, err, msg)
			}
			if userTextLeaks(msg) {
				t.Errorf("%s, %s: unescaped: %q", name, what, msg)
			}
		}
	}
}

// TestUserMessageFacts checks the facts worded from the error's numbers and
// request: the limits, who decided first, how far a quorum is.
func TestUserMessageFacts(t *testing.T) {
	t.Parallel()
	pending := threeTargets(approvals.StatePending)
	pending.Required = 2
	pending.Reviews = []approvals.Review{{By: "U2", Decision: approvals.Approve, At: hostileNow}}
	denied := hostileRequest(approvals.StateDenied)
	cancelled := hostileRequest(approvals.StateCancelled)
	revoked := threeTargets(approvals.StateRevoked)
	expired := hostileRequest(approvals.StateExpired)
	for _, tt := range []struct {
		err  error
		want string
	}{
		{&approvals.Error{Why: approvals.WhyPendingLimit, Limit: 5}, "You already have 5 requests waiting"},
		{&approvals.Error{Why: approvals.WhyTooManyTargets, Limit: 50}, "at most 50 people"},
		{&approvals.Error{Why: approvals.WhyAmbiguous, Limit: 5}, "matches 5 or more requests"},
		{&approvals.Error{Why: approvals.WhyReviewed, Request: &pending}, "It has 1 of the 2 approvals it needs."},
		{&approvals.Error{Why: approvals.WhyDecided, Request: &denied}, "already denied by <@U2>"},
		{&approvals.Error{Why: approvals.WhyDecided, Request: &cancelled}, "already cancelled by its requester <@U1>"},
		{&approvals.Error{Why: approvals.WhyDecided, Request: &revoked}, "already approved by <@U2> (now revoked)"},
		{&approvals.Error{Why: approvals.WhyDecided, Request: &expired}, "already expired " + slackDate(expired.ExpiresAt)},
		{&approvals.Error{Why: approvals.WhyExpired, Request: &expired}, "expired " + slackDate(expired.ExpiresAt)},
		{&approvals.Error{Why: approvals.WhyInvalid, Message: "<b> & c"}, "&lt;b&gt; &amp; c"},
		{errors.New("database is locked"), "Something went wrong on our side"},
	} {
		if got := userMessage(tt.err); !strings.Contains(got, tt.want) {
			t.Errorf("userMessage(%v) = %q, want it to say %q", tt.err, got, tt.want)
		}
	}
}

// TestStatusAndPendingText checks /revoke status and pending: safe
// mrkdwn, within a section's limit, and saying what they are asked.
func TestStatusAndPendingText(t *testing.T) {
	t.Parallel()
	for _, st := range allStates {
		r := hostileRequest(st)
		r.EscalatedAt = hostileNow.Add(5 * time.Minute)
		r.Channel, r.MessageTS = "CSEC", "1.2"
		s := statusText(r)
		if err := checkSafeMrkdwn(s); err != nil || userTextLeaks(s) {
			t.Errorf("%s: status %v: %s", st, err, truncate(s, 300))
		}
		if n := len([]rune(s)); n > maxReplyText {
			t.Errorf("%s: status of %d characters", st, n)
		}
		if !strings.HasPrefix(s, "*Request* `"+r.ID+"`") || !strings.Contains(s, "Message in <#CSEC>") {
			t.Errorf("%s: status %s", st, truncate(s, 300))
		}
		if escalated := strings.Contains(s, "escalated"); escalated != (st == approvals.StatePending) {
			t.Errorf("%s: status says escalated: %v", st, escalated)
		}
	}
	if s := pendingText(nil); !strings.Contains(s, "No request is waiting") {
		t.Errorf("pending, none: %s", s)
	}
	var rs []approvals.Request
	for i := range 25 {
		r := hostileRequest(approvals.StatePending)
		r.ID = fmt.Sprintf("%08x-0000-4000-8000-000000000000", i)
		rs = append(rs, r)
	}
	s := pendingText(rs)
	if err := checkSafeMrkdwn(s); err != nil || userTextLeaks(s) || len([]rune(s)) > maxReplyText {
		t.Errorf("pending list: %v: %s", err, truncate(s, 300))
	}
	if !strings.HasPrefix(s, "*25 open request(s)*") || !strings.Contains(s, "`00000000`") {
		t.Errorf("pending list: %s", truncate(s, 300))
	}
	// Requests that do not fit are counted, in whole lines.
	shown := strings.Count(s, "\n• ")
	if shown == 25 || !strings.HasSuffix(s, fmt.Sprintf("…and %d more (`/revoke status` with an ID shows one).", 25-shown)) {
		t.Errorf("pending list shows %d of 25 without counting the rest: …%s", shown, s[max(0, len(s)-200):])
	}
}

// A store that cannot reach its database says so, and the person is told to
// try again shortly, not that something went wrong for good.
func TestUserMessageDatabaseOutage(t *testing.T) {
	err := fmt.Errorf("create request for a@example.com: insert request x: %w", errors.Join(approvals.ErrUnavailable, errors.New("dial tcp 127.0.0.1:5432: connect: connection refused")))
	got := userMessage(err)
	if !strings.Contains(got, "Try again shortly") || !strings.Contains(got, "/revoke pending") || strings.Contains(got, "5432") {
		t.Errorf("userMessage = %q, want a private try-again-shortly without the details", got)
	}
}
