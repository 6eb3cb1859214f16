// Package app is the revokebot program: its commands, its configuration, the
// start-up checks and the wiring of the store, the Cloudflare client, the
// Slack bot and the operations endpoint. cmd/revokebot runs it as a process;
// cmd/revokebot-demo runs it against the fake Slack and Cloudflare.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/google/uuid"
	"github.com/joho/godotenv"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/revokebot/revokebot/approvals"
	"github.com/revokebot/revokebot/bot"
	"github.com/revokebot/revokebot/cloudflare"
	"github.com/revokebot/revokebot/cmd/internal/ops"
	"github.com/slack-go/slack"
	"golang.org/x/sync/errgroup"
)

// version is the program's version, given to Main (cmd/revokebot sets it at
// build time); empty means the module version, or "dev".
var version = ""

const usage = `revokebot: revoke a user's Cloudflare Access sessions from Slack, with a second person's approval.

Usage:
  revokebot            run the bot in the foreground (configuration from the environment and ./.env)
  revokebot help       show this help
  revokebot check      test the configuration, Slack, Cloudflare and the database; exit 1 if anything fails
  revokebot healthcheck
                       ask the running bot's /healthz on REVOKEBOT_HTTP_ADDR; exit 1 unless it answers 200
  revokebot audit verify [--since DATE]
                       compare the audit channel with the database's hash-chained event log: report
                       records deleted, edited or forged, and breaks in the chain; exit 1 unless all match
  revokebot audit export --since DATE [--until DATE] [--format json|csv]
                       write every request of the period, for an auditor, to standard output
  revokebot version    print the version
  revokebot migrate-db --from FILE --to URL
                       copy a SQLite database's whole history into an empty PostgreSQL database (stop revokebot first)

Configuration: see README.md ("Configuration reference").
`

// Main runs revokebot as a process: with its arguments and environment, until
// SIGINT or SIGTERM. It returns the exit status. v is the version to report.
func Main(v string) int {
	version = v
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// After the first signal, a second one kills the process at once.
	context.AfterFunc(ctx, stop)
	err := Run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	switch {
	case err == nil:
		return 0
	case ctx.Err() != nil && errors.Is(err, context.Canceled):
		return 0 // stopped by a signal while starting: that is a clean stop
	}
	fmt.Fprintln(os.Stderr, "revokebot:", err)
	return 1
}

// Run is revokebot's whole program: args are the command line after the
// program name, getenv reads the environment (./.env fills in what it
// lacks). It serves until ctx ends, and returns nil after a clean stop.
func Run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "help", "-h", "--help", "-help":
			fmt.Fprint(stdout, usage)
			return nil
		case "version", "--version":
			fmt.Fprintln(stdout, "revokebot", versionString())
			return nil
		case "check":
			return check(ctx, getenv, stdout)
		case "healthcheck":
			return healthcheck(ctx, getenv, stdout)
		case "audit":
			switch {
			case len(args) > 1 && args[1] == "verify":
				return auditVerify(ctx, args[2:], getenv, stdout, stderr)
			case len(args) > 1 && args[1] == "export":
				return auditExport(ctx, args[2:], getenv, stdout, stderr)
			}
			fmt.Fprint(stderr, usage)
			return errors.New(`"revokebot audit" needs "verify" or "export"`)
		case "migrate-db":
			return migrateDB(ctx, args[1:], stdout, stderr)
		default:
			fmt.Fprint(stderr, usage)
			return fmt.Errorf("unknown command %q", args[0])
		}
	}

	getenv, err := withDotEnv(getenv, ".env")
	if err != nil {
		return err
	}
	cfg, err := loadConfig(getenv)
	if err != nil {
		return fmt.Errorf("invalid configuration (see README.md, \"Configuration reference\"):\n%w", err)
	}
	log := newLogger(cfg, stderr)
	return serve(ctx, cfg, log)
}

// serve wires the store, the Cloudflare client, the bot and the operations
// endpoint, and runs them until ctx ends.
func serve(ctx context.Context, cfg config, log *slog.Logger) error {
	// Bind the endpoint first: a busy port stops the start at once, and
	// /healthz answers while the rest starts.
	var ln net.Listener
	if cfg.HTTPAddr != "" {
		var err error
		if ln, err = ops.Listen(cfg.HTTPAddr); err != nil {
			return err
		}
		defer ln.Close()
	}
	registry := prometheus.NewRegistry()
	metrics := ops.NewMetrics(registry)

	db, budget, err := openDatabase(ctx, cfg.Database)
	if err != nil {
		return openError(cfg.Database, err)
	}
	defer db.Close()
	if err := takeOver(ctx, db); err != nil {
		return fmt.Errorf("REVOKEBOT_DATABASE: %w", err)
	}
	replica := cfg.Replica
	if replica == "" {
		replica = newReplicaName()
	}
	nameOwner, err := takeName(ctx, db, replica, cfg.LeaseTTL)
	if err != nil {
		return err
	}

	cfOpts := cfg.Cloudflare
	cfOpts.WrapTransport = metrics.InstrumentRoundTripper
	cfOpts.Budget = budget
	cfOpts.Logger = log
	cf, err := cloudflare.New(cfOpts)
	if err != nil {
		return fmt.Errorf("CLOUDFLARE_* configuration: %w", err)
	}

	api := slack.New(cfg.SlackBotToken,
		slack.OptionAppLevelToken(cfg.SlackAppToken),
		slack.OptionAPIURL(cfg.SlackAPIURL),
		slack.OptionHTTPClient(slackHTTPClient(slackCallTimeout)))

	// The workspace's team ID is needed to refuse payloads from any other;
	// a wrong bot token would otherwise only show at the first /revoke.
	auth, err := api.AuthTestContext(ctx)
	if err != nil {
		if bot.IsFatalAuthError(err) {
			return fmt.Errorf("slack auth.test: %w (check SLACK_BOT_TOKEN: the Bot User OAuth Token, xoxb-…, of the installed app)", err)
		}
		return fmt.Errorf("slack auth.test: %w (is Slack reachable from here? revokebot needs its workspace's team ID before it serves)", err)
	}

	if err := checkCloudflare(ctx, cf, cfg, log); err != nil {
		return err
	}

	courier := bot.NewCourier(api, db, cfg.AuditChannel, cfg.SlackPacing, log)
	courier.BotUserID = auth.UserID
	courier.Replica = replica
	// A dead replica's deliveries wait three leases for another to take
	// them over: longer than one Slack call at the default lease.
	courier.ClaimTTL = 3 * cfg.LeaseTTL
	courier.RefusalWindow = cfg.RefusalWindow
	courier.Mention = cfg.Notify
	courier.EscalationApprovers = cfg.EscalationApprovers
	directory := bot.NewGroupCache(api, time.Minute)
	directory.TeamID = auth.TeamID
	policy := cfg.Policy
	policy.RequiredApprovals = cfg.RequiredApprovals
	policy.EscalationApprovers = cfg.EscalationApprovers
	svc := &approvals.Service{
		Store:         db,
		Revoker:       cf,
		Notifier:      eventSink{courier: courier, metrics: metrics},
		Directory:     directory,
		Policy:        policy,
		TTL:           cfg.RequestTTL,
		EscalateAfter: cfg.EscalateAfter,
		DryRun:        cfg.DryRun,
		MaxPending:    cfg.MaxPending,
		MaxTargets:    cfg.MaxTargets,
		Replica:       replica,
		LeaseTTL:      cfg.LeaseTTL,
		Inspector:     cf,
		VerifyTimeout: cfg.VerifyTimeout,
		WatchFor:      cfg.WatchFor,
		WatchEvery:    cfg.WatchEvery,
		Logger:        log,
	}
	b := bot.New(api, svc, bot.Config{
		ApprovalChannel:  cfg.ApprovalChannel,
		MaxTargets:       cfg.MaxTargets,
		People:           directory,
		TeamID:           auth.TeamID,
		ResponseURLHosts: responseURLHosts(cfg.SlackAPIURL),
		Logger:           log,
	})
	courier.Posted = b.MessagePosted
	metrics.Watch(ops.Gauges{
		OutboxBacklog: db.Backlog,
		PendingRequests: func(ctx context.Context) (int, error) {
			return db.CountByState(ctx, approvals.StatePending)
		},
		SocketConnected: b.Connected,
		Replica:         replica,
		Leases:          db.HeldLeases,
		WorkQueued:      b.Queued,
		BusyRefusals:    b.BusyRefusals,
	})

	log.Info("starting revokebot", "version", versionString(), "dry_run", cfg.DryRun, "team_id", auth.TeamID,
		"database", databaseLabel(cfg.Database), "replica", replica, "request_ttl", cfg.RequestTTL.String(), "http_addr", cfg.HTTPAddr)

	// The courier delivers the audit outbox (including what a previous run
	// left), and the endpoint answers, until everything else has stopped and
	// the rest is flushed.
	background, stopBackground := context.WithCancel(context.WithoutCancel(ctx))
	defer stopBackground()
	var bg errgroup.Group
	bg.Go(func() error {
		courier.Run(background)
		return nil
	})
	if ln != nil {
		handler := ops.Handler(registry, func(ctx context.Context) error {
			if !b.Connected() {
				return errors.New("the Slack Socket Mode connection is down")
			}
			if err := db.Ping(ctx); err != nil {
				return errors.New("the database does not answer")
			}
			return nil
		})
		bg.Go(func() error {
			err := ops.Serve(background, ln, handler, log)
			if err != nil {
				log.Error("the HTTP endpoint stopped; /healthz and /readyz no longer answer", "err", err)
			}
			return err
		})
	}

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		// Requests approved before a crash or kill, here or on a replica
		// that died, are finished, once each; revocations are detached from
		// gctx, so shutdown waits for them.
		svc.RunResumer(gctx, resumeInterval(cfg.LeaseTTL))
		return nil
	})
	g.Go(func() error {
		svc.RunExpirer(gctx, expiryInterval(cfg.RequestTTL))
		return nil
	})
	g.Go(func() error {
		// Pending verifications and the watch for returns, on one replica.
		svc.RunWatcher(gctx, min(5*time.Second, cfg.WatchEvery))
		return nil
	})
	if cfg.AuditVerifyEvery > 0 {
		g.Go(func() error {
			svc.RunSelfCheck(gctx, cfg.AuditVerifyEvery, selfCheck(api, db, cfg.AuditChannel, auth.UserID))
			return nil
		})
	}
	g.Go(func() error { return keepName(gctx, db, replica, nameOwner, cfg.LeaseTTL, log) })
	g.Go(func() error { return b.Run(gctx) })
	err = g.Wait()
	// Every event is in the outbox by now: deliver what Slack will take in time.
	drain, cancel := context.WithTimeout(context.WithoutCancel(ctx), auditDrainTimeout)
	defer cancel()
	if ferr := courier.Flush(drain); ferr != nil {
		log.Warn("audit outbox not empty at shutdown", "err", ferr)
	}
	stopBackground()
	bg.Wait() // an endpoint failure was logged when it happened
	log.Info("stopped")
	return err
}

// slackCallTimeout bounds one call to Slack's Web API.
const slackCallTimeout = 15 * time.Second

// The connections to Slack kept open between calls: how many, and for how
// long unused.
const (
	slackIdleConns   = 32
	slackIdleTimeout = 20 * time.Second
)

// slackHTTPClient returns the HTTP client every Slack Web API client in
// revokebot uses (slack.OptionHTTPClient): each call gives up after timeout,
// and no redirect is followed. slack-go sends the bot token in the form body
// of its posts, and net/http would send that body again on a 307 or 308, to
// whatever host the redirect names; Slack's API never redirects.
//
// Its transport keeps up to slackIdleConns connections to Slack open between
// calls (net/http's default keeps 2): under a burst the bot's workers and
// courier call Slack at once, and each call past the connections kept would
// open one more (a TLS handshake each), then close it. They close after
// slackIdleTimeout unused, so that a burst's connections do not outlive it
// for long.
func slackHTTPClient(timeout time.Duration) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = slackIdleConns
	t.IdleConnTimeout = slackIdleTimeout
	return &http.Client{
		Transport: t,
		Timeout:   timeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			return fmt.Errorf("refusing to follow a redirect to %s: the request carries the Slack token (is SLACK_API_URL right?)", req.URL.Host)
		},
	}
}

// responseURLHosts are the hosts private replies may go to: Slack's, and the
// Slack API's host when SLACK_API_URL points elsewhere (a test double serves
// both there).
func responseURLHosts(apiURL string) []string {
	hosts := []string{bot.DefaultResponseURLHost}
	if u, err := url.Parse(apiURL); err == nil && apiURL != defaultSlackAPIURL {
		hosts = append(hosts, u.Host)
	}
	return hosts
}

// eventSink is told of every recorded event: it counts it for the metrics
// and wakes the courier that delivers it.
type eventSink struct {
	courier *bot.Courier
	metrics *ops.Metrics
}

func (s eventSink) Notify(ctx context.Context, e approvals.Event) {
	if e.Audited() {
		s.metrics.Event(string(e.Kind))
	}
	switch e.Kind {
	case approvals.EventRevoked, approvals.EventVerified, approvals.EventUnverified:
		// The target's verification as the event left it.
		for _, t := range e.Request.Targets {
			if t.Email == e.Target {
				s.metrics.Verification(string(t.Check.State))
			}
		}
	case approvals.EventRelogin:
		s.metrics.Relogin()
	}
	s.courier.Notify(ctx, e)
}

// auditDrainTimeout bounds how long shutdown waits for Slack to take the
// audit records still in the outbox; the rest are delivered at the next start.
const auditDrainTimeout = 10 * time.Second

// checkCloudflare verifies the API token, so that a wrong one shows at start-up
// rather than as a failed revocation in an incident. A token Cloudflare
// rejects stops the start (in dry run, only a warning); if Cloudflare cannot
// be reached, it warns and goes on.
func checkCloudflare(ctx context.Context, cf *cloudflare.Client, cfg config, log *slog.Logger) error {
	if cfg.Cloudflare.APIToken == "" {
		return nil // the legacy global key has no verify endpoint
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	status, err := cf.VerifyToken(ctx)
	if err != nil && cfg.Cloudflare.AccountID != "" {
		// Account-owned tokens verify under the account instead.
		status, err = cf.VerifyAccountToken(ctx)
	}
	var apiErr *cloudflare.APIError
	switch {
	case err == nil && status.Status == "active":
		log.Info("cloudflare token verified", "token_id", status.ID)
		return nil
	case err == nil:
		err = fmt.Errorf("token status is %q, not active", status.Status)
	case !errors.As(err, &apiErr):
		log.Warn("cloudflare token not verified: API unreachable; starting anyway", "err", err)
		return nil
	}
	err = fmt.Errorf("CLOUDFLARE_API_TOKEN: Cloudflare does not accept it: %w", err)
	if cfg.DryRun {
		log.Warn("dry run: starting with a Cloudflare token that does not verify", "err", err)
		return nil
	}
	return err
}

// resumeInterval is how often each replica looks for revocations whose
// lease has ended (their replica died): a third of the lease, at most 5 s,
// so that one is taken over within the lease and a little more.
func resumeInterval(lease time.Duration) time.Duration {
	return min(lease/3, 5*time.Second)
}

// newReplicaName names this process among the replicas: the host name (a
// pod's name, in Kubernetes) and a random suffix, new at each start.
func newReplicaName() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "revokebot"
	}
	return host + "-" + uuid.NewString()[:8]
}

// expiryInterval is how often pending requests are checked for expiry: often
// enough that a request expires within a tenth of its lifetime.
func expiryInterval(ttl time.Duration) time.Duration {
	return min(max(ttl/10, 100*time.Millisecond), 30*time.Second)
}

// withDotEnv returns a getenv that falls back to the values in path, if that
// file exists. The real environment wins over the file.
func withDotEnv(getenv func(string) string, path string) (func(string) string, error) {
	values, err := godotenv.Read(path)
	if errors.Is(err, fs.ErrNotExist) {
		return getenv, nil
	}
	if err != nil {
		// The parser's message quotes the file, secrets included: withhold it.
		return nil, fmt.Errorf("%s is not a valid .env file: write one KEY=value per line, and close every quote (details withheld: they may contain secrets)", path)
	}
	return func(name string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return values[name]
	}, nil
}

func newLogger(cfg config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

func versionString() string {
	if version != "" {
		return version
	}
	if info, ok := debug.ReadBuildInfo(); ok && info.Main.Version != "" && info.Main.Version != "(devel)" {
		return info.Main.Version
	}
	return "dev"
}
