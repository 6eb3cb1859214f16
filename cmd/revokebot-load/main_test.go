package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/revokebot/revokebot/cmd/internal/app"
)

// childEnv marks the test binary started as the bot: it runs revokebot's
// Main instead of the tests, so that no build is needed.
const childEnv = "REVOKEBOT_LOAD_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		os.Args = os.Args[:1] // drop the test flags: revokebot serves
		os.Exit(app.Main("test"))
	}
	os.Exit(m.Run())
}

// testOptions are a small run's: a burst of 10 and a bulk request of 5,
// with the test binary as the bot.
func testOptions(t *testing.T) *options {
	return &options{
		sizes: []int{10}, bulk: 5, idle: 50 * time.Millisecond, settle: 100 * time.Millisecond,
		poll: 20 * time.Millisecond, timeout: 30 * time.Second, known: true, previewed: true, slackRate: "1000/1s",
		bin: os.Args[0], progress: testWriter{t}, tempDir: t.TempDir(),
		command: func() (string, []string, []string) {
			// Under -race the child would sleep a second at exit.
			return os.Args[0], []string{"-test.run=^$"}, []string{childEnv + "=1", "GORACE=atexit_sleep_ms=0"}
		},
	}
}

// TestMeasure runs the whole measurement small: every ack, message and call
// is seen, and every figure is there and consistent. It asserts no timing.
func TestMeasure(t *testing.T) {
	t.Parallel()
	opts := testOptions(t)
	rep, err := measure(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Bursts) != 1 || len(rep.Bulk) != 2 {
		t.Fatalf("%d bursts and %d bulk requests measured, want 1 and 2", len(rep.Bursts), len(rep.Bulk))
	}
	b := rep.Bursts[0]
	for name, s := range map[string]stats{"command ack": b.CommandAck, "click ack": b.ClickAck, "click → Cloudflare": b.ClickToCloudflare} {
		if s.N != 10 {
			t.Errorf("%s: %d measured, want 10", name, s.N)
		}
		if !(0 < s.P50 && s.P50 <= s.P99 && s.P99 <= s.Max) {
			t.Errorf("%s: p50 %v, p99 %v, max %v: want 0 < p50 <= p99 <= max", name, s.P50, s.P99, s.Max)
		}
	}
	if b.CommandsRefused != 0 || b.ClicksRefused != 0 || b.CloudflareErrors != 0 {
		t.Errorf("%d commands and %d clicks refused (%q), %d Cloudflare errors", b.CommandsRefused, b.ClicksRefused, b.FirstRefusal, b.CloudflareErrors)
	}
	for name, v := range map[string]float64{
		"start-up": b.Startup, "approvals posted": b.ApprovalsPosted, "previews drawn": b.PreviewsDrawn, "outcomes recorded": b.OutcomesRecorded,
		"messages settled": b.MessagesSettled, "RSS idle": b.RSSIdle, "RSS after": b.RSSAfterBurst,
		"RSS settled": b.RSSSettled, "bot CPU": b.BotCPU, "wall": b.BurstWall,
		"anonymous RSS idle": b.AnonIdle, "anonymous RSS after": b.AnonAfterBurst, "anonymous RSS settled": b.AnonSettled,
	} {
		if v <= 0 {
			t.Errorf("%s: %v, want more than 0", name, v)
		}
	}
	if b.AnonIdle > b.RSSIdle || b.AnonAfterBurst > b.RSSAfterBurst || b.AnonSettled > b.RSSSettled {
		t.Errorf("anonymous RSS above RSS: idle %v/%v, after %v/%v, settled %v/%v", b.AnonIdle, b.RSSIdle, b.AnonAfterBurst, b.RSSAfterBurst, b.AnonSettled, b.RSSSettled)
	}
	if b.RSSPeak < b.RSSIdle || b.RSSPeak < b.RSSAfterBurst || b.RSSPeak < b.RSSSettled {
		t.Errorf("peak RSS %v below idle %v, after %v or settled %v", b.RSSPeak, b.RSSIdle, b.RSSAfterBurst, b.RSSSettled)
	}
	if b.GoroutinesIdle <= 0 || b.GoroutinesSettled <= 0 || b.GoroutinesPeak < b.GoroutinesIdle || b.GoroutinesPeak < b.GoroutinesAfterBurst {
		t.Errorf("goroutines idle %d, peak %d, after %d, settled %d", b.GoroutinesIdle, b.GoroutinesPeak, b.GoroutinesAfterBurst, b.GoroutinesSettled)
	}
	// Each click reached Cloudflare after its approval message was posted,
	// and its outcome was recorded after that.
	if b.ClickToCloudflare.Max > b.OutcomesRecorded {
		t.Errorf("a click reached Cloudflare %v ms after it was sent, after the last outcome (%v ms after the first click)", b.ClickToCloudflare.Max, b.OutcomesRecorded)
	}
	for _, r := range rep.Bulk {
		if r.Targets != 5 || r.Outcome != "" {
			t.Errorf("bulk %+v: want 5 targets, all revoked", r)
		}
		if !(0 < r.Startup && 0 < r.Posted && r.Posted <= r.PreviewDrawn && 0 < r.FirstCall && r.FirstCall <= r.LastCall && r.LastCall <= r.LastRecord && 0 < r.MessageSettled) {
			t.Errorf("bulk %+v: figures missing or out of order", r)
		}
	}
	if !rep.Bulk[1].Paced || rep.Bulk[0].Paced {
		t.Errorf("bulk requests paced %v, %v; want lifted, then paced", rep.Bulk[0].Paced, rep.Bulk[1].Paced)
	}

	var table, js bytes.Buffer
	if err := writeTable(&table, rep); err != nil {
		t.Fatal(err)
	}
	if err := writeJSON(&js, rep); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"n=10", "click → Cloudflare p50/p99/max (ms)", "5 targets, CF paced"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}
	if !strings.Contains(js.String(), `"click_to_cloudflare"`) {
		t.Errorf("JSON lacks the click → Cloudflare figures:\n%s", js.String())
	}
}

// TestFailureShowsLog: a bot that dies at start fails the run with the end
// of its log.
func TestFailureShowsLog(t *testing.T) {
	t.Parallel()
	opts := testOptions(t)
	opts.bulk = 0
	opts.command = func() (string, []string, []string) {
		return "/bin/sh", []string{"-c", "echo 'invalid configuration: boom' >&2; exit 3"}, nil
	}
	_, err := measure(context.Background(), opts)
	if err == nil || !strings.Contains(err.Error(), "revokebot exited: exit status 3") || !strings.Contains(err.Error(), "invalid configuration: boom") {
		t.Fatalf("measure with a bot that exits: %v", err)
	}
}

func TestSummarize(t *testing.T) {
	t.Parallel()
	var ds []time.Duration
	for i := 100; i >= 1; i-- {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	if got, want := summarize(ds), (stats{N: 100, P50: 50, P99: 99, Max: 100}); got != want {
		t.Errorf("summarize(1..100 ms) = %+v, want %+v", got, want)
	}
	if got, want := summarize(ds[99:]), (stats{N: 1, P50: 1, P99: 1, Max: 1}); got != want {
		t.Errorf("summarize(1 ms) = %+v, want %+v", got, want)
	}
}

func TestFlags(t *testing.T) {
	t.Parallel()
	var stderr bytes.Buffer
	o, err := parseFlags([]string{"-n", "5, 7", "-bulk", "3", "-settle", "1s"}, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	if len(o.sizes) != 2 || o.sizes[0] != 5 || o.sizes[1] != 7 || o.bulk != 3 || o.settle != time.Second {
		t.Errorf("options %+v", o)
	}
	if got, want := o.profilePath("cpu.out", 7), "cpu-n7.out"; got != want {
		t.Errorf("profile path %q, want %q", got, want)
	}
	for _, args := range [][]string{{"-n", "0"}, {"-n", "x"}, {"-bulk", "501"}, {"-bulk", "200"}, {"-n", "", "-bulk", "0"}, {"-bin", "x", "-inprocess"}, {"extra"}} {
		if _, err := parseFlags(args, &stderr); err == nil {
			t.Errorf("parseFlags(%q) accepted", args)
		}
	}
}

// testWriter writes the progress lines to the test's log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// TestMeasureInProcess runs a small burst with the bot in this process
// (-inprocess), profiling it.
func TestMeasureInProcess(t *testing.T) {
	t.Parallel()
	opts := testOptions(t)
	opts.sizes, opts.bulk, opts.inProcess = []int{5}, 0, true
	opts.cpuProfile = t.TempDir() + "/cpu.out"
	rep, err := measure(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if b := rep.Bursts[0]; b.ClickToCloudflare.N != 5 || b.RSSPeak <= 0 || b.GoroutinesPeak <= 0 {
		t.Errorf("burst %+v", b)
	}
	if fi, err := os.Stat(opts.cpuProfile); err != nil || fi.Size() == 0 {
		t.Errorf("no CPU profile: %v", err)
	}
}
