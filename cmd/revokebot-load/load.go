package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/revokebot/revokebot/bot"
	"github.com/revokebot/revokebot/bot/bottest"
	"github.com/revokebot/revokebot/cloudflare/cftest"
)

// How often the waits poll the fakes. Those that copy every message the
// fake Slack recorded poll every slowPoll, so as to take little CPU from the
// bot; they measure nothing by when they see a change, only by the times the
// fakes recorded.
const (
	fastPoll = 5 * time.Millisecond
	slowPoll = 50 * time.Millisecond
)

// measure runs a burst of each size in opts.sizes, then, if opts.bulk is
// set, the bulk request with Cloudflare pacing lifted and then on; each on a
// fresh bot and database.
func measure(ctx context.Context, opts *options) (*report, error) {
	rep := &report{Settings: opts.settings()}
	for _, n := range opts.sizes {
		r, err := runBurst(ctx, opts, n)
		if err != nil {
			return rep, fmt.Errorf("burst of %d: %w", n, err)
		}
		rep.Bursts = append(rep.Bursts, r)
	}
	if opts.bulk > 0 {
		for _, paced := range []bool{false, true} {
			r, err := runBulk(ctx, opts, paced)
			if err != nil {
				return rep, fmt.Errorf("bulk request of %d targets (%s): %w", opts.bulk, pacingWord(paced), err)
			}
			rep.Bulk = append(rep.Bulk, r)
		}
	}
	return rep, nil
}

func pacingWord(paced bool) string {
	if paced {
		return "Cloudflare pacing on"
	}
	return "Cloudflare pacing lifted"
}

// burstTarget is the address of the i-th target of a burst.
func burstTarget(i int) string { return fmt.Sprintf("u%05d@example.com", i) }

// bulkTarget is the address of the i-th target of the bulk request.
func bulkTarget(i int) string { return fmt.Sprintf("bulk%03d@example.com", i) }

// runBurst measures one burst of n commands, then n approvals, on a fresh bot.
func runBurst(ctx context.Context, opts *options, n int) (res burstResult, err error) {
	res.N = n
	targets := make([]string, n)
	for i := range targets {
		targets[i] = burstTarget(i)
	}
	requesters := (n + maxPending - 1) / maxPending
	err = withSession(ctx, opts, fmt.Sprintf("n%d", n), requesters, targets, false, func(s *session) error {
		res, err = burst(ctx, opts, s, res, targets, requesters)
		return err
	})
	return res, err
}

// burst runs runBurst's measurement on session s.
func burst(ctx context.Context, opts *options, s *session, res burstResult, targets []string, requesters int) (burstResult, error) {
	n := res.N
	progress := func(format string, args ...any) {
		fmt.Fprintf(opts.progress, "n=%d: "+format+"\n", append([]any{n}, args...)...)
	}

	if opts.inProcess {
		resetPeak(os.Getpid())
	}
	if err := s.start(ctx); err != nil {
		return res, err
	}
	res.Startup = millis(s.startup)
	progress("connected %s after start; idle for %s", s.startup.Round(time.Millisecond), opts.idle)
	pid := s.bot.pid()
	if err := sleep(ctx, opts.idle); err != nil {
		return res, err
	}
	st, err := readStatus(pid)
	if err != nil {
		return res, err
	}
	res.RSSIdle, res.AnonIdle = megabytes(st.rss), megabytes(st.anon)
	if res.GoroutinesIdle, err = s.goroutines(ctx); err != nil {
		return res, err
	}

	// The commands, built and encoded before the burst.
	payloads := make([]json.RawMessage, n)
	ids := make([]string, n)
	for i, email := range targets {
		if payloads[i], err = json.Marshal(s.slack.SlashPayload(requesterID(i%requesters), secChannel, email)); err != nil {
			return res, err
		}
		ids[i] = fmt.Sprintf("load-cmd-%05d", i)
	}
	res.LoadAverage = loadAverage()
	w := s.watch(ctx, pid)
	defer w.stop()
	cpu0, err := s.cpu()
	if err != nil {
		return res, err
	}
	stopProfile, err := startCPUProfile(opts.profilePath(opts.cpuProfile, n))
	if err != nil {
		return res, err
	}
	defer stopProfile()

	progress("sending %d commands", n)
	sent := make([]time.Time, n)
	for i := range n {
		sent[i] = time.Now()
		s.slack.SendEnvelope(ids[i], "slash_commands", payloads[i], 0)
	}
	res.CommandsSent = millis(time.Since(sent[0]))
	acks, err := s.waitAcks(ctx, "commands", ids)
	if err != nil {
		return res, err
	}
	refused := map[string]bool{}
	lat := make([]time.Duration, n)
	for i, a := range acks {
		lat[i] = a.At.Sub(sent[i])
		if text := a.AckText(); text != "" {
			refused[targets[i]] = true
			if res.FirstRefusal == "" {
				res.FirstRefusal = text
			}
		}
	}
	res.CommandAck = summarize(lat)
	res.CommandsRefused = len(refused)

	var msgs map[string]bottest.Message
	want := n - len(refused)
	err = s.waitFor(ctx, slowPoll, fmt.Sprintf("%d approval messages", want), func() bool {
		msgs = approvalMessages(s.slack.Messages(secChannel))
		return len(msgs) >= want
	}, func() string {
		return fmt.Sprintf("%d posted; private replies to the first requester: %s", len(msgs), ephemeralSample(s.slack.Ephemerals(requesterID(0))))
	})
	if err != nil {
		return res, err
	}
	var lastPosted time.Time
	for _, m := range msgs {
		if m.At.After(lastPosted) {
			lastPosted = m.At
		}
	}
	res.ApprovalsPosted = millis(lastPosted.Sub(sent[0]))
	progress("%d commands acked (%d refused), %d approval messages posted after %s",
		n, len(refused), len(msgs), lastPosted.Sub(sent[0]).Round(time.Millisecond))
	if opts.previewed {
		drawn := 0
		seen := previews{}
		err = s.waitFor(ctx, slowPoll, "the previews on the approval messages", func() bool {
			msgs = approvalMessages(s.slack.Messages(secChannel))
			drawn = 0
			for _, m := range msgs {
				if seen.shown(m) {
					drawn++
				}
			}
			return drawn >= want
		}, func() string {
			return fmt.Sprintf("%d of %d approval messages redrawn with their preview (try -previewed=false)", drawn, want)
		})
		if err != nil {
			return res, err
		}
		res.PreviewsDrawn = millis(time.Since(sent[0]))
		progress("previews drawn after %s", time.Since(sent[0]).Round(time.Millisecond))
	}
	progress("sending %d approvals", len(msgs))

	// The clicks, ready to go, in the order of the commands.
	var clicked []string
	var clickIDs []string
	var clickPayloads []json.RawMessage
	for _, email := range targets {
		m, ok := msgs[email]
		if !ok {
			continue
		}
		value := ""
		for _, b := range m.Buttons() {
			if b.ActionID == bot.ActionApprove {
				value = b.Value
			}
		}
		if value == "" {
			return res, fmt.Errorf("the approval message for %s has no %s button: %s", email, bot.ActionApprove, m.Text)
		}
		p, err := json.Marshal(bottest.ClickPayload(approver, m, bot.ActionApprove, value, s.slack.ResponseURL(approver, m.Channel)))
		if err != nil {
			return res, err
		}
		clicked = append(clicked, email)
		clickIDs = append(clickIDs, fmt.Sprintf("load-click-%05d", len(clickIDs)))
		clickPayloads = append(clickPayloads, p)
	}
	clickSent := make([]time.Time, len(clicked))
	for i := range clicked {
		clickSent[i] = time.Now()
		s.slack.SendEnvelope(clickIDs[i], "interactive", clickPayloads[i], 0)
	}
	res.ClicksSent = millis(time.Since(clickSent[0]))
	clickAcks, err := s.waitAcks(ctx, "clicks", clickIDs)
	if err != nil {
		return res, err
	}
	lat = make([]time.Duration, len(clicked))
	for i, a := range clickAcks {
		lat[i] = a.At.Sub(clickSent[i])
	}
	res.ClickAck = summarize(lat)

	// Every click either reaches Cloudflare or is refused with a private
	// reply to the approver (who gets none for a click taken).
	clickRefusals := func() int { return len(s.slack.Ephemerals(approver)) }
	calls, err := s.waitCalls(ctx, func() int { return len(clicked) - clickRefusals() }, func() string {
		return fmt.Sprintf("%d clicks refused: %s", clickRefusals(), ephemeralSample(s.slack.Ephemerals(approver)))
	})
	if err != nil {
		return res, err
	}
	firstCall := map[string]time.Time{}
	for _, c := range calls {
		if _, ok := firstCall[c.Body.Email]; !ok {
			firstCall[c.Body.Email] = c.At
		}
		if c.Status < 200 || c.Status > 299 {
			res.CloudflareErrors++
		}
	}
	lat = lat[:0]
	for i, email := range clicked {
		if at, ok := firstCall[email]; ok {
			lat = append(lat, at.Sub(clickSent[i]))
		}
	}
	res.ClickToCloudflare = summarize(lat)

	// The outcomes: every approval message shows one, and every target has
	// its record in the audit channel.
	var final, recorded int
	var lastRecord time.Time
	err = s.waitFor(ctx, slowPoll, "the outcomes", func() bool {
		final = 0
		for _, m := range approvalMessages(s.slack.Messages(secChannel)) {
			if settled(m.Text) {
				final++
			}
		}
		recorded, lastRecord = outcomeRecords(s.slack.Messages(auditChannel), "")
		refusals := clickRefusals()
		return final+refusals >= len(clicked) && recorded+refusals >= len(clicked)
	}, func() string {
		return fmt.Sprintf("%d of %d approval messages show an outcome, %d outcome records in the audit channel, %d clicks refused",
			final, len(clicked), recorded, clickRefusals())
	})
	if err != nil {
		return res, err
	}
	res.CloudflareReads = reads(s)
	res.OutcomesRecorded = millis(lastRecord.Sub(clickSent[0]))
	res.MessagesSettled = millis(time.Since(clickSent[0]))
	res.ClicksRefused = clickRefusals()
	if res.ClicksRefused > 0 && res.FirstRefusal == "" {
		res.FirstRefusal = s.slack.Ephemerals(approver)[0].Text
	}
	stopProfile()
	if err := writeHeapProfile(opts.profilePath(opts.memProfile, n)); err != nil {
		return res, err
	}
	cpu1, err := s.cpu()
	if err != nil {
		return res, err
	}
	res.BotCPU, res.ToolCPU = (cpu1.bot - cpu0.bot).Seconds(), (cpu1.tool - cpu0.tool).Seconds()
	res.BurstWall = time.Since(sent[0]).Seconds()
	if st, err = readStatus(pid); err != nil {
		return res, err
	}
	res.RSSAfterBurst, res.AnonAfterBurst = megabytes(st.rss), megabytes(st.anon)
	if res.GoroutinesAfterBurst, err = s.goroutines(ctx); err != nil {
		return res, err
	}
	peak := w.stop()
	res.GoroutinesPeak = max(peak.goroutines, res.GoroutinesAfterBurst)
	progress("all %d outcomes recorded %s after the first click; settling for %s",
		len(clicked)-res.ClicksRefused, lastRecord.Sub(clickSent[0]).Round(time.Millisecond), opts.settle)

	if err := sleep(ctx, opts.settle); err != nil {
		return res, err
	}
	if st, err = readStatus(pid); err != nil {
		return res, err
	}
	res.RSSSettled, res.RSSPeak = megabytes(st.rss), megabytes(max(st.hwm, peak.rss))
	res.AnonSettled = megabytes(st.anon)
	if res.GoroutinesSettled, err = s.goroutines(ctx); err != nil {
		return res, err
	}
	stopping := time.Now()
	if err := s.stop(); err != nil {
		return res, err
	}
	progress("stopped in %s", time.Since(stopping).Round(time.Millisecond))
	return res, nil
}

// runBulk measures one request of opts.bulk targets, approved, on a fresh bot.
func runBulk(ctx context.Context, opts *options, paced bool) (res bulkResult, err error) {
	res.Targets, res.Paced = opts.bulk, paced
	targets := make([]string, opts.bulk)
	for i := range targets {
		targets[i] = bulkTarget(i)
	}
	name := "bulk"
	if paced {
		name = "bulk-paced"
	}
	err = withSession(ctx, opts, name, 1, targets, paced, func(s *session) error {
		res, err = bulk(ctx, opts, s, res, targets)
		return err
	})
	return res, err
}

// withSession runs fn on a new session, which it closes after; an error
// (a fake's Fatalf included) comes back with what the bot logged.
func withSession(ctx context.Context, opts *options, name string, requesters int, targets []string, paced bool, fn func(*session) error) (err error) {
	s, err := newSession(ctx, opts, name, requesters, targets, paced)
	if err != nil {
		return err
	}
	defer s.close()
	defer func() {
		if err != nil {
			err = s.fail(err)
		}
	}()
	defer catch(&err)
	return fn(s)
}

// bulk runs runBulk's measurement on session s.
func bulk(ctx context.Context, opts *options, s *session, res bulkResult, targets []string) (bulkResult, error) {
	if err := s.start(ctx); err != nil {
		return res, err
	}
	res.Startup = millis(s.startup)

	res.LoadAverage = loadAverage()
	sent := time.Now()
	s.slack.SendEnvelope("load-bulk-cmd", "slash_commands", s.slack.SlashPayload(requesterID(0), secChannel, strings.Join(targets, " ")), 0)
	acks, err := s.waitAcks(ctx, "command", []string{"load-bulk-cmd"})
	if err != nil {
		return res, err
	}
	if text := acks[0].AckText(); text != "" {
		return res, fmt.Errorf("the bulk command was refused: %s", text)
	}
	var m bottest.Message
	err = s.waitFor(ctx, fastPoll, "the approval message", func() bool {
		for _, cur := range s.slack.Messages(secChannel) {
			if strings.HasPrefix(cur.Text, "Revocation request for ") {
				m = cur
				return true
			}
		}
		return false
	}, func() string {
		return "private replies to the requester: " + ephemeralSample(s.slack.Ephemerals(requesterID(0)))
	})
	if err != nil {
		return res, err
	}
	res.Posted = millis(m.At.Sub(sent))
	if opts.previewed {
		seen := previews{}
		err = s.waitFor(ctx, fastPoll, "the preview on the approval message", func() bool {
			for _, cur := range s.slack.Messages(secChannel) {
				if cur.TS == m.TS && seen.shown(cur) {
					m = cur
					return true
				}
			}
			return false
		}, func() string { return "the approval message was not redrawn with its preview (try -previewed=false)" })
		if err != nil {
			return res, err
		}
		res.PreviewDrawn = millis(time.Since(sent))
	}
	var id string
	for _, b := range m.Buttons() {
		if b.ActionID == bot.ActionApprove {
			id = b.Value
		}
	}
	if id == "" {
		return res, fmt.Errorf("the approval message has no %s button: %s", bot.ActionApprove, m.Text)
	}

	clickAt := time.Now()
	s.slack.SendEnvelope("load-bulk-click", "interactive", bottest.ClickPayload(approver, m, bot.ActionApprove, id, s.slack.ResponseURL(approver, m.Channel)), 0)
	if _, err := s.waitAcks(ctx, "click", []string{"load-bulk-click"}); err != nil {
		return res, err
	}
	all, err := s.waitCalls(ctx, func() int { return len(targets) }, func() string {
		return "private replies to the approver: " + ephemeralSample(s.slack.Ephemerals(approver))
	})
	if err != nil {
		return res, err
	}
	calls := firstCalls(all, targets)
	if len(calls) < len(targets) {
		return res, fmt.Errorf("%d revoke_user calls for %d of the %d targets", len(all), len(calls), len(targets))
	}
	res.FirstCall, res.LastCall = millis(slices.MinFunc(calls, time.Time.Compare).Sub(clickAt)), millis(slices.MaxFunc(calls, time.Time.Compare).Sub(clickAt))

	var recorded int
	var lastRecord time.Time
	var text string
	err = s.waitFor(ctx, slowPoll, "the outcomes", func() bool {
		for _, cur := range s.slack.Messages(secChannel) {
			if cur.TS == m.TS {
				text = cur.Text
			}
		}
		recorded, lastRecord = outcomeRecords(s.slack.Messages(auditChannel), id)
		return settled(text) && recorded >= len(targets)
	}, func() string {
		return fmt.Sprintf("the approval message reads %q, %d of %d outcome records in the audit channel", text, recorded, len(targets))
	})
	if err != nil {
		return res, err
	}
	res.MessageSettled = millis(time.Since(clickAt))
	res.CloudflareReads = reads(s)
	res.LastRecord = millis(lastRecord.Sub(clickAt))
	if !strings.HasSuffix(text, ": revoked") {
		res.Outcome = text
	}
	stopping := time.Now()
	if err := s.stop(); err != nil {
		return res, err
	}
	fmt.Fprintf(opts.progress, "bulk of %d (%s): connected %s after start, last outcome recorded %s after the click; stopped in %s\n",
		opts.bulk, pacingWord(res.Paced), s.startup.Round(time.Millisecond), lastRecord.Sub(clickAt).Round(time.Millisecond),
		time.Since(stopping).Round(time.Millisecond))
	return res, nil
}

// firstCalls returns when each of targets first reached the fake
// Cloudflare among calls, for those that did.
func firstCalls(calls []cftest.Call, targets []string) []time.Time {
	want := make(map[string]bool, len(targets))
	for _, t := range targets {
		want[t] = true
	}
	var out []time.Time
	for _, c := range calls {
		if want[c.Body.Email] {
			delete(want, c.Body.Email)
			out = append(out, c.At)
		}
	}
	return out
}

// reads counts the requests the fake Cloudflare's read endpoints got so
// far: the users looked up (previews, verifications), their sessions
// listed, and the login log read (the watch for a return).
func reads(s *session) readCounts {
	return readCounts{Users: len(s.cf.Reads(cftest.ReadUsers)), Sessions: len(s.cf.Reads(cftest.ReadSessions)), Logs: len(s.cf.Reads(cftest.ReadLogs))}
}

// loadAverage returns the machine's load average over the last minute, or
// -1 if it cannot be read: what else was running.
func loadAverage() float64 {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	f, _, _ := strings.Cut(string(data), " ")
	v, err := strconv.ParseFloat(f, 64)
	if err != nil {
		return -1
	}
	return v
}

// approvalMessages returns the approval messages of single targets among
// msgs, by target: their plain-text fallback reads "Revocation request for
// `<email>` by <@U…>: <state>".
func approvalMessages(msgs []bottest.Message) map[string]bottest.Message {
	out := make(map[string]bottest.Message, len(msgs))
	for _, m := range msgs {
		rest, ok := strings.CutPrefix(m.Text, "Revocation request for `")
		if !ok {
			continue
		}
		if email, _, ok := strings.Cut(rest, "`"); ok {
			out[email] = m
		}
	}
	return out
}

// previews remembers which approval messages were seen showing their
// targets' preview.
type previews map[string]previewSeen

type previewSeen struct {
	updates int
	shown   bool
}

// shown reports whether approval message m shows its targets' preview:
// it has been redrawn (its first redraw is the preview's, as nothing else
// changes a pending request), or its first post had the preview in it
// already (the words of the harness's previewed, in cmd/internal/app). The
// blocks are read once per version of the message.
func (p previews) shown(m bottest.Message) bool {
	if m.Updates > 0 {
		return true
	}
	if seen, ok := p[m.TS]; ok && seen.updates == m.Updates {
		return seen.shown
	}
	text := m.BlockText()
	shown := strings.Contains(text, "Cloudflare Access user") || strings.Contains(text, "preview unavailable") ||
		strings.Contains(text, "preview failed")
	p[m.TS] = previewSeen{updates: m.Updates, shown: shown}
	return shown
}

// settled reports whether an approval message's fallback text shows an
// outcome: revoked, or failed (for some or all targets).
func settled(text string) bool {
	return strings.HasSuffix(text, ": revoked") || strings.HasSuffix(text, ": failed") || strings.Contains(text, ": failed: ")
}

// outcomeRecords counts the revoked and failed records among the audit
// channel's messages (of request id only, unless id is empty), and
// returns when the last of them was posted.
func outcomeRecords(msgs []bottest.Message, id string) (int, time.Time) {
	n := 0
	var last time.Time
	for _, m := range msgs {
		rest, ok := strings.CutPrefix(m.Text, "revoked request=")
		if !ok {
			rest, ok = strings.CutPrefix(m.Text, "failed request=")
		}
		if !ok || id != "" && !strings.HasPrefix(rest, id+" ") {
			continue
		}
		n++
		if m.At.After(last) {
			last = m.At
		}
	}
	return n, last
}

// ephemeralSample quotes the distinct texts among private replies, for an
// error message.
func ephemeralSample(es []bottest.Ephemeral) string {
	seen := map[string]int{}
	var order []string
	for _, e := range es {
		if seen[e.Text] == 0 {
			order = append(order, e.Text)
		}
		seen[e.Text]++
	}
	if len(order) == 0 {
		return "none"
	}
	var b strings.Builder
	for i, t := range order {
		if i == 3 {
			fmt.Fprintf(&b, "; and %d more", len(order)-i)
			break
		}
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%d× %q", seen[t], t)
	}
	return b.String()
}

// waitCalls waits until the fake Cloudflare has recorded want()
// revoke_user calls (want is read again every 100 ms), and returns them
// all. Unlike polling Calls, which copies every call, cftest's WaitCalls
// copies them once, when they are all in; its Fatalf at each 100 ms
// timeout is caught.
func (s *session) waitCalls(ctx context.Context, want func() int, missing func() string) ([]cftest.Call, error) {
	deadline := time.Now().Add(s.opts.timeout)
	for {
		n := want()
		var calls []cftest.Call
		err := func() (err error) {
			defer catch(&err)
			calls = s.cf.WaitCalls(s.tb, n, 100*time.Millisecond)
			return nil
		}()
		if err == nil {
			return calls, nil
		}
		select {
		case <-s.bot.exited():
			return nil, fmt.Errorf("waiting for %d revoke_user calls: revokebot exited: %v", n, s.bot.err())
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for %d revoke_user calls: %w", n, ctx.Err())
		default:
		}
		if time.Now().After(deadline) {
			// err says how many came.
			return nil, fmt.Errorf("timed out after %s waiting for %d revoke_user calls: %v; %s", s.opts.timeout, n, err, missing())
		}
	}
}

// cpuTimes are the CPU times used so far by the bot and by this process.
type cpuTimes struct{ bot, tool time.Duration }

func (s *session) cpu() (cpuTimes, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return cpuTimes{}, fmt.Errorf("getrusage: %w", err)
	}
	tool := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	bot, err := cpuTime(s.bot.pid())
	if err != nil {
		return cpuTimes{}, err
	}
	return cpuTimes{bot: bot, tool: tool}, nil
}

// watcher polls the bot's RSS and goroutines during a burst.
type watcher struct {
	once sync.Once
	quit chan struct{}
	done chan peaks
	last peaks
}

// peaks are the highest figures a watcher saw.
type peaks struct {
	rss        int64
	goroutines int
}

// watch polls process pid's RSS, and the bot's goroutines, every
// opts.poll until stop (never when opts.poll is 0).
func (s *session) watch(ctx context.Context, pid int) *watcher {
	w := &watcher{quit: make(chan struct{}), done: make(chan peaks, 1)}
	if s.opts.poll <= 0 {
		w.done <- peaks{}
		return w
	}
	go func() {
		var p peaks
		defer func() { w.done <- p }()
		t := time.NewTicker(s.opts.poll)
		defer t.Stop()
		for {
			if st, err := readStatus(pid); err == nil {
				p.rss = max(p.rss, st.rss)
			}
			if n, err := s.goroutines(ctx); err == nil {
				p.goroutines = max(p.goroutines, n)
			}
			select {
			case <-t.C:
			case <-w.quit:
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	return w
}

// stop stops the polling and returns the peaks seen.
func (w *watcher) stop() peaks {
	w.once.Do(func() {
		close(w.quit)
		w.last = <-w.done
	})
	return w.last
}

// startCPUProfile starts a CPU profile of this process into path, if path
// is set, and returns the function that stops it (once; later calls do
// nothing).
func startCPUProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("-cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("-cpuprofile: %w", err)
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			pprof.StopCPUProfile()
			f.Close()
		})
	}, nil
}

// writeHeapProfile writes a heap profile of this process to path, if set.
func writeHeapProfile(path string) error {
	if path == "" {
		return nil
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("-memprofile: %w", err)
	}
	runtime.GC()
	err = pprof.WriteHeapProfile(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("-memprofile: %w", err)
	}
	return nil
}

// sleep waits for d, or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
