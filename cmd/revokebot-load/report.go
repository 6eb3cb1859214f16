package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"
)

// report is everything one invocation measured. Times are in milliseconds
// unless their name says otherwise, sizes in MB (2^20 bytes).
type report struct {
	Settings settings      `json:"settings"`
	Bursts   []burstResult `json:"bursts"`
	Bulk     []bulkResult  `json:"bulk"`
}

// settings says what was measured, and how.
type settings struct {
	Binary    string `json:"binary"` // the revokebot binary, or "in process"
	InProcess bool   `json:"in_process"`
	Database  string `json:"database"` // "sqlite", or "postgres"
	// SlackRate is SLACK_POST_RATE_LIMIT and SLACK_UPDATE_RATE_LIMIT.
	SlackRate string `json:"slack_rate"`
	// KnownTargets: every target is a user of the fake Cloudflare (with a
	// session), so it is previewed, verified and watched as in production.
	KnownTargets bool `json:"known_targets"`
	// Previewed: the clicks wait until the approval messages show their
	// preview, as a person reading them would.
	Previewed    bool    `json:"previewed"`
	IdleSeconds  float64 `json:"idle_seconds"`
	SettleSecond float64 `json:"settle_seconds"`
	PollMillis   float64 `json:"poll_ms"`
	CPUs         int     `json:"cpus"`
}

// stats summarizes latencies: nearest-rank percentiles, so that
// P50 <= P99 <= Max always.
type stats struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50_ms"`
	P99 float64 `json:"p99_ms"`
	Max float64 `json:"max_ms"`
}

// burstResult is what a burst of N commands, then N approvals, measured.
type burstResult struct {
	N int `json:"n"`
	// Startup is from exec (or app.Run) to the fake Slack's hello.
	Startup float64 `json:"startup_ms"`
	// CommandsSent is how long sending the N commands took.
	CommandsSent float64 `json:"commands_sent_ms"`
	// CommandAck is from sending each command to the fake reading its ack.
	CommandAck stats `json:"command_ack"`
	// ApprovalsPosted is from the first command to the last approval
	// message posted.
	ApprovalsPosted float64 `json:"approvals_posted_ms"`
	// PreviewsDrawn is from the first command to when every approval
	// message was seen redrawn with its preview (within 50 ms), with
	// -previewed; the clicks start then.
	PreviewsDrawn float64 `json:"previews_drawn_ms,omitempty"`
	ClicksSent    float64 `json:"clicks_sent_ms"`
	ClickAck      stats   `json:"click_ack"`
	// ClickToCloudflare is from sending each click to its target's
	// revoke_user call reaching the fake Cloudflare.
	ClickToCloudflare stats `json:"click_to_cloudflare"`
	// OutcomesRecorded is from the first click to the last revoked (or
	// failed) record posted in the audit channel; MessagesSettled to when
	// every approval message was seen showing its outcome (within 50 ms).
	OutcomesRecorded float64 `json:"outcomes_recorded_ms"`
	MessagesSettled  float64 `json:"messages_settled_ms"`
	// Refusals (a busy bot's "try again"), and Cloudflare calls the fake
	// did not answer with success.
	CommandsRefused  int    `json:"commands_refused"`
	ClicksRefused    int    `json:"clicks_refused"`
	FirstRefusal     string `json:"first_refusal,omitempty"`
	CloudflareErrors int    `json:"cloudflare_errors"`
	// CloudflareReads are the reads of the fake Cloudflare by the time
	// every outcome was recorded.
	CloudflareReads readCounts `json:"cloudflare_reads"`
	// Memory of the bot's process: idle before the burst, right after its
	// outcomes, after the settle time, and the peak (VmHWM).
	RSSIdle       float64 `json:"rss_idle_mb"`
	RSSAfterBurst float64 `json:"rss_after_burst_mb"`
	RSSSettled    float64 `json:"rss_settled_mb"`
	RSSPeak       float64 `json:"rss_peak_mb"`
	// AnonIdle, AnonAfterBurst and AnonSettled are RssAnon at those times:
	// RSS without the binary's pages, which stay resident once run.
	AnonIdle       float64 `json:"anon_idle_mb"`
	AnonAfterBurst float64 `json:"anon_after_burst_mb"`
	AnonSettled    float64 `json:"anon_settled_mb"`
	// Goroutines of the bot (go_goroutines); -1 when its /metrics lacks them.
	GoroutinesIdle       int `json:"goroutines_idle"`
	GoroutinesPeak       int `json:"goroutines_peak"`
	GoroutinesAfterBurst int `json:"goroutines_after_burst"`
	GoroutinesSettled    int `json:"goroutines_settled"`
	// CPU seconds used from the first command to the last outcome, by the
	// bot and by this tool (its fakes); the same process with -inprocess.
	BurstWall float64 `json:"burst_wall_s"`
	BotCPU    float64 `json:"bot_cpu_s"`
	ToolCPU   float64 `json:"tool_cpu_s"`
	// LoadAverage is the machine's 1-minute load average as the burst
	// began: how busy it was with other work.
	LoadAverage float64 `json:"load_average"`
}

// readCounts count the requests to the fake Cloudflare's read endpoints.
type readCounts struct {
	Users    int `json:"users"`
	Sessions int `json:"sessions"`
	Logs     int `json:"logs"`
}

func (r readCounts) String() string { return fmt.Sprintf("%d/%d/%d", r.Users, r.Sessions, r.Logs) }

// bulkResult is what one request of many targets, approved, measured.
type bulkResult struct {
	Targets int     `json:"targets"`
	Paced   bool    `json:"cloudflare_paced"`
	Startup float64 `json:"startup_ms"`
	// Posted is from the command to its approval message; PreviewDrawn to
	// when it was seen redrawn with its preview (-previewed): the click
	// goes then.
	Posted       float64 `json:"posted_ms"`
	PreviewDrawn float64 `json:"preview_drawn_ms,omitempty"`
	// From the approval click: the first and the last target's revoke_user
	// call reaching the fake Cloudflare, the message seen showing every
	// outcome (within 50 ms), and the last outcome record in the audit
	// channel.
	FirstCall      float64 `json:"click_to_first_call_ms"`
	LastCall       float64 `json:"click_to_last_call_ms"`
	MessageSettled float64 `json:"click_to_message_settled_ms"`
	LastRecord     float64 `json:"click_to_last_record_ms"`
	// Outcome is the message's fallback text when not every target was revoked.
	Outcome string `json:"outcome,omitempty"`
	// CloudflareReads are the reads of the fake Cloudflare by the time
	// the message was seen settled.
	CloudflareReads readCounts `json:"cloudflare_reads"`
	LoadAverage     float64    `json:"load_average"`
}

// summarize returns the nearest-rank p50, p99 and max of ds.
func summarize(ds []time.Duration) stats {
	if len(ds) == 0 {
		return stats{}
	}
	sorted := slices.Clone(ds)
	slices.Sort(sorted)
	rank := func(p float64) time.Duration {
		return sorted[int(math.Ceil(p*float64(len(sorted))))-1]
	}
	return stats{N: len(ds), P50: millis(rank(0.50)), P99: millis(rank(0.99)), Max: millis(sorted[len(sorted)-1])}
}

func millis(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func megabytes(b int64) float64 { return float64(b) / (1 << 20) }

// writeJSON writes rep as one indented JSON object.
func writeJSON(w io.Writer, rep *report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

// writeTable writes rep for people: one column per burst size, then the
// bulk requests.
func writeTable(w io.Writer, rep *report) error {
	st := rep.Settings
	fmt.Fprintf(w, "revokebot under load: %s, %s, Slack pacing %s, Cloudflare pacing lifted (%s) unless said otherwise, %d CPUs",
		st.Binary, st.Database, st.SlackRate, liftedCloudflareRate, st.CPUs)
	if st.KnownTargets {
		fmt.Fprint(w, ", targets known to Cloudflare")
	}
	if st.Previewed {
		fmt.Fprint(w, ", clicks once the previews are drawn")
	}
	fmt.Fprintln(w)
	if st.InProcess {
		fmt.Fprintln(w, "-inprocess: memory, goroutines and CPU are of the whole process, the fakes and this tool included, not of the bot alone.")
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	if len(rep.Bursts) > 0 {
		fmt.Fprintln(w)
		row := func(label string, cell func(r burstResult) string) {
			cells := []string{padLabel(label)}
			for _, r := range rep.Bursts {
				cells = append(cells, cell(r))
			}
			fmt.Fprintln(tw, strings.Join(cells, "\t")+"\t")
		}
		row("", func(r burstResult) string { return fmt.Sprintf("n=%d", r.N) })
		row("start-up to connected (ms)", func(r burstResult) string { return ms(r.Startup) })
		row("commands sent in (ms)", func(r burstResult) string { return ms(r.CommandsSent) })
		row("command ack p50/p99/max (ms)", func(r burstResult) string { return triple(r.CommandAck) })
		row("first command → last approval message (ms)", func(r burstResult) string { return ms(r.ApprovalsPosted) })
		if st.Previewed {
			row("first command → all previews drawn (ms)", func(r burstResult) string { return ms(r.PreviewsDrawn) })
		}
		row("clicks sent in (ms)", func(r burstResult) string { return ms(r.ClicksSent) })
		row("click ack p50/p99/max (ms)", func(r burstResult) string { return triple(r.ClickAck) })
		row("click → Cloudflare p50/p99/max (ms)", func(r burstResult) string { return triple(r.ClickToCloudflare) })
		row("first click → last outcome record (ms)", func(r burstResult) string { return ms(r.OutcomesRecorded) })
		row("first click → all messages settled (ms)", func(r burstResult) string { return ms(r.MessagesSettled) })
		row("refused commands/clicks", func(r burstResult) string { return fmt.Sprintf("%d/%d", r.CommandsRefused, r.ClicksRefused) })
		row("Cloudflare calls not 2xx", func(r burstResult) string { return fmt.Sprint(r.CloudflareErrors) })
		row("Cloudflare reads users/sessions/logs", func(r burstResult) string { return r.CloudflareReads.String() })
		row("RSS idle (MB)", func(r burstResult) string { return mb(r.RSSIdle) })
		row("RSS peak, VmHWM (MB)", func(r burstResult) string { return mb(r.RSSPeak) })
		row("RSS right after the burst (MB)", func(r burstResult) string { return mb(r.RSSAfterBurst) })
		row(fmt.Sprintf("RSS %s after the burst (MB)", secs(st.SettleSecond)), func(r burstResult) string { return mb(r.RSSSettled) })
		row(fmt.Sprintf("anonymous RSS idle / after / %s after (MB)", secs(st.SettleSecond)), func(r burstResult) string {
			return mb(r.AnonIdle) + " / " + mb(r.AnonAfterBurst) + " / " + mb(r.AnonSettled)
		})
		row("goroutines idle/peak/after", func(r burstResult) string {
			return fmt.Sprintf("%s/%s/%s", count(r.GoroutinesIdle), count(r.GoroutinesPeak), count(r.GoroutinesAfterBurst))
		})
		row(fmt.Sprintf("goroutines %s after", secs(st.SettleSecond)), func(r burstResult) string { return count(r.GoroutinesSettled) })
		if st.InProcess {
			row("CPU s (process) / wall s of the burst", func(r burstResult) string { return fmt.Sprintf("%.2f / %.2f", r.BotCPU, r.BurstWall) })
		} else {
			row("CPU s bot / tool / wall s of the burst", func(r burstResult) string {
				return fmt.Sprintf("%.2f / %.2f / %.2f", r.BotCPU, r.ToolCPU, r.BurstWall)
			})
		}
		row("load average as the burst began", func(r burstResult) string { return fmt.Sprintf("%.2f", r.LoadAverage) })
		if err := tw.Flush(); err != nil {
			return err
		}
		for _, r := range rep.Bursts {
			if r.FirstRefusal != "" {
				fmt.Fprintf(w, "n=%d: refused with %q\n", r.N, r.FirstRefusal)
			}
		}
	}
	if len(rep.Bulk) > 0 {
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		row := func(label string, cell func(r bulkResult) string) {
			cells := []string{padLabel(label)}
			for _, r := range rep.Bulk {
				cells = append(cells, cell(r))
			}
			fmt.Fprintln(tw, strings.Join(cells, "\t")+"\t")
		}
		row("", func(r bulkResult) string {
			if r.Paced {
				return fmt.Sprintf("%d targets, CF paced", r.Targets)
			}
			return fmt.Sprintf("%d targets, CF lifted", r.Targets)
		})
		row("start-up to connected (ms)", func(r bulkResult) string { return ms(r.Startup) })
		row("command → approval message (ms)", func(r bulkResult) string { return ms(r.Posted) })
		if st.Previewed {
			row("command → preview drawn (ms)", func(r bulkResult) string { return ms(r.PreviewDrawn) })
		}
		row("click → first revoke_user (ms)", func(r bulkResult) string { return ms(r.FirstCall) })
		row("click → last revoke_user (ms)", func(r bulkResult) string { return ms(r.LastCall) })
		row("click → last outcome record (ms)", func(r bulkResult) string { return ms(r.LastRecord) })
		row("click → message settled (ms)", func(r bulkResult) string { return ms(r.MessageSettled) })
		row("Cloudflare reads users/sessions/logs", func(r bulkResult) string { return r.CloudflareReads.String() })
		row("load average as the request began", func(r bulkResult) string { return fmt.Sprintf("%.2f", r.LoadAverage) })
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintln(w, "CF paced: CLOUDFLARE_RATE_LIMIT unset (its default, 1200/5m).")
		for _, r := range rep.Bulk {
			if r.Outcome != "" {
				fmt.Fprintf(w, "bulk (%s): not every target was revoked: %s\n", pacingWord(r.Paced), r.Outcome)
			}
		}
	}
	return nil
}

// labelWidth is the width of the tables' first column.
const labelWidth = 44

// padLabel pads a row's label to labelWidth, so that it reads left-aligned
// in a table whose cells align right.
func padLabel(label string) string {
	return label + strings.Repeat(" ", max(0, labelWidth-utf8.RuneCountInString(label)))
}

// ms formats milliseconds: to 0.1 ms below 100 ms, else whole.
func ms(v float64) string {
	if v < 100 {
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.0f", v)
}

func triple(s stats) string { return ms(s.P50) + "/" + ms(s.P99) + "/" + ms(s.Max) }

func mb(v float64) string { return fmt.Sprintf("%.1f", v) }

func count(n int) string {
	if n < 0 {
		return "?"
	}
	return fmt.Sprint(n)
}

func secs(s float64) string { return (time.Duration(s * float64(time.Second))).String() }
