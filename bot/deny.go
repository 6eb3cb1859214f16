package bot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/revokebot/revokebot/approvals"
	"github.com/slack-go/slack"
)

// The deny-with-a-reason modal. Its callback_id is public interface: Slack
// sends it back with the submission.
const (
	// CallbackDenyReason is the callback_id of the modal an approver's Deny
	// opens.
	CallbackDenyReason = "revoke_deny_reason"
	// denyReasonBlock and denyReasonAction name the modal's one input.
	denyReasonBlock  = "revoke_deny_reason_input"
	denyReasonAction = "reason"
)

// denyMessageWait bounds the wait for a request's message to be recorded
// before its Deny modal opens: well within the 3 seconds a trigger_id lives.
const denyMessageWait = time.Second

// denyMetadata is what the modal carries for its submission: which request,
// where the Deny was clicked, and the click's response_url for the private
// reply (a view_submission has none of its own). It goes to Slack, and back,
// only.
type denyMetadata struct {
	RequestID   string `json:"request_id"`
	Channel     string `json:"channel"`
	TS          string `json:"ts"`
	ResponseURL string `json:"response_url,omitempty"`
}

// handleDeny handles a click on Deny. The requester's own Deny cancels the
// request at once. An approver's opens a modal asking for the reason, but
// only once the denial could count: anyone else is refused (and audited)
// at once, without a modal.
func (b *Bot) handleDeny(ctx context.Context, from clickFrom, in approvals.DecideInput) {
	r, err := b.svc.CheckDecider(ctx, in)
	if approvals.ErrorCode(err) == approvals.EUNAVAILABLE && b.awaitMessage(ctx, in.ID, denyMessageWait) {
		// Slack showed the message before its place was recorded, which
		// takes moments: the modal can still open within the trigger's life.
		r, err = b.svc.CheckDecider(ctx, in)
	}
	log := b.log.With("request_id", in.ID, "user", in.Actor)
	switch {
	case approvals.ErrorCode(err) == approvals.EFORBIDDEN, err == nil && r.Requester == in.Actor:
		// A refusal is audited, and the requester's own Deny cancels, as
		// any click is decided.
		b.handleDecision(ctx, from, in)
		return
	case err != nil:
		// Decided already, reviewed already, or the message still not
		// recorded: told at once. (Waiting longer would let the click's
		// trigger_id expire: Slack gives 3 seconds to open the modal.)
		log.Info("deny modal not opened", "code", approvals.ErrorCode(err), "err", err)
		b.reply(ctx, log, from.responseURL, ":no_entry: "+userMessage(err))
		return
	}
	meta, err := json.Marshal(denyMetadata{RequestID: r.ID, Channel: in.On.Channel, TS: in.On.TS, ResponseURL: from.responseURL})
	if err != nil {
		log.Error("deny modal metadata", "err", err)
		return
	}
	view := denyModal(r, string(meta))
	callCtx, cancel := context.WithTimeout(ctx, slackCallTimeout)
	defer cancel()
	if _, err := b.api.OpenViewContext(callCtx, from.triggerID, view); err != nil {
		log.Error("open the deny modal", "err", err, "hint", hint(err))
		b.reply(ctx, log, from.responseURL, ":warning: revokebot could not open the form for the denial's reason (Slack said: "+
			Escape(err.Error())+"). Press Deny again.")
		return
	}
	log.Info("deny modal opened")
}

// denyModal is the modal that asks an approver why they deny r.
func denyModal(r approvals.Request, metadata string) slack.ModalViewRequest {
	input := slack.NewPlainTextInputBlockElement(plain("Why is this revocation not to be done?"), denyReasonAction)
	input.Multiline = true
	input.MaxLength = approvals.MaxDenyReason
	block := slack.NewInputBlock(denyReasonBlock, plain("Reason for the denial"),
		plain("Shown on the request's message, sent to the requester and kept in the audit channel."), input)
	intro := slack.NewSectionBlock(mrkdwn("You are denying request "+codeASCII(r.ID)+" to revoke "+targetsSummary(r)+
		", asked by "+mention(r.Requester)+". Denying ends the request: nothing is revoked."), nil, nil)
	return slack.ModalViewRequest{
		Type:            slack.VTModal,
		Title:           plain("Deny revocation"),
		Submit:          plain("Deny"),
		Close:           plain("Cancel"),
		CallbackID:      CallbackDenyReason,
		PrivateMetadata: metadata,
		Blocks:          slack.Blocks{BlockSet: []slack.Block{intro, block}},
	}
}

// denySubmission reads a submitted deny modal: the decision it makes, the
// click's response_url, or the errors to show in the modal (keyed by block
// ID) when the reason will not do.
func denySubmission(cb slack.InteractionCallback) (in approvals.DecideInput, responseURL string, problems map[string]string, err error) {
	var meta denyMetadata
	if err := json.Unmarshal([]byte(cb.View.PrivateMetadata), &meta); err != nil || meta.RequestID == "" {
		return in, "", nil, errors.New("the modal's private_metadata is not revokebot's")
	}
	var reason string
	if cb.View.State != nil { // a payload without state decodes to nil
		reason = strings.TrimSpace(cb.View.State.Values[denyReasonBlock][denyReasonAction].Value)
	}
	switch {
	case reason == "":
		return in, "", map[string]string{denyReasonBlock: "Say why you deny this revocation: the requester and the audit see it."}, nil
	case utf8.RuneCountInString(reason) > approvals.MaxDenyReason:
		return in, "", map[string]string{denyReasonBlock: fmt.Sprintf("At most %d characters, please.", approvals.MaxDenyReason)}, nil
	}
	if _, err := checkReason(reason); err != nil {
		return in, "", map[string]string{denyReasonBlock: err.Error()}, nil
	}
	in = approvals.DecideInput{
		ID: meta.RequestID, Actor: cb.User.ID, Decision: approvals.Deny, Reason: reason,
		Key: "slack-view:" + cb.View.ID,
		On:  &approvals.MessageRef{Channel: meta.Channel, TS: meta.TS},
	}
	return in, meta.ResponseURL, nil, nil
}
