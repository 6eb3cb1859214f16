package bot

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/revokebot/revokebot/approvals"
	"github.com/slack-go/slack"
)

// VerifyStore is what VerifyAudit reads of the store; it writes nothing, so
// that it can run against a read-only replica.
type VerifyStore interface {
	// Chain reads the event log with its hashes (approvals.Store.Chain).
	Chain(ctx context.Context, from int64, limit int) ([]approvals.Link, error)
	// Get reads a request, to render its records (approvals.Store.Get).
	Get(ctx context.Context, id string) (approvals.Request, error)
	// Undelivered and PendingRefusals tell the records not yet delivered to
	// the channel, which it need not hold (approvals.Outbox).
	Undelivered(ctx context.Context, part approvals.Part, limit int) ([]approvals.Delivery, error)
	PendingRefusals(ctx context.Context) ([]approvals.Refusals, error)
}

// FindingKind says what VerifyAudit found wrong.
type FindingKind string

// The kinds of findings.
const (
	// FindingChain: the store's event log does not hold as a hash chain at
	// this record (the store itself was altered).
	FindingChain FindingKind = "chain"
	// FindingMissing: a record delivered to the audit channel is not there
	// any more (deleted).
	FindingMissing FindingKind = "missing"
	// FindingEdited: a record is in the channel, but its text or metadata
	// differs from the store's.
	FindingEdited FindingKind = "edited"
	// FindingForged: a message looks like a record, but the store has no
	// such record, or someone other than revokebot posted it.
	FindingForged FindingKind = "forged"
)

// Finding is one difference between the store and the audit channel.
type Finding struct {
	Kind FindingKind
	// Seq is the record number; for a forged message, the one it claims (0
	// if it claims none).
	Seq int64
	// RequestID is the request the record is about (for a forged message,
	// the one it claims, clipped).
	RequestID string
	// At is when the event happened; for a forged message, when it was
	// posted.
	At time.Time
	// TS is the message's timestamp in the channel, if there is a message.
	TS string
	// Explanation says, in a sentence, what differs.
	Explanation string
}

// AuditReport is what VerifyAudit found.
type AuditReport struct {
	// Findings are the differences, ordered by record number (the messages
	// that claim none last, oldest first).
	Findings []Finding
	// Records is how many records delivered to the channel (at or after
	// Since) were looked for there.
	Records int
	// Chained is how many events of the store's log were checked as a chain.
	Chained int
	// Messages is how many messages of the channel were read, in Pages
	// pages of conversations.history.
	Messages, Pages int
	// Since is where the verification started (zero: at the beginning).
	Since time.Time
	// Incomplete, when not empty, says why the channel's history was not
	// read back to Since; Unchecked records (those before ReadBackTo) were
	// then not looked for.
	Incomplete string
	Unchecked  int
	ReadBackTo time.Time
}

// Matches reports whether the store and the channel agree entirely: no
// finding, and the whole period read.
func (r AuditReport) Matches() bool { return len(r.Findings) == 0 && r.Incomplete == "" }

// Count returns how many findings are of kind k.
func (r AuditReport) Count(k FindingKind) int {
	n := 0
	for _, f := range r.Findings {
		if f.Kind == k {
			n++
		}
	}
	return n
}

// verifyLimits bound a verification.
type verifyLimits struct {
	// pageSize is the limit of each conversations.history call; maxPages
	// and budget bound the reading of the history (what was not read by
	// then is reported as not checked).
	pageSize, maxPages int
	budget             time.Duration
	// chainPage is how many events are read from the store at a time.
	chainPage int
}

var defaultVerifyLimits = verifyLimits{pageSize: 200, maxPages: 500, budget: 5 * time.Minute, chainPage: 1000}

// VerifyAudit compares the audit channel with the store, as an auditor
// would:
//
//   - the store's event log must hold as a hash chain (approvals.VerifyChain);
//     every break is a FindingChain;
//   - every audited event at or after since whose record the store marks
//     delivered must have its record in the channel, posted by botUserID and
//     found by its metadata (record number and request ID, or a folded
//     record of refusals whose range holds it): else FindingMissing;
//   - every record found must carry the store's hash and event in its
//     metadata, and the text revokebot renders from the store: else
//     FindingEdited;
//   - every message that looks like a record (metadata revokebot_audit, or
//     text starting with an event word and " request=") but is not one of
//     the store's, posted by revokebot, is a FindingForged.
//
// Other messages (people talking in the channel) are not findings. The
// history is read from a little before since (clocks differ), within bounds
// (the report says when they stopped it). It returns an error only when it
// could not compare: the store or Slack failed, wrapped with the call.
func VerifyAudit(ctx context.Context, api *slack.Client, store VerifyStore, channel, botUserID string, since time.Time) (AuditReport, error) {
	return verifyAudit(ctx, api, store, channel, botUserID, since, defaultVerifyLimits)
}

// verifier holds one verification's state.
type verifier struct {
	api       *slack.Client
	store     VerifyStore
	channel   string
	botUserID string
	since     time.Time
	limits    verifyLimits

	report AuditReport
	// links holds the whole chain as read, by record number; seqs its
	// numbers in order; prev the hash of the last one read.
	links map[int64]approvals.Link
	seqs  []int64
	prev  string
	// broken holds the records where the chain breaks (their findings'
	// index in report.Findings).
	broken map[int64]int
	// requests caches the requests records are rendered from.
	requests map[string]requestRead
}

type requestRead struct {
	r   approvals.Request
	err error
}

func verifyAudit(ctx context.Context, api *slack.Client, store VerifyStore, channel, botUserID string, since time.Time, limits verifyLimits) (AuditReport, error) {
	if botUserID == "" {
		return AuditReport{}, errors.New("verify the audit channel: revokebot's bot user ID is unknown (auth.test)")
	}
	v := &verifier{api: api, store: store, channel: channel, botUserID: botUserID, since: since, limits: limits,
		links: map[int64]approvals.Link{}, broken: map[int64]int{}, requests: map[string]requestRead{}}
	v.report.Since = since

	// The order of the reads makes a bot running meanwhile harmless: a
	// record the outbox (read after the chain) says is delivered was posted
	// before the history is read; a record posted since the chain was read
	// is found in the chain read again at the end.
	if err := v.readChain(ctx); err != nil {
		return v.report, err
	}
	known := len(v.seqs)
	pending, err := v.readOutbox(ctx)
	if err != nil {
		return v.report, err
	}
	messages, err := v.readHistory(ctx)
	if err != nil {
		return v.report, err
	}
	if err := v.readChain(ctx); err != nil {
		return v.report, err
	}

	found := map[int64]bool{}
	var folds []foldRange
	for _, m := range messages {
		if err := v.checkMessage(ctx, m, found, &folds); err != nil {
			return v.report, err
		}
	}
	// A folded record holds its person's refusals within its range.
	for _, f := range folds {
		i, _ := slices.BinarySearch(v.seqs, f.first)
		for ; i < len(v.seqs) && v.seqs[i] <= f.last; i++ {
			if e := v.links[v.seqs[i]].Event; e.Kind == approvals.EventRefused && e.Actor == f.actor {
				found[v.seqs[i]] = true
			}
		}
	}
	cutoff := since
	if v.report.Incomplete != "" {
		cutoff = v.report.ReadBackTo.Add(historyLookback)
	}
	for _, seq := range v.seqs[:known] {
		l := v.links[seq]
		e := l.Event
		if !e.Audited() || pending(l) || e.At.Before(since) {
			continue
		}
		if e.At.Before(cutoff) {
			v.report.Unchecked++
			continue
		}
		v.report.Records++
		if found[seq] {
			continue
		}
		carries := fmt.Sprintf("record %d", seq)
		if e.Kind == approvals.EventRefused {
			carries += ", alone or folded with other refusals"
		}
		v.add(Finding{Kind: FindingMissing, Seq: seq, RequestID: e.Request.ID, At: e.At,
			Explanation: fmt.Sprintf("the %s record is not in the channel: no message of revokebot carries %s, which the database marks delivered (deleted)", e.Kind, carries)})
	}
	slices.SortStableFunc(v.report.Findings, func(a, b Finding) int {
		if (a.Seq == 0) != (b.Seq == 0) {
			if a.Seq == 0 {
				return 1
			}
			return -1
		}
		return cmp.Or(cmp.Compare(a.Seq, b.Seq), a.At.Compare(b.At), strings.Compare(a.TS, b.TS))
	})
	return v.report, nil
}

func (v *verifier) add(f Finding) { v.report.Findings = append(v.report.Findings, f) }

// readChain reads the chain from where it was left (the start, the first
// time), checking it; after a break it goes on from the stored hash, so
// that each altered record is reported once.
func (v *verifier) readChain(ctx context.Context) error {
	var from int64
	if n := len(v.seqs); n > 0 {
		from = v.seqs[n-1] + 1
	}
	for {
		links, err := v.store.Chain(ctx, from, v.limits.chainPage)
		if err != nil {
			return fmt.Errorf("read the event log: %w", err)
		}
		for i := 0; i < len(links); {
			prev, err := approvals.VerifyChain(v.prev, links[i:])
			var cb *approvals.ChainBreak
			if !errors.As(err, &cb) {
				v.prev = prev
				break
			}
			j := i + slices.IndexFunc(links[i:], func(l approvals.Link) bool { return l.Seq == cb.Seq })
			l := links[j]
			v.broken[l.Seq] = len(v.report.Findings)
			v.add(Finding{Kind: FindingChain, Seq: l.Seq, RequestID: l.Event.Request.ID, At: l.Event.At,
				Explanation: fmt.Sprintf("the database's event log was altered here: the stored hash %.12s… is not %.12s…, the one this record's content and the record before it give (this record was changed, or one before it removed or inserted)", cb.Stored, cb.Want)})
			v.prev, i = l.Hash, j+1
		}
		for _, l := range links {
			v.links[l.Seq] = l
			v.seqs = append(v.seqs, l.Seq)
		}
		v.report.Chained += len(links)
		if len(links) == 0 || v.limits.chainPage < 0 || len(links) < v.limits.chainPage {
			return nil
		}
		from = links[len(links)-1].Seq + 1
	}
}

// readOutbox returns a function telling whether a link's record is still
// to deliver to the channel.
func (v *verifier) readOutbox(ctx context.Context) (func(approvals.Link) bool, error) {
	due, err := v.store.Undelivered(ctx, approvals.AuditRecord, -1)
	if err != nil {
		return nil, fmt.Errorf("read the audit outbox: %w", err)
	}
	undelivered := map[int64]bool{}
	for _, d := range due {
		undelivered[d.Seq] = true
	}
	groups, err := v.store.PendingRefusals(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the refusals still to audit: %w", err)
	}
	// An actor's refusals are marked delivered up to a record number: those
	// from the first pending one on are all pending.
	refusalsFrom := map[string]int64{}
	for _, g := range groups {
		refusalsFrom[g.Actor] = g.First.Seq
	}
	return func(l approvals.Link) bool {
		if l.Event.Kind == approvals.EventRefused {
			from, ok := refusalsFrom[l.Event.Actor]
			return ok && l.Seq >= from
		}
		return undelivered[l.Seq]
	}, nil
}

// readHistory reads the channel's messages from a little before since,
// newest first, within the limits; when they stop it, the report says so.
func (v *verifier) readHistory(ctx context.Context) ([]slack.Message, error) {
	params := &slack.GetConversationHistoryParameters{ChannelID: v.channel, Limit: v.limits.pageSize, IncludeAllMetadata: true}
	if !v.since.IsZero() {
		oldest := v.since.Add(-historyLookback)
		params.Oldest = fmt.Sprintf("%d.%06d", oldest.Unix(), oldest.Nanosecond()/1000)
	}
	budget, cancel := context.WithTimeout(ctx, v.limits.budget)
	defer cancel()
	var out []slack.Message
	stop := func(why string) ([]slack.Message, error) {
		v.report.Incomplete = why
		if n := len(out); n > 0 {
			v.report.ReadBackTo = tsTime(out[n-1].Timestamp)
		} else {
			v.report.ReadBackTo = time.Now()
		}
		return out, nil
	}
	for {
		if v.report.Pages == v.limits.maxPages {
			return stop(fmt.Sprintf("stopped after %d pages of history (%d messages), the most one verification reads", v.report.Pages, len(out)))
		}
		resp, err := v.api.GetConversationHistoryContext(budget, params)
		var rl *slack.RateLimitedError
		switch {
		case errors.As(err, &rl):
			if !sleep(budget, rl.RetryAfter) {
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				return stop(fmt.Sprintf("Slack was rate limiting the reading of the history when its %s were up", v.limits.budget))
			}
			continue
		case err != nil && ctx.Err() == nil && budget.Err() != nil:
			return stop(fmt.Sprintf("stopped after %s of reading the history (%d pages, %d messages), the longest one verification reads", v.limits.budget, v.report.Pages, len(out)))
		case err != nil:
			return nil, fmt.Errorf("conversations.history %s: %w", v.channel, err)
		}
		v.report.Pages++
		out = append(out, resp.Messages...)
		v.report.Messages = len(out)
		if !resp.HasMore || resp.ResponseMetaData.NextCursor == "" {
			return out, nil
		}
		params.Cursor = resp.ResponseMetaData.NextCursor
	}
}

// foldRange is the range of a folded record of one actor's refusals.
type foldRange struct {
	first, last int64
	actor       string
}

// recordWords matches the text of a record: an event word (optionally
// after the dry-run prefix), then its request, or, for folded refusals,
// its count, or, for the self-check's records, its record number.
var recordWords = regexp.MustCompile(`^\s*(?:\[DRY RUN\]\s*)?([A-Za-z]+) (?:request|count|record)=`)

var (
	textRequest = regexp.MustCompile(` request=(\S+)`)
	textRecord  = regexp.MustCompile(` record=(\d+)`)
)

// looksLikeRecord reports whether text reads like an audit record.
func looksLikeRecord(text string) bool {
	m := recordWords.FindStringSubmatch(text)
	return m != nil && approvals.EventKind(strings.ToLower(m[1])).Valid()
}

// checkMessage compares message m with the store if it is, or looks like,
// a record, noting in found (and folds) which records it holds.
func (v *verifier) checkMessage(ctx context.Context, m slack.Message, found map[int64]bool, folds *[]foldRange) error {
	isAudit := m.Metadata.EventType == MetadataAudit
	if !isAudit && !looksLikeRecord(m.Text) {
		return nil // not a record: people talking, an approval message
	}
	claim := v.claimOf(m)
	forged := func(format string, args ...any) error {
		v.add(Finding{Kind: FindingForged, Seq: claim.seq, RequestID: claim.request, At: tsTime(m.Timestamp), TS: m.Timestamp,
			Explanation: fmt.Sprintf(format, args...) + fmt.Sprintf(" (message %s)", m.Timestamp)})
		return nil
	}
	if m.User != v.botUserID {
		return forged("a message posted by %s looks like an audit record, but only revokebot (%s) posts them", poster(m), v.botUserID)
	}
	if !claim.ok {
		if isAudit {
			return forged("a message of revokebot with revokebot_audit metadata names no record number and request")
		}
		return forged("a message of revokebot looks like an audit record but has no revokebot_audit metadata, and names no record of the database")
	}
	l, ok := v.links[claim.seq]
	if !ok {
		return forged("a message of revokebot names record %d, which the database does not have", claim.seq)
	}
	if l.Event.Request.ID != claim.request {
		return forged("a message of revokebot names record %d of request %s, but the database's record %d is of request %s", claim.seq, claim.request, claim.seq, l.Event.Request.ID)
	}
	if !isAudit {
		// A record without metadata: revokebot posts none, but its text
		// may still be exactly the database's.
		want, err := v.render(ctx, l, false)
		if err != nil || !slices.Contains(want, slackText(m.Text)) {
			return forged("a message of revokebot looks like record %d but has no revokebot_audit metadata, and its text is not that record's", claim.seq)
		}
		found[claim.seq] = true
		return nil
	}
	found[claim.seq] = true
	return v.compare(ctx, m, l, claim, folds)
}

// claim is what a message says it is.
type claim struct {
	seq, first int64
	count      int
	folded     bool
	request    string
	hash       string
	hasHash    bool
	event      string
	ok         bool // it names a record number and a request
}

// claimOf reads what m says it is: from its metadata, or else its text.
func (v *verifier) claimOf(m slack.Message) claim {
	var c claim
	if m.Metadata.EventType == MetadataAudit {
		p := m.Metadata.EventPayload
		seq, err := strconv.ParseInt(payloadString(p["seq"]), 10, 64)
		if p["request_id"] != nil {
			c.request = clip(payloadString(p["request_id"]), 64)
		}
		c.ok = err == nil && seq > 0 && c.request != ""
		if err == nil {
			c.seq = seq
		}
		c.hash, c.hasHash = p["hash"].(string)
		c.event = payloadString(p["event"])
		if _, ok := p["first_seq"]; ok {
			first, err1 := strconv.ParseInt(payloadString(p["first_seq"]), 10, 64)
			count, err2 := strconv.Atoi(payloadString(p["count"]))
			c.folded, c.first, c.count = true, first, count
			c.ok = c.ok && err1 == nil && err2 == nil
		}
		return c
	}
	if sm := textRequest.FindStringSubmatch(m.Text); sm != nil {
		c.request = clip(sm[1], 64)
	}
	if sm := textRecord.FindStringSubmatch(m.Text); sm != nil {
		c.seq, _ = strconv.ParseInt(sm[1], 10, 64)
	}
	c.ok = c.seq > 0 && c.request != ""
	return c
}

// compare checks a record of revokebot, with metadata, against the store's
// record l.
func (v *verifier) compare(ctx context.Context, m slack.Message, l approvals.Link, c claim, folds *[]foldRange) error {
	e := l.Event
	edited := func(format string, args ...any) error {
		if i, ok := v.broken[l.Seq]; ok {
			// The store was altered at this record: the channel's copy is
			// the one to believe, and says what it was.
			v.report.Findings[i].Explanation += fmt.Sprintf("; the channel's copy of the record (message %s) differs from the database's", m.Timestamp)
			return nil
		}
		where := fmt.Sprintf(" (message %s", m.Timestamp)
		if m.Edited != nil {
			where += fmt.Sprintf(", which Slack marks edited by %s", cmp.Or(m.Edited.User, "someone"))
		}
		v.add(Finding{Kind: FindingEdited, Seq: l.Seq, RequestID: e.Request.ID, At: e.At, TS: m.Timestamp,
			Explanation: fmt.Sprintf(format, args...) + where + ")"})
		return nil
	}
	if c.folded {
		*folds = append(*folds, foldRange{first: c.first, last: l.Seq, actor: e.Actor})
	}
	switch {
	case c.event != string(e.Kind):
		return edited("its metadata says event %q, the database's record is %s", clip(c.event, 32), e.Kind)
	case c.hasHash && c.hash != l.Hash:
		return edited("its metadata carries the hash %.12s…, the database's record has %.12s…", clip(c.hash, 64), l.Hash)
	}
	var want []string
	if c.folded {
		fold, why := v.fold(l, c)
		if why != "" {
			return edited("%s", why)
		}
		var err error
		if want, err = v.renderFold(ctx, fold, m.Text, c.hasHash); err != nil {
			return err
		}
	} else {
		var err error
		if want, err = v.render(ctx, l, c.hasHash); err != nil {
			return err
		}
		if e.Kind == approvals.EventRefused && strings.HasPrefix(m.Text, "refused count=1 ") {
			// A window's only refusal, audited when the window ended.
			fold := approvals.Refusals{Actor: e.Actor, Count: 1}
			fold.First = approvals.Delivery{Seq: l.Seq, Event: e}
			fold.Last = fold.First
			more, err := v.renderFold(ctx, fold, m.Text, c.hasHash)
			if err != nil {
				return err
			}
			want = append(more, want...)
		}
	}
	if len(want) == 0 {
		return edited("the database has no request %s to render the record from: its row was removed", e.Request.ID)
	}
	if !slices.Contains(want, slackText(m.Text)) {
		return edited("its text differs from the record as the database gives it, %s (the message was edited, or the request's row in the database changed)", difference(m.Text, want[0]))
	}
	return nil
}

// slackLink is a link Slack may have made of an address or a URL in a
// message's text: <mailto:a@example.com|a@example.com>, <https://…|…>,
// <https://…>.
var slackLink = regexp.MustCompile(`<(?:mailto:[^|>]*\|([^>]*)|(https?://[^|>]*)(?:\|([^>]*))?)>`)

// slackText undoes the links Slack may make of a record's addresses and
// URLs when it stores the message, so that the text compares with the one
// revokebot sent (which has none: it escapes every <).
func slackText(text string) string {
	return slackLink.ReplaceAllStringFunc(text, func(link string) string {
		m := slackLink.FindStringSubmatch(link)
		return m[1] + cmp.Or(m[3], m[2])
	})
}

// fold returns the refusals a folded record of l stands for, or why its
// metadata does not fit the store.
func (v *verifier) fold(l approvals.Link, c claim) (approvals.Refusals, string) {
	e := l.Event
	first, ok := v.links[c.first]
	switch {
	case e.Kind != approvals.EventRefused:
		return approvals.Refusals{}, fmt.Sprintf("its metadata folds records %d-%d, but the database's record %d is %s, not a refusal", c.first, l.Seq, l.Seq, e.Kind)
	case !ok || c.first > l.Seq || first.Event.Kind != approvals.EventRefused || first.Event.Actor != e.Actor:
		return approvals.Refusals{}, fmt.Sprintf("its metadata folds records %d-%d, but the database's record %d is not a refusal by the same person", c.first, l.Seq, c.first)
	}
	n := 0
	for seq := c.first; seq <= l.Seq; seq++ {
		if o, ok := v.links[seq]; ok && o.Event.Kind == approvals.EventRefused && o.Event.Actor == e.Actor {
			n++
		}
	}
	if n != c.count {
		return approvals.Refusals{}, fmt.Sprintf("its metadata counts %d refusals in records %d-%d, the database has %d", c.count, c.first, l.Seq, n)
	}
	return approvals.Refusals{Actor: e.Actor, Count: n,
		First: approvals.Delivery{Seq: first.Seq, Event: first.Event}, Last: approvals.Delivery{Seq: l.Seq, Event: e}}, ""
}

// request returns request id as stored, reading it once; ok is false if
// the store has none.
func (v *verifier) request(ctx context.Context, id string) (approvals.Request, bool, error) {
	rr, seen := v.requests[id]
	if !seen {
		rr.r, rr.err = v.store.Get(ctx, id)
		v.requests[id] = rr
	}
	switch {
	case errors.Is(rr.err, approvals.ErrNotFound):
		return approvals.Request{}, false, nil
	case rr.err != nil:
		return approvals.Request{}, false, fmt.Errorf("read request %s: %w", id, rr.err)
	}
	return rr.r, true, nil
}

// render returns the texts revokebot may have posted as l's record (none if
// the store has not its request): with its chain link if withHash (records
// posted before the log was a chain carry none), and, for a dry-run
// request, with and without the dry-run prefix, which a request gets when
// it is approved in dry-run mode, after its first records may have gone out.
func (v *verifier) render(ctx context.Context, l approvals.Link, withHash bool) ([]string, error) {
	e := l.Event
	r, ok, err := v.request(ctx, e.Request.ID)
	if err != nil || !ok {
		return nil, err
	}
	if !withHash {
		e.Hash = ""
	}
	var out []string
	for _, dry := range dryRunVariants(r) {
		e.Request = r
		e.Request.DryRun = dry
		out = append(out, auditText(e, l.Seq))
	}
	return out, nil
}

// renderFold returns the texts revokebot may have posted as the folded
// record of fold. The window is not in the store: it is read from the
// record itself (text), so that only it goes unchecked.
func (v *verifier) renderFold(ctx context.Context, fold approvals.Refusals, text string, withHash bool) ([]string, error) {
	r, ok, err := v.request(ctx, fold.Last.Event.Request.ID)
	if err != nil || !ok {
		return nil, err
	}
	window, _ := foldWindow(text)
	if !withHash {
		fold.Last.Event.Hash = ""
	}
	var out []string
	for _, dry := range dryRunVariants(r) {
		fold.Last.Event.Request = r
		fold.Last.Event.Request.DryRun = dry
		out = append(out, foldedRefusalText(fold, window))
	}
	return out, nil
}

// dryRunVariants are the values of DryRun r's records may show.
func dryRunVariants(r approvals.Request) []bool {
	if r.DryRun {
		return []bool{true, false}
	}
	return []bool{false}
}

// foldWindow reads the window="…" of a folded record's text.
func foldWindow(text string) (time.Duration, bool) {
	_, rest, ok := strings.Cut(text, " window=")
	if !ok {
		return 0, false
	}
	quoted, err := strconv.QuotedPrefix(rest)
	if err != nil {
		return 0, false
	}
	s, err := strconv.Unquote(quoted)
	if err != nil {
		return 0, false
	}
	d, err := time.ParseDuration(s)
	return d, err == nil
}

// difference says where got first differs from want, with a little of
// each from there.
func difference(got, want string) string {
	g, w := []rune(got), []rune(want)
	i := 0
	for i < len(g) && i < len(w) && g[i] == w[i] {
		i++
	}
	excerpt := func(r []rune) string {
		if i >= len(r) {
			return `""`
		}
		return strconv.Quote(clip(string(r[i:]), 48))
	}
	return fmt.Sprintf("from character %d: the channel has %s where the database gives %s", i+1, excerpt(g), excerpt(w))
}

// poster names who posted m.
func poster(m slack.Message) string {
	switch {
	case m.User != "":
		return m.User
	case m.BotID != "":
		return "bot " + m.BotID
	case m.Username != "":
		return strconv.Quote(clip(m.Username, 32))
	}
	return "someone unknown"
}

// tsTime is the time of a message timestamp ("seconds.micros").
func tsTime(ts string) time.Time {
	secs, frac, _ := strings.Cut(ts, ".")
	s, err := strconv.ParseInt(secs, 10, 64)
	if err != nil {
		return time.Time{}
	}
	us, _ := strconv.ParseInt((frac + "000000")[:6], 10, 64)
	return time.Unix(s, us*1000).UTC()
}
