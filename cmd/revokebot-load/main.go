// Command revokebot-load measures revokebot under a burst. It runs the real
// revokebot binary as a child process (so that its memory is the bot's
// own) against the fake Slack of bot/bottest, over a real Socket Mode
// websocket, and the fake Cloudflare of cloudflare/cftest, over HTTP, both
// in this process:
//
//	go run ./cmd/revokebot-load [-n 100,500,1000] [-bulk 50] [-settle 30s]
//	    [-bin PATH] [-database postgres://…] [-json] [-inprocess -cpuprofile FILE]
//
// For each burst size n, on a fresh bot and database: the start-up time to
// the Socket Mode connection; n `/revoke <email>` commands sent as fast as
// the websocket takes them (ack latency, time until every approval message
// is posted); then n Approve clicks by another person (ack latency, click
// → the revoke_user call reaching Cloudflare, time until every outcome is
// recorded); the bot's RSS idle, right after the burst and after -settle,
// its peak (VmHWM), and its goroutines (go_goroutines on its /metrics).
// Then one request of -bulk targets, approved, with Cloudflare pacing
// lifted and at its default: the time from the click to the last target's
// outcome.
//
// The per-requester cap and Cloudflare pacing are lifted, so that the bot
// itself is measured; Slack's pacing is -slack-rate. The bot logs at info
// level to a file in a temporary directory, kept when a run fails (the
// error shows the log's last lines) or with -keep.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/revokebot/revokebot/bot"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "revokebot-load:", err)
		}
		os.Exit(1)
	}
}

// options are the settings of one invocation.
type options struct {
	sizes     []int
	bulk      int
	idle      time.Duration
	settle    time.Duration
	poll      time.Duration
	timeout   time.Duration
	database  string
	bin       string
	inProcess bool
	known     bool
	previewed bool
	slackRate string
	// cpuProfile and memProfile are of this process (the bot's too with
	// -inprocess), during and right after each burst.
	cpuProfile, memProfile string
	keep                   bool
	// tempDir holds each run's temporary directory; "" means os.TempDir().
	tempDir string
	jsonOut bool
	// command says how to start a child revokebot: the program, its
	// arguments, and environment variables to add.
	command func() (path string, args, env []string)
	// progress receives a line per step.
	progress io.Writer
}

// parseFlags reads the command line into options.
func parseFlags(args []string, stderr io.Writer) (*options, error) {
	fs := flag.NewFlagSet("revokebot-load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := &options{progress: stderr}
	sizes := fs.String("n", "100,500,1000", "burst sizes, comma-separated: each runs on a fresh bot and database (empty: none)")
	fs.IntVar(&o.bulk, "bulk", 50, "targets of the bulk request, run with Cloudflare pacing lifted and on (0: none)")
	fs.DurationVar(&o.idle, "idle", 2*time.Second, "how long the bot idles after connecting before its idle RSS is read")
	fs.DurationVar(&o.settle, "settle", 30*time.Second, "how long after the burst its RSS and goroutines are read again")
	fs.DurationVar(&o.poll, "poll", 100*time.Millisecond, "how often the bot's RSS and goroutines are read during the burst (0: never; each read of /metrics costs the bot a few database queries)")
	fs.DurationVar(&o.timeout, "timeout", 2*time.Minute, "how long to wait for each step (the acks, the messages, the Cloudflare calls, the outcomes)")
	fs.StringVar(&o.database, "database", "", "a postgres:// URL: each run gets a fresh schema there instead of a fresh SQLite file")
	fs.StringVar(&o.bin, "bin", "", "the revokebot binary to run (default: go build ./cmd/revokebot into a temporary directory)")
	fs.BoolVar(&o.inProcess, "inprocess", false, "run the bot in this process (app.Run) instead of a child: -cpuprofile then profiles it too; memory and goroutines are the whole process's")
	fs.BoolVar(&o.known, "known", true, "make every target a user of the fake Cloudflare, with a session, as in an incident (previewed, verified, watched)")
	fs.BoolVar(&o.previewed, "previewed", true, "approve only once every approval message shows its preview, as a person reading it would (false: as soon as they are posted; a click before the preview makes the verification look the user up again)")
	fs.StringVar(&o.slackRate, "slack-rate", "1000/1s", "SLACK_POST_RATE_LIMIT and SLACK_UPDATE_RATE_LIMIT (the fake Slack has no limit)")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of this process during each burst to this file (-n<size> is added before the extension when there are several sizes)")
	fs.StringVar(&o.memProfile, "memprofile", "", "write a heap profile of this process after each burst to this file")
	fs.BoolVar(&o.keep, "keep", false, "keep each run's temporary directory (database and log)")
	fs.BoolVar(&o.jsonOut, "json", false, "write the results as JSON to standard output (the table then goes to standard error)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: go run ./cmd/revokebot-load [flags]\n\nMeasures revokebot under a burst of commands and approvals. Flags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return nil, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	for _, f := range strings.Split(*sizes, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 || n > 100000 {
			return nil, fmt.Errorf("-n: %q is not a burst size from 1 to 100000", f)
		}
		o.sizes = append(o.sizes, n)
	}
	switch {
	case o.bulk < 0 || o.bulk > 500:
		return nil, fmt.Errorf("-bulk: %d is not from 0 to 500 (REVOKEBOT_MAX_TARGETS' range)", o.bulk)
	case len(bulkCommand(o.bulk)) > bot.MaxCommandLength:
		return nil, fmt.Errorf("-bulk: %d targets do not fit in one command of %d characters", o.bulk, bot.MaxCommandLength)
	case len(o.sizes) == 0 && o.bulk == 0:
		return nil, errors.New("nothing to run: give -n sizes or -bulk targets")
	case o.timeout <= 0:
		return nil, errors.New("-timeout must be positive")
	case o.bin != "" && o.inProcess:
		return nil, errors.New("-bin and -inprocess exclude each other")
	}
	return o, nil
}

// bulkCommand is the text of the bulk request's /revoke.
func bulkCommand(n int) string {
	targets := make([]string, n)
	for i := range targets {
		targets[i] = bulkTarget(i)
	}
	return strings.Join(targets, " ")
}

// run is the whole program: it parses args, builds revokebot if needed,
// measures, and writes the report to stdout (with -json, the table goes to
// stderr and JSON to stdout).
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	opts, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	if !opts.inProcess {
		if opts.bin == "" {
			dir, err := os.MkdirTemp("", "revokebot-load-bin-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(dir)
			opts.bin = filepath.Join(dir, "revokebot")
			fmt.Fprintln(stderr, "building ./cmd/revokebot")
			build := exec.CommandContext(ctx, "go", "build", "-o", opts.bin, "github.com/revokebot/revokebot/cmd/revokebot")
			build.Stdout, build.Stderr = stderr, stderr
			if err := build.Run(); err != nil {
				return fmt.Errorf("go build ./cmd/revokebot: %w", err)
			}
		} else if opts.bin, err = filepath.Abs(opts.bin); err != nil {
			return err
		}
		bin := opts.bin
		opts.command = func() (string, []string, []string) { return bin, nil, nil }
	} else if _, err := os.Stat(".env"); err == nil {
		fmt.Fprintln(stderr, "warning: -inprocess: ./.env fills in the bot's settings that this tool leaves unset")
	}
	rep, err := measure(ctx, opts)
	if rep != nil && (len(rep.Bursts) > 0 || len(rep.Bulk) > 0) {
		table := stdout
		if opts.jsonOut {
			table = stderr
		}
		if werr := writeTable(table, rep); werr != nil {
			return werr
		}
		if opts.jsonOut {
			if werr := writeJSON(stdout, rep); werr != nil {
				return werr
			}
		}
	}
	return err
}

// settings describes opts for the report.
func (o *options) settings() settings {
	s := settings{Binary: o.bin, InProcess: o.inProcess, Database: "sqlite", SlackRate: o.slackRate, KnownTargets: o.known, Previewed: o.previewed,
		IdleSeconds: o.idle.Seconds(), SettleSecond: o.settle.Seconds(), PollMillis: millis(o.poll), CPUs: runtime.NumCPU()}
	if o.inProcess {
		s.Binary = "in process"
	}
	if o.database != "" {
		s.Database = "postgres"
	}
	return s
}

// profilePath is where the profile of the burst of n goes: path, with -n<n>
// before its extension when there are several bursts.
func (o *options) profilePath(path string, n int) string {
	if path == "" || len(o.sizes) < 2 {
		return path
	}
	ext := filepath.Ext(path)
	return strings.TrimSuffix(path, ext) + "-n" + strconv.Itoa(n) + ext
}
