package bottest

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// trigger is a trigger_id the workspace sent in an envelope.
type trigger struct {
	user   string
	issued time.Time
	used   bool
}

// noteEnvelope remembers the trigger_id of a payload about to be sent (the
// first time it is sent: a redelivery does not renew it) and returns the
// payload's type ("view_submission", …; "" for a slash command).
func (w *Workspace) noteEnvelope(payload any) string {
	data, err := json.Marshal(payload)
	if err != nil {
		return ""
	}
	var p struct {
		Type      string          `json:"type"`
		TriggerID string          `json:"trigger_id"`
		UserID    string          `json:"user_id"`
		User      json.RawMessage `json:"user"`
	}
	if json.Unmarshal(data, &p) != nil {
		return ""
	}
	if p.TriggerID == "" {
		return p.Type
	}
	user := p.UserID
	var u struct {
		ID string `json:"id"`
	}
	if user == "" && json.Unmarshal(p.User, &u) == nil {
		user = u.ID
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, ok := w.triggers[p.TriggerID]; !ok {
		w.triggers[p.TriggerID] = &trigger{user: user, issued: time.Now()}
	}
	return p.Type
}

// View is a modal the bot opened with views.open.
type View struct {
	// ID is the view's ID (V…), as views.open answered it.
	ID string
	// User is the user whose trigger_id opened the view: who sees it.
	User string
	// TriggerID is the trigger_id the view was opened with.
	TriggerID string
	// CallbackID and PrivateMetadata are the view's callback_id and
	// private_metadata, as the bot set them ("" if it did not).
	CallbackID      string
	PrivateMetadata string
	// ExternalID is the view's external_id ("" if none).
	ExternalID string
	// Title is the text of the view's title.
	Title string
	// NotifyOnClose is the view's notify_on_close: whether Slack tells the
	// bot when the user closes it (CloseView).
	NotifyOnClose bool
	// Hash is the view's hash, as views.open answered it.
	Hash string
	// JSON is the view as Slack keeps it and echoes it: the bot's view
	// with id, team_id, hash, state, the defaults Slack fills in, and a
	// block_id (and input action_id) generated for each that had none.
	JSON json.RawMessage
	// At is when the view was opened.
	At time.Time
}

// Input is an input block of a view: what SubmitView fills in.
type Input struct {
	// BlockID and ActionID key the input's value in state.values.
	BlockID  string
	ActionID string
	// Type is the input element's type, such as "plain_text_input".
	Type string
	// Optional is the block's optional flag: Slack's client submits an
	// input left empty only when it is set.
	Optional bool
	// Label is the text of the block's label.
	Label string
}

type viewBlock struct {
	Type     string `json:"type"`
	BlockID  string `json:"block_id"`
	Optional bool   `json:"optional"`
	Label    struct {
		Text string `json:"text"`
	} `json:"label"`
	Element map[string]any `json:"element"`
}

func (v View) blocks() []viewBlock {
	var view struct {
		Blocks []viewBlock `json:"blocks"`
	}
	json.Unmarshal(v.JSON, &view)
	return view.Blocks
}

// Inputs lists the view's input blocks, in order.
func (v View) Inputs() []Input {
	var out []Input
	for _, b := range v.blocks() {
		if b.Type != "input" {
			continue
		}
		typ, _ := b.Element["type"].(string)
		action, _ := b.Element["action_id"].(string)
		out = append(out, Input{BlockID: b.BlockID, ActionID: action, Type: typ, Optional: b.Optional, Label: b.Label.Text})
	}
	return out
}

// BlockText returns every text in the view's blocks, one per line, as
// Message.BlockText does.
func (v View) BlockText() string {
	var view struct {
		Blocks json.RawMessage `json:"blocks"`
	}
	json.Unmarshal(v.JSON, &view)
	return Message{Blocks: view.Blocks}.BlockText()
}

// OpenedViews returns the views opened with views.open so far, oldest first.
func (w *Workspace) OpenedViews() []View {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.views)
}

// WaitView waits for a view opened with views.open that match accepts,
// and returns it.
func (w *Workspace) WaitView(match func(View) bool, timeout time.Duration) View {
	w.tb.Helper()
	var found View
	w.waitFor(timeout, "a matching view", func() bool {
		for _, v := range w.views {
			if match(v) {
				found = v
				return true
			}
		}
		return false
	})
	return found
}

// Limits of a modal view, from Slack's reference (Modal views, Block Kit).
const (
	maxViewBytes      = 250 << 10
	maxViewBlocks     = 100
	maxViewButtonText = 24 // title, close, submit
	maxMetadataChars  = 3000
	maxIDChars        = 255 // callback_id, external_id, block_id, action_id
)

// modalBlockTypes are the block types the fake takes in a view.
var modalBlockTypes = []string{"actions", "context", "divider", "file", "header", "image", "input",
	"markdown", "rich_text", "section", "table", "video"}

// viewProblems collects what Slack would refuse in a view, in the form of
// its invalid_arguments messages.
type viewProblems []string

func (p *viewProblems) add(pointer, format string, args ...any) {
	*p = append(*p, fmt.Sprintf("[ERROR] %s [json-pointer:%s]", fmt.Sprintf(format, args...), pointer))
}

// text checks a text object at pointer: plain_text (or mrkdwn, unless
// plainOnly), with 1 to max characters.
func (p *viewProblems) text(v any, pointer string, max int, plainOnly bool) {
	o, ok := v.(map[string]any)
	if !ok {
		p.add(pointer, "must be a text object")
		return
	}
	switch t, _ := o["type"].(string); {
	case t == "plain_text", t == "mrkdwn" && !plainOnly:
	case plainOnly:
		p.add(pointer+"/type", "must be plain_text")
	default:
		p.add(pointer+"/type", "must be one of plain_text, mrkdwn")
	}
	s, ok := o["text"].(string)
	switch n := utf8.RuneCountInString(s); {
	case !ok || n == 0:
		p.add(pointer+"/text", "must be more than 0 characters")
	case n > max:
		p.add(pointer+"/text", "must be less than %d characters", max+1)
	}
}

// id checks an optional identifier field (callback_id, block_id, …).
func (p *viewProblems) id(o map[string]any, key, pointer string, max int) (string, bool) {
	v, present := o[key]
	if !present {
		return "", false
	}
	s, ok := v.(string)
	if !ok {
		p.add(pointer+"/"+key, "must be a string")
		return "", false
	}
	if utf8.RuneCountInString(s) > max {
		p.add(pointer+"/"+key, "must be less than %d characters", max+1)
	}
	return s, true
}

// checkModal returns what Slack would refuse in view, a views.open view.
func checkModal(view map[string]any) viewProblems {
	var p viewProblems
	if t, _ := view["type"].(string); t != "modal" {
		p.add("/view/type", "must be modal (views.open opens modals), not %q", t)
	}
	if t, ok := view["title"]; ok {
		p.text(t, "/view/title", maxViewButtonText, true)
	} else {
		p.add("/view", "missing required field: title")
	}
	for _, k := range []string{"close", "submit"} {
		if t, ok := view[k]; ok && t != nil {
			p.text(t, "/view/"+k, maxViewButtonText, true)
		}
	}
	p.id(view, "private_metadata", "/view", maxMetadataChars)
	p.id(view, "callback_id", "/view", maxIDChars)
	p.id(view, "external_id", "/view", maxIDChars)
	for _, k := range []string{"clear_on_close", "notify_on_close"} {
		if v, ok := view[k]; ok {
			if _, isBool := v.(bool); !isBool {
				p.add("/view/"+k, "must be a boolean")
			}
		}
	}
	blocks, ok := view["blocks"].([]any)
	if !ok {
		p.add("/view", "missing required field: blocks")
		return p
	}
	if len(blocks) > maxViewBlocks {
		p.add("/view/blocks", "no more than %d items allowed", maxViewBlocks)
	}
	ids := map[string]bool{}
	hasInput := false
	for i, b := range blocks {
		ptr := fmt.Sprintf("/view/blocks/%d", i)
		o, ok := b.(map[string]any)
		if !ok {
			p.add(ptr, "must be an object")
			continue
		}
		typ, _ := o["type"].(string)
		if !slices.Contains(modalBlockTypes, typ) {
			p.add(ptr+"/type", "must be a block type, not %q", typ)
			continue
		}
		if id, ok := p.id(o, "block_id", ptr, maxIDChars); ok {
			if id == "" {
				p.add(ptr+"/block_id", "must be more than 0 characters")
			} else if ids[id] {
				p.add(ptr+"/block_id", "duplicate block_id %q", id)
			}
			ids[id] = true
		}
		switch typ {
		case "input":
			hasInput = true
			p.checkInput(o, ptr)
		case "section":
			text, hasText := o["text"]
			fields, hasFields := o["fields"].([]any)
			if !hasText && !hasFields {
				p.add(ptr, "must provide text or fields")
			}
			if hasText {
				p.text(text, ptr+"/text", 3000, false)
			}
			if len(fields) > 10 {
				p.add(ptr+"/fields", "no more than 10 items allowed")
			}
			for j, f := range fields {
				p.text(f, fmt.Sprintf("%s/fields/%d", ptr, j), 2000, false)
			}
		case "header":
			p.text(o["text"], ptr+"/text", 150, true)
		case "actions", "context":
			max := map[string]int{"actions": 25, "context": 10}[typ]
			elems, ok := o["elements"].([]any)
			switch {
			case !ok || len(elems) == 0:
				p.add(ptr, "missing required field: elements")
			case len(elems) > max:
				p.add(ptr+"/elements", "no more than %d items allowed", max)
			}
		}
	}
	if hasInput && view["submit"] == nil {
		p.add("/view", "missing required field: submit (a view with input blocks needs one)")
	}
	return p
}

// checkInput checks an input block.
func (p *viewProblems) checkInput(o map[string]any, ptr string) {
	p.text(o["label"], ptr+"/label", 2000, true)
	if h, ok := o["hint"]; ok {
		p.text(h, ptr+"/hint", 2000, true)
	}
	el, ok := o["element"].(map[string]any)
	if !ok {
		p.add(ptr, "missing required field: element")
		return
	}
	if t, _ := el["type"].(string); t == "" {
		p.add(ptr+"/element", "missing required field: type")
	}
	if id, ok := p.id(el, "action_id", ptr+"/element", maxIDChars); ok && id == "" {
		p.add(ptr+"/element/action_id", "must be more than 0 characters")
	}
	if ph, ok := el["placeholder"]; ok {
		p.text(ph, ptr+"/element/placeholder", 150, true)
	}
	lo, hasLo := el["min_length"].(float64)
	hi, hasHi := el["max_length"].(float64)
	if hasLo && (lo < 0 || lo > 3000) {
		p.add(ptr+"/element/min_length", "must be between 0 and 3000")
	}
	if hasHi && (hi < 1 || hi > 3000) {
		p.add(ptr+"/element/max_length", "must be between 1 and 3000")
	}
	if hasLo && hasHi && lo > hi {
		p.add(ptr+"/element/min_length", "must not be more than max_length")
	}
}

// serveViewsOpen answers views.open, checking the view as Slack does (type
// modal, a plain_text title and buttons of at most 24 characters, at most
// 100 blocks, unique block_ids, a submit button with input blocks, the
// length limits), then the trigger_id: one the workspace sent in an
// envelope, not yet used, and no older than the trigger expiry when the
// call arrived (before any Hold). w.mu is held.
func (w *Workspace) serveViewsOpen(rw http.ResponseWriter, params map[string]string, arrived time.Time) {
	raw := params["view"]
	if raw == "" {
		invalidArguments(rw, viewProblems{"[ERROR] missing required field: view"})
		return
	}
	if len(raw) > maxViewBytes {
		slackError(rw, "view_too_large")
		return
	}
	var view map[string]any
	if err := json.Unmarshal([]byte(raw), &view); err != nil || view == nil {
		invalidArguments(rw, viewProblems{"[ERROR] failed to parse view: must be a JSON object [json-pointer:/view]"})
		return
	}
	if p := checkModal(view); len(p) > 0 {
		invalidArguments(rw, p)
		return
	}
	id := params["trigger_id"]
	if id == "" {
		id = params["interactivity_pointer"]
	}
	t, ok := w.triggers[id]
	switch {
	case id == "":
		invalidArguments(rw, viewProblems{"[ERROR] missing required field: trigger_id"})
		return
	case !ok:
		slackError(rw, "invalid_trigger_id")
		return
	case t.used:
		slackError(rw, "exchanged_trigger_id")
		return
	case arrived.Sub(t.issued) > w.triggerTTL:
		slackError(rw, "expired_trigger_id")
		return
	}
	ext, _ := view["external_id"].(string)
	if ext != "" && slices.ContainsFunc(w.views, func(v View) bool { return v.ExternalID == ext }) {
		slackError(rw, "duplicate_external_id")
		return
	}
	t.used = true

	w.nextView++
	v := View{ID: fmt.Sprintf("V%08d", w.nextView), User: t.user, TriggerID: id, ExternalID: ext,
		Hash: fmt.Sprintf("%d.%08d", arrived.Unix(), w.nextView), At: time.Now()}
	v.CallbackID, _ = view["callback_id"].(string)
	v.PrivateMetadata, _ = view["private_metadata"].(string)
	v.NotifyOnClose, _ = view["notify_on_close"].(bool)
	v.Title, _ = view["title"].(map[string]any)["text"].(string)
	echo := maps.Clone(view)
	for k, def := range map[string]any{"close": nil, "submit": nil, "private_metadata": "", "callback_id": "",
		"external_id": "", "clear_on_close": false, "notify_on_close": false, "submit_disabled": false} {
		if _, ok := echo[k]; !ok {
			echo[k] = def
		}
	}
	maps.Copy(echo, map[string]any{"id": v.ID, "team_id": DefaultTeamID, "hash": v.Hash,
		"state": map[string]any{"values": map[string]any{}}, "previous_view_id": nil, "root_view_id": v.ID,
		"app_id": DefaultAppID, "app_installed_team_id": DefaultTeamID, "bot_id": "BREVOKEBOT",
		"blocks": withGeneratedIDs(view["blocks"].([]any))})
	v.JSON, _ = json.Marshal(echo)
	w.views = append(w.views, v)
	writeJSON(rw, http.StatusOK, map[string]any{"ok": true, "view": json.RawMessage(v.JSON)})
}

// withGeneratedIDs returns a copy of blocks in which each block without a
// block_id, and each input element without an action_id, has one, as Slack
// generates them.
func withGeneratedIDs(blocks []any) []any {
	taken := map[string]bool{}
	for _, b := range blocks {
		if id, ok := b.(map[string]any)["block_id"].(string); ok {
			taken[id] = true
		}
	}
	n := 0
	fresh := func(prefix string) string {
		for {
			n++
			if id := fmt.Sprintf("%s%d", prefix, n); !taken[id] {
				taken[id] = true
				return id
			}
		}
	}
	out := make([]any, len(blocks))
	for i, b := range blocks {
		o := maps.Clone(b.(map[string]any))
		if _, ok := o["block_id"]; !ok {
			o["block_id"] = fresh("gen")
		}
		if el, ok := o["element"].(map[string]any); ok && o["type"] == "input" {
			if _, ok := el["action_id"]; !ok {
				el = maps.Clone(el)
				el["action_id"] = fresh("act")
				o["element"] = el
			}
		}
		out[i] = o
	}
	return out
}

// invalidArguments answers Slack's invalid_arguments, with its messages.
func invalidArguments(rw http.ResponseWriter, problems viewProblems) {
	writeJSON(rw, http.StatusOK, map[string]any{"ok": false, "error": "invalid_arguments",
		"response_metadata": map[string]any{"messages": []string(problems)}})
}

// ViewSubmissionPayload builds the view_submission payload of user
// submitting view v with values (block_id → action_id → value), as Slack
// sends it, for tests that change or replay it. Every input block of v is in
// state.values, as in Slack: one not in values keeps its initial value (or
// none); an empty value is sent as none (null). A select takes the option
// value, a multi-select or checkboxes comma-separated values, a users,
// conversations or channels select an ID. A value for a block or action the
// view does not have fails the test. Slack's client would not submit a
// required input left empty, nor one outside its min_length and max_length;
// this does, so that a test can check the bot's own checks.
func (w *Workspace) ViewSubmissionPayload(user string, v View, values map[string]map[string]string) map[string]any {
	w.tb.Helper()
	var view map[string]any
	if err := json.Unmarshal(v.JSON, &view); err != nil {
		w.tb.Fatalf("bottest: view %s has no JSON (not from OpenedViews?): %v", v.ID, err)
	}
	inputs := v.Inputs()
	for block, actions := range values {
		for action := range actions {
			if !slices.ContainsFunc(inputs, func(in Input) bool { return in.BlockID == block && in.ActionID == action }) {
				w.tb.Fatalf("bottest: view %s has no input block %q with action %q; its inputs: %+v", v.ID, block, action, inputs)
			}
		}
	}
	state := map[string]any{}
	for _, b := range v.blocks() {
		if b.Type != "input" {
			continue
		}
		action, _ := b.Element["action_id"].(string)
		value, given := values[b.BlockID][action]
		state[b.BlockID] = map[string]any{action: elementState(b.Element, value, given)}
	}
	view["state"] = map[string]any{"values": state}
	return map[string]any{
		"type":                  "view_submission",
		"team":                  map[string]any{"id": DefaultTeamID, "domain": "test"},
		"user":                  map[string]any{"id": user, "username": strings.ToLower(user), "name": strings.ToLower(user), "team_id": DefaultTeamID},
		"api_app_id":            DefaultAppID,
		"token":                 "deprecated",
		"trigger_id":            fmt.Sprintf("%d.%s.trigger", triggers.Add(1), user),
		"view":                  view,
		"response_urls":         []any{},
		"is_enterprise_install": false,
		"enterprise":            nil,
	}
}

// elementState is an input element's entry in state.values.
func elementState(el map[string]any, value string, given bool) map[string]any {
	typ, _ := el["type"].(string)
	st := map[string]any{"type": typ}
	var list []string
	if value != "" {
		list = strings.Split(value, ",")
	}
	option := func(value string) any {
		for _, key := range []string{"options", "option_groups"} {
			opts, _ := el[key].([]any)
			for _, o := range opts {
				group, _ := o.(map[string]any)
				inner, isGroup := group["options"].([]any)
				if !isGroup {
					inner = []any{o}
				}
				for _, x := range inner {
					if opt, _ := x.(map[string]any); opt["value"] == value {
						return opt
					}
				}
			}
		}
		return map[string]any{"text": map[string]any{"type": "plain_text", "text": value, "emoji": true}, "value": value}
	}
	single := map[string]string{"users_select": "selected_user", "conversations_select": "selected_conversation",
		"channels_select": "selected_channel", "datepicker": "selected_date", "timepicker": "selected_time"}
	multi := map[string]string{"multi_users_select": "selected_users",
		"multi_conversations_select": "selected_conversations", "multi_channels_select": "selected_channels"}
	switch {
	case !given && (typ == "plain_text_input" || typ == "email_text_input" || typ == "url_text_input" || typ == "number_input"):
		st["value"] = el["initial_value"]
	case typ == "static_select" || typ == "external_select" || typ == "radio_buttons":
		st["selected_option"] = nil
		if !given && el["initial_option"] != nil {
			st["selected_option"] = el["initial_option"]
		} else if value != "" {
			st["selected_option"] = option(value)
		}
	case typ == "multi_static_select" || typ == "multi_external_select" || typ == "checkboxes":
		opts := []any{}
		for _, v := range list {
			opts = append(opts, option(v))
		}
		st["selected_options"] = opts
	case single[typ] != "":
		st[single[typ]] = nil
		if value != "" {
			st[single[typ]] = value
		}
	case multi[typ] != "":
		st[multi[typ]] = append([]string{}, list...)
	default:
		st["value"] = nil
		if value != "" {
			st["value"] = value
		}
	}
	return st
}

// SubmitView sends a Socket Mode interactive envelope with the
// view_submission payload of user submitting view v (one of OpenedViews,
// normally by its User) with values: block_id → action_id → value (see
// ViewSubmissionPayload). It returns the envelope ID; WaitAck returns the
// bot's answer, whose ViewErrors are the errors it shows in the modal.
func (w *Workspace) SubmitView(user string, v View, values map[string]map[string]string) string {
	w.tb.Helper()
	id := w.envelopeID()
	w.SendEnvelope(id, "interactive", w.ViewSubmissionPayload(user, v, values), 0)
	return id
}

// CloseView is user closing view v (one of OpenedViews) with its Cancel
// button. Slack tells the bot only if the view set notify_on_close: then
// CloseView sends a view_closed envelope and returns its ID; otherwise it
// sends nothing and returns "".
func (w *Workspace) CloseView(user string, v View) string {
	w.tb.Helper()
	if !v.NotifyOnClose {
		return ""
	}
	var view map[string]any
	if err := json.Unmarshal(v.JSON, &view); err != nil {
		w.tb.Fatalf("bottest: view %s has no JSON (not from OpenedViews?): %v", v.ID, err)
	}
	id := w.envelopeID()
	w.SendEnvelope(id, "interactive", map[string]any{
		"type":                  "view_closed",
		"team":                  map[string]any{"id": DefaultTeamID, "domain": "test"},
		"user":                  map[string]any{"id": user, "username": strings.ToLower(user), "name": strings.ToLower(user), "team_id": DefaultTeamID},
		"api_app_id":            DefaultAppID,
		"token":                 "deprecated",
		"view":                  view,
		"is_cleared":            false,
		"is_enterprise_install": false,
		"enterprise":            nil,
	}, 0)
	return id
}

// ResponseAction returns the response_action of an ack's payload: "errors",
// "update", "push" or "clear" for an answer to a view_submission ("" when
// it has none, which closes the modal).
func (a Ack) ResponseAction() string {
	var p struct {
		ResponseAction string `json:"response_action"`
	}
	json.Unmarshal(a.Payload, &p)
	return p.ResponseAction
}

// ViewErrors returns the errors an ack to a view_submission shows in the
// modal (response_action "errors"): block_id → message. It is nil when the
// ack has no such answer.
func (a Ack) ViewErrors() map[string]string {
	var p struct {
		ResponseAction string            `json:"response_action"`
		Errors         map[string]string `json:"errors"`
	}
	if json.Unmarshal(a.Payload, &p) != nil || p.ResponseAction != "errors" {
		return nil
	}
	return p.Errors
}
