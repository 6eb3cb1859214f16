package bot

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/revokebot/revokebot/approvals"
	"github.com/slack-go/slack"
)

// denyCallback is the view_submission of the deny modal with the given
// private_metadata and reason, as slack-go decodes it.
func denyCallback(metadata, reason string) slack.InteractionCallback {
	var cb slack.InteractionCallback
	cb.Type = slack.InteractionTypeViewSubmission
	cb.User.ID = "U2"
	cb.View.ID = "V0DENY"
	cb.View.CallbackID = CallbackDenyReason
	cb.View.PrivateMetadata = metadata
	cb.View.State = &slack.ViewState{Values: map[string]map[string]slack.BlockAction{
		denyReasonBlock: {denyReasonAction: {Type: "plain_text_input", Value: reason}},
	}}
	return cb
}

const goodDenyMetadata = `{"request_id":"6c5a0ea8-0874-4bd8-b76b-385eb2a8907b","channel":"CSEC","ts":"1700000000.000100","response_url":"https://hooks.slack.com/actions/T1/1/x"}`

func TestDenySubmission(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name, metadata, reason string
		// problem, if set, is a word of the error shown in the modal.
		problem string
		err     bool
	}{
		{name: "empty reason", metadata: goodDenyMetadata, reason: "", problem: "Say why"},
		{name: "blank reason", metadata: goodDenyMetadata, reason: " \n\t ", problem: "Say why"},
		{name: "too long", metadata: goodDenyMetadata, reason: strings.Repeat("ü", approvals.MaxDenyReason+1), problem: "At most 500"},
		{name: "bidi override", metadata: goodDenyMetadata, reason: "see \u202eINC-1", problem: "U+202E"},
		{name: "not JSON", metadata: "revoke me", reason: "no", err: true},
		{name: "no request", metadata: `{"channel":"CSEC","ts":"1.2"}`, reason: "no", err: true},
		{name: "empty", metadata: "", reason: "no", err: true},
		{name: "wrong types", metadata: `{"request_id":42}`, reason: "no", err: true},
	} {
		in, responseURL, problems, err := denySubmission(denyCallback(tt.metadata, tt.reason))
		switch {
		case tt.err:
			if err == nil || problems != nil || in.ID != "" || responseURL != "" {
				t.Errorf("%s: %+v, %q, %v, %v; want an error and nothing else", tt.name, in, responseURL, problems, err)
			}
		case tt.problem != "":
			if err != nil || in.ID != "" || len(problems) != 1 || !strings.Contains(problems[denyReasonBlock], tt.problem) {
				t.Errorf("%s: %+v, %v, %v; want the modal to say %q at block %s", tt.name, in, problems, err, tt.problem, denyReasonBlock)
			}
			if n := utf8.RuneCountInString(problems[denyReasonBlock]); n == 0 || n > 150 {
				t.Errorf("%s: a modal error of %d characters", tt.name, n)
			}
		}
	}

	const reason = "  not without a ticket <!channel>  "
	in, responseURL, problems, err := denySubmission(denyCallback(goodDenyMetadata, reason))
	if err != nil || problems != nil {
		t.Fatalf("good submission: %v, %v", problems, err)
	}
	want := approvals.DecideInput{ID: "6c5a0ea8-0874-4bd8-b76b-385eb2a8907b", Actor: "U2", Decision: approvals.Deny,
		Reason: strings.TrimSpace(reason), Key: "slack-view:V0DENY", On: &approvals.MessageRef{Channel: "CSEC", TS: "1700000000.000100"}}
	if in.ID != want.ID || in.Actor != want.Actor || in.Decision != want.Decision || in.Reason != want.Reason || in.Key != want.Key ||
		in.On == nil || *in.On != *want.On {
		t.Errorf("good submission: %+v (on %+v), want %+v (on %+v)", in, in.On, want, want.On)
	}
	if responseURL != "https://hooks.slack.com/actions/T1/1/x" {
		t.Errorf("response_url %q", responseURL)
	}
	// A reason of exactly the most allowed is taken.
	if in, _, problems, err := denySubmission(denyCallback(goodDenyMetadata, strings.Repeat("ü", approvals.MaxDenyReason))); err != nil || problems != nil ||
		utf8.RuneCountInString(in.Reason) != approvals.MaxDenyReason {
		t.Errorf("a reason of %d characters: %v, %v", approvals.MaxDenyReason, problems, err)
	}
	// A submission whose input is missing altogether, or that has no
	// state at all, asks for a reason.
	cb := denyCallback(goodDenyMetadata, "")
	cb.View.State = &slack.ViewState{}
	if _, _, problems, err := denySubmission(cb); err != nil || problems[denyReasonBlock] == "" {
		t.Errorf("no input in the state: %v, %v", problems, err)
	}
	cb.View.State = nil
	if _, _, problems, err := denySubmission(cb); err != nil || problems[denyReasonBlock] == "" {
		t.Errorf("no state: %v, %v", problems, err)
	}
}

// TestDenyModal checks the modal against Slack's limits for views, and that
// its metadata comes back as denySubmission reads it.
func TestDenyModal(t *testing.T) {
	t.Parallel()
	r := hostileRequest(approvals.StatePending)
	meta, _ := json.Marshal(denyMetadata{RequestID: r.ID, Channel: "CSEC", TS: "1.2", ResponseURL: "https://hooks.slack.com/x"})
	v := denyModal(r, string(meta))
	if v.CallbackID != CallbackDenyReason || v.PrivateMetadata != string(meta) || len(v.PrivateMetadata) > 3000 {
		t.Errorf("modal callback %q, metadata %q", v.CallbackID, v.PrivateMetadata)
	}
	for what, o := range map[string]*slack.TextBlockObject{"title": v.Title, "submit": v.Submit, "close": v.Close} {
		if o == nil || o.Type != slack.PlainTextType || o.Text == "" || utf8.RuneCountInString(o.Text) > 24 {
			t.Errorf("modal %s %+v: Slack wants plain_text of at most 24 characters", what, o)
		}
	}
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var decoded any
	json.Unmarshal(raw, &decoded)
	for _, s := range collectTexts(decoded) {
		if userTextLeaks(s) || utf8.RuneCountInString(s) > maxSectionText {
			t.Errorf("modal text: %s", truncate(s, 200))
		}
	}
	var input *slack.InputBlock
	for _, b := range v.Blocks.BlockSet {
		if ib, ok := b.(*slack.InputBlock); ok {
			input = ib
		}
	}
	if input == nil || input.BlockID != denyReasonBlock || input.Optional {
		t.Fatalf("modal input %+v", input)
	}
	el, ok := input.Element.(*slack.PlainTextInputBlockElement)
	if !ok || el.ActionID != denyReasonAction || el.MaxLength != approvals.MaxDenyReason || !el.Multiline {
		t.Errorf("modal input element %+v", input.Element)
	}
	cb := denyCallback(v.PrivateMetadata, "no")
	if in, url, _, err := denySubmission(cb); err != nil || in.ID != r.ID || in.On.TS != "1.2" || url != "https://hooks.slack.com/x" {
		t.Errorf("the modal's metadata read back: %+v, %q, %v", in, url, err)
	}
}
