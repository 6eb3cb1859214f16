package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/term"

	"github.com/revokebot/revokebot/bot/bottest"
	"github.com/revokebot/revokebot/cloudflare/cftest"
)

// console is the terminal: the REPL and the watcher write through it, a
// whole block at a time, so that their lines never mix.
type console struct {
	mu sync.Mutex
	w  io.Writer
	// interactive shows a "> " prompt while the REPL waits for a line; echo
	// repeats each line read, so that a piped transcript shows what was typed.
	interactive, prompting bool
	// editor: w is a line editor (term.Terminal), which draws the prompt and
	// echoes what is typed itself, and keeps both below what is printed.
	editor bool
	// color shows Slack's markup as terminal styles (see styled).
	color bool
}

// print writes text, ending it with a newline if it lacks one.
func (c *console) print(text string) {
	if text == "" {
		return
	}
	if !strings.HasSuffix(text, "\n") {
		text += "\n"
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.prompting {
		io.WriteString(c.w, "\r") // the output overwrites the prompt, which comes back below
	}
	io.WriteString(c.w, text)
	if c.prompting {
		io.WriteString(c.w, "> ")
	}
}

func (c *console) printf(format string, args ...any) { c.print(fmt.Sprintf(format, args...)) }

// slack prints text rendered from a Slack message: with its *bold*,
// _italic_, ~strike~ and `code` as terminal styles when color is on, and as
// Slack shows the markers otherwise.
func (c *console) slack(text string) {
	if c.color {
		text = styled(text)
	}
	c.print(text)
}

// prompt shows the prompt (interactive only) before the REPL reads a line.
func (c *console) prompt() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.interactive && !c.prompting && !c.editor {
		io.WriteString(c.w, "> ")
		c.prompting = true
	}
}

// typed marks the prompt as answered by line; piped input is echoed after
// "> ", so that a transcript shows what was typed.
func (c *console) typed(line string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.interactive && !c.editor {
		fmt.Fprintf(c.w, "> %s\n", line)
	}
	c.prompting = false
}

// closed ends the prompt when input ends.
func (c *console) closed() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.prompting {
		io.WriteString(c.w, "\n")
	}
	c.prompting = false
}

// lines returns where the REPL reads its lines from in, and a function that
// ends the reading (call it when the REPL returns). With editor, that is a
// line editor with history on in and out, through which everything is then
// printed; if in is a terminal, it is in raw mode until restore. Otherwise
// lines are read as they come.
func (c *console) lines(in io.Reader, out io.Writer, editor bool) (src lineSource, interruptible bool, restore func()) {
	if !editor {
		return newScanLines(in), false, func() {}
	}
	raw := func() {}
	if f, ok := in.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		state, err := term.MakeRaw(int(f.Fd()))
		if err != nil {
			c.printf("(no line editing: %v)", err)
			return newScanLines(in), false, func() {}
		}
		raw = func() { term.Restore(int(f.Fd()), state) }
	}
	t := term.NewTerminal(struct {
		io.Reader
		io.Writer
	}{in, out}, "> ")
	if f, ok := out.(*os.File); ok {
		if w, h, err := term.GetSize(int(f.Fd())); err == nil && w > 0 && h > 0 {
			t.SetSize(w, h)
		}
	}
	c.mu.Lock()
	c.w, c.editor, c.prompting = t, true, false
	c.mu.Unlock()
	return t, true, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		raw()
		// The editor may still show a prompt: end its line, then print
		// straight to out again.
		io.WriteString(out, "\r\n")
		c.w, c.editor = out, false
	}
}

// The terminal styles (SGR escapes) of Slack's markup, each with the escape
// that ends it alone.
var styles = map[byte][2]string{
	'*': {"\x1b[1m", "\x1b[22m"},  // bold
	'_': {"\x1b[3m", "\x1b[23m"},  // italic
	'~': {"\x1b[9m", "\x1b[29m"},  // strikethrough
	'`': {"\x1b[36m", "\x1b[39m"}, // code: cyan
}

// styled turns Slack mrkdwn's *bold*, _italic_, ~strike~, `code` and
// ```code blocks``` into terminal styles, with Slack's rules: a marker
// opens after the start of a line, a space or punctuation, before a
// non-space, and closes on the same line after a non-space, before the end,
// a space or punctuation (so snake_case and a*b*c stay as they are); inside
// code nothing else is styled.
func styled(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		c := s[i]
		if c == '`' {
			if strings.HasPrefix(s[i:], "```") {
				if j := strings.Index(s[i+3:], "```"); j > 0 {
					b.WriteString(styles['`'][0] + s[i+3:i+3+j] + styles['`'][1])
					i += j + 6
					continue
				}
			}
			if j := strings.IndexAny(s[i+1:], "`\n"); j > 0 && s[i+1+j] == '`' {
				b.WriteString(styles['`'][0] + s[i+1:i+1+j] + styles['`'][1])
				i += j + 2
				continue
			}
		}
		if st, ok := styles[c]; ok && c != '`' && opens(s, i) {
			if j := closing(s, i); j > 0 {
				b.WriteString(st[0] + styled(s[i+1:j]) + st[1])
				i = j + 1
				continue
			}
		}
		b.WriteByte(c)
		i++
	}
	return b.String()
}

// opens reports whether the marker at s[i] can open a style.
func opens(s string, i int) bool {
	if i+1 >= len(s) || s[i+1] == s[i] {
		return false
	}
	next, _ := utf8.DecodeRuneInString(s[i+1:])
	if unicode.IsSpace(next) {
		return false
	}
	prev, _ := utf8.DecodeLastRuneInString(s[:i])
	return i == 0 || boundary(prev)
}

// closing returns the index of the marker that closes the one at s[i] on
// the same line, or -1.
func closing(s string, i int) int {
	for j := i + 2; j < len(s) && s[j] != '\n'; j++ {
		if s[j] != s[i] {
			continue
		}
		prev, _ := utf8.DecodeLastRuneInString(s[:j])
		next, _ := utf8.DecodeRuneInString(s[j+1:])
		if !unicode.IsSpace(prev) && (j+1 == len(s) || boundary(next)) {
			return j
		}
	}
	return -1
}

// boundary reports whether r may stand next to a marker on its outer side.
func boundary(r rune) bool {
	return unicode.IsSpace(r) || unicode.IsPunct(r) || unicode.IsSymbol(r)
}

// names turns Slack IDs into what Slack shows: @handle for users and groups,
// #name for channels.
type names map[string]string

func (n names) of(id string) string {
	if name, ok := n[id]; ok {
		return name
	}
	if strings.HasPrefix(id, "C") || strings.HasPrefix(id, "G") {
		return "#" + id
	}
	return "@" + id
}

var (
	slackToken = regexp.MustCompile(`<([^<>]*)>`)
	emojiCode  = regexp.MustCompile(`:[a-z0-9_+-]+:`)
	// fieldLabel is a Block Kit field as the bot writes it: *Label*\nvalue.
	fieldLabel = regexp.MustCompile(`^\*([^*\n]+)\*\n([^\n]*)$`)
	unescape   = strings.NewReplacer("&lt;", "<", "&gt;", ">", "&amp;", "&")
)

// emoji are the emoji codes revokebot uses, as a terminal shows them;
// others stay as :code:.
var emoji = map[string]string{
	":rotating_light:":            "🚨",
	":hourglass:":                 "⌛",
	":hourglass_flowing_sand:":    "⏳",
	":white_check_mark:":          "✅",
	":x:":                         "❌",
	":no_entry:":                  "⛔",
	":warning:":                   "⚠️",
	":test_tube:":                 "🧪",
	":leftwards_arrow_with_hook:": "↩️",
	":bell:":                      "🔔",
}

// text renders Slack mrkdwn (or plain text) as a person reads it in Slack:
// mentions as @name, channels as #name, dates as their fallback, links as
// their label, emoji codes as emoji, and &lt; &gt; &amp; unescaped.
func (n names) text(s string) string {
	s = slackToken.ReplaceAllStringFunc(s, func(tok string) string {
		inner := tok[1 : len(tok)-1]
		body, label, hasLabel := strings.Cut(inner, "|")
		switch {
		case strings.HasPrefix(body, "@"), strings.HasPrefix(body, "#"):
			if hasLabel && label != "" {
				return body[:1] + strings.TrimPrefix(label, body[:1])
			}
			return n.of(body[1:])
		case strings.HasPrefix(body, "!subteam^"):
			if hasLabel && label != "" {
				return label
			}
			return n.of(strings.TrimPrefix(body, "!subteam^"))
		case body == "!here" || body == "!channel" || body == "!everyone":
			return "@" + body[1:]
		case strings.HasPrefix(body, "!"): // !date^…|fallback and the like
			if hasLabel {
				return label
			}
			return body[1:]
		case hasLabel:
			return label
		}
		return strings.TrimPrefix(body, "mailto:")
	})
	s = emojiCode.ReplaceAllStringFunc(s, func(code string) string {
		if e, ok := emoji[code]; ok {
			return e
		}
		return code
	})
	return unescape.Replace(s)
}

// block is the part of a Block Kit block this renderer reads.
type block struct {
	Type     string     `json:"type"`
	Text     *textObj   `json:"text"`
	Fields   []textObj  `json:"fields"`
	Elements []elemJSON `json:"elements"`
	// Label and Hint are an input block's (in a modal).
	Label *textObj `json:"label"`
	Hint  *textObj `json:"hint"`
}

type textObj struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

type elemJSON struct {
	Type string          `json:"type"`
	Text json.RawMessage `json:"text"` // a string in context elements, an object in buttons
}

// field renders a section text or field, as "Label: value" when it is a
// bold label over a one-line value.
func (n names) field(t textObj) string {
	if m := fieldLabel.FindStringSubmatch(t.Text); m != nil {
		return n.text(m[1]) + ": " + n.text(m[2])
	}
	return n.text(t.Text)
}

// blocks renders a message's Block Kit blocks as lines of text: sections and
// their fields one per line, context elements on one line, and buttons as
// [Approve] [Deny]. It returns nil if blocks is empty or not blocks.
func (n names) blocks(raw string) []string {
	var blocks []block
	if raw == "" || json.Unmarshal([]byte(raw), &blocks) != nil {
		return nil
	}
	var lines []string
	add := func(s string) { lines = append(lines, strings.Split(s, "\n")...) }
	for _, b := range blocks {
		switch b.Type {
		case "section", "header":
			if b.Text != nil {
				add(n.field(*b.Text))
			}
			for _, f := range b.Fields {
				add(n.field(f))
			}
		case "context":
			var parts []string
			for _, e := range b.Elements {
				var s string
				if json.Unmarshal(e.Text, &s) == nil {
					parts = append(parts, n.text(s))
				}
			}
			add(strings.Join(parts, "  "))
		case "actions":
			var buttons []string
			for _, e := range b.Elements {
				var t textObj
				if e.Type == "button" && json.Unmarshal(e.Text, &t) == nil {
					buttons = append(buttons, "["+n.text(t.Text)+"]")
				}
			}
			add(strings.Join(buttons, " "))
		case "divider":
			add("──────────")
		case "input":
			if b.Label != nil {
				add(n.text(b.Label.Text) + ": ▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁")
			}
			if b.Hint != nil {
				add(n.text(b.Hint.Text))
			}
		}
	}
	return lines
}

// lines renders a Slack message from its chat.postMessage or chat.update
// parameters: its blocks, or its text if it has none.
func (n names) lines(params map[string]string) []string {
	if lines := n.blocks(params["blocks"]); len(lines) > 0 {
		return lines
	}
	return strings.Split(n.text(params["text"]), "\n")
}

// edited shows an edit of a message as its first line, the lines the edit
// left unchanged collapsed but the last, and the rest: revokebot's edits
// change the end of a message.
func edited(old, cur []string) []string {
	k := 0
	for k < len(old) && k < len(cur) && old[k] == cur[k] {
		k++
	}
	if k < 3 {
		return cur
	}
	out := []string{cur[0], fmt.Sprintf("⋮ (%d lines unchanged)", k-2)}
	return append(out, cur[k-1:]...)
}

// form renders a modal revokebot opened (views.open), as the person it was
// opened for sees it: its title, its blocks, and its buttons.
func (n names) form(v bottest.View) string {
	var view struct {
		Title  textObj         `json:"title"`
		Submit *textObj        `json:"submit"`
		Close  *textObj        `json:"close"`
		Blocks json.RawMessage `json:"blocks"`
	}
	json.Unmarshal(v.JSON, &view)
	lines := []string{"┃ " + n.text(view.Title.Text)}
	for _, l := range n.blocks(string(view.Blocks)) {
		lines = append(lines, "┃ "+l)
	}
	var buttons []string
	if view.Close != nil {
		buttons = append(buttons, "["+n.text(view.Close.Text)+"]")
	}
	if view.Submit != nil {
		buttons = append(buttons, "["+n.text(view.Submit.Text)+"]")
	}
	if len(buttons) > 0 {
		lines = append(lines, "┃ "+strings.Join(buttons, " "))
	}
	return n.layoutForm(v.User, lines)
}

// layoutForm leads lines with who sees the form they are about.
func (n names) layoutForm(user string, lines []string) string {
	return layout("form  revokebot, only visible to "+n.of(user)+":", lines)
}

// where names the place a message was posted: a channel as #name, or a
// direct message (D + user ID, or a user ID) as "direct message to @name".
func (n names) where(channel string) string {
	if strings.HasPrefix(channel, "D") {
		if _, ok := n[channel[1:]]; ok || slackUserID.MatchString(channel[1:]) {
			return "direct message to " + n.of(channel[1:])
		}
	}
	if slackUserID.MatchString(channel) {
		return "direct message to " + n.of(channel)
	}
	return n.of(channel)
}

// private renders a reply only user sees, in channel.
func (n names) private(channel, user, text string) string {
	return layout(fmt.Sprintf("%s  revokebot, only visible to %s:", n.of(channel), n.of(user)),
		strings.Split(n.text(text), "\n"))
}

// layout puts a one-line body after its lead, and a longer one below it, indented.
func layout(lead string, lines []string) string {
	if len(lines) == 1 {
		return lead + " " + lines[0]
	}
	var b strings.Builder
	b.WriteString(lead)
	for _, l := range lines {
		b.WriteString("\n    ")
		b.WriteString(l)
	}
	return b.String()
}

// cloudflareCall renders one call the fake Cloudflare API received:
// method, path, query, JSON body and the status it answered.
func cloudflareCall(c cftest.Call) string {
	target := c.Path
	if q := c.Query.Encode(); q != "" {
		target += "?" + q
	}
	body := bytes.TrimSpace(c.RawBody)
	var compact bytes.Buffer
	if json.Compact(&compact, body) == nil {
		body = compact.Bytes()
	}
	return fmt.Sprintf("cloudflare  %s %s %s → %d %s", c.Method, target, body, c.Status, http.StatusText(c.Status))
}

// watcher prints what happens in the fakes, in order: each message revokebot
// posts or edits, each private reply, each Cloudflare call.
type watcher struct {
	ws    *bottest.Workspace
	cf    *cftest.Server
	names names
	con   *console

	mu                           sync.Mutex // one poll at a time
	slackN, privateN, cfN, viewN int        // how many of each were printed
	// shown holds each approval message as last printed, by request ID.
	shown map[string][]string
}

// message renders a post or an edit, led by its channel and author:
//
//	#security  revokebot: …
func (w *watcher) message(params map[string]string, edit bool) string {
	lines := w.names.lines(params)
	var id string
	for _, l := range lines {
		if m := requestIDText.FindStringSubmatch(l); m != nil {
			id = m[1]
		}
	}
	where := w.names.where(params["channel"])
	lead := where + "  revokebot:"
	switch {
	case edit:
		lead = where + "  revokebot edited its message:"
	case params["thread_ts"] != "":
		lead = where + "  revokebot, in the thread of " + w.threadOf(params["channel"], params["thread_ts"]) + ":"
	}
	shown := lines
	if old, ok := w.shown[id]; ok && edit && id != "" {
		shown = edited(old, lines)
	}
	if id != "" {
		if w.shown == nil {
			w.shown = map[string][]string{}
		}
		w.shown[id] = lines
	}
	return layout(lead, shown)
}

// threadOf names the message whose thread ts is: "request 3f2b9c1e", or
// "a message".
func (w *watcher) threadOf(channel, ts string) string {
	for _, m := range w.ws.Messages(channel) {
		if m.TS == ts {
			if id := requestID(m); id != "" {
				return "request " + shortID(id)
			}
		}
	}
	return "a message"
}

// poll prints what happened since the last poll.
func (w *watcher) poll() {
	w.mu.Lock()
	defer w.mu.Unlock()
	type entry struct {
		at    time.Time
		text  string
		slack bool // rendered from Slack markup
	}
	var out []entry
	// The Web API calls are the log of posts and edits, with what each said.
	calls := w.ws.AllCalls()
	for _, c := range calls[min(w.slackN, len(calls)):] {
		switch c.Method {
		case "chat.postMessage":
			out = append(out, entry{c.At, w.message(c.Params, false), true})
		case "chat.update":
			out = append(out, entry{c.At, w.message(c.Params, true), true})
		}
	}
	w.slackN = len(calls)
	cfCalls := w.cf.Calls()
	for _, c := range cfCalls[min(w.cfN, len(cfCalls)):] {
		out = append(out, entry{at: c.At, text: cloudflareCall(c)})
	}
	w.cfN = len(cfCalls)
	views := w.ws.OpenedViews()
	for _, v := range views[min(w.viewN, len(views)):] {
		out = append(out, entry{v.At, w.names.form(v), true})
	}
	w.viewN = len(views)
	slices.SortStableFunc(out, func(a, b entry) int { return a.at.Compare(b.at) })
	// Private replies carry no time: they come last, in their own order.
	replies := w.ws.AllEphemerals()
	for _, e := range replies[min(w.privateN, len(replies)):] {
		out = append(out, entry{text: w.names.private(e.Channel, e.User, e.Text), slack: true})
	}
	w.privateN = len(replies)
	for _, e := range out {
		if e.slack {
			w.con.slack(e.text)
		} else {
			w.con.print(e.text)
		}
	}
}

// run polls every interval until stop is closed.
func (w *watcher) run(stop <-chan struct{}, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			w.poll()
		}
	}
}

// pad left-aligns the columns of rows, two spaces apart.
func pad(rows [][]string) string {
	widths := map[int]int{}
	for _, r := range rows {
		for i, c := range r {
			widths[i] = max(widths[i], len([]rune(c)))
		}
	}
	var b strings.Builder
	for _, r := range rows {
		var line strings.Builder
		for i, c := range r {
			line.WriteString(c)
			if i < len(r)-1 {
				line.WriteString(strings.Repeat(" ", widths[i]-len([]rune(c))+2))
			}
		}
		b.WriteString("  " + strings.TrimRight(line.String(), " ") + "\n")
	}
	return b.String()
}
