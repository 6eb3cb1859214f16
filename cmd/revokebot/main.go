// Command revokebot is a Slack bot that revokes a user's Cloudflare Access
// sessions after a second person approves. Run it with no arguments to serve;
// `revokebot help` lists the commands.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/joho/godotenv"
	"github.com/revokebot/revokebot/approvals"
	"github.com/revokebot/revokebot/approvals/sqlite"
	"github.com/revokebot/revokebot/bot"
	"github.com/revokebot/revokebot/cloudflare"
	"github.com/slack-go/slack"
	"golang.org/x/sync/errgroup"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = ""

const usage = `revokebot: revoke a user's Cloudflare Access sessions from Slack, with a second person's approval.

Usage:
  revokebot            run the bot in the foreground (configuration from the environment and ./.env)
  revokebot help       show this help
  revokebot version    print the version

Configuration: see README.md ("Configuration reference").
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// After the first signal, a second one kills the process at once.
	context.AfterFunc(ctx, stop)
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "revokebot:", err)
		os.Exit(1)
	}
}

// run is revokebot's whole program behind main, so tests can drive it.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "help", "-h", "--help", "-help":
			fmt.Fprint(stdout, usage)
			return nil
		case "version", "--version":
			fmt.Fprintln(stdout, "revokebot", versionString())
			return nil
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

// serve wires the store, the Cloudflare client and the bot, and runs them
// until ctx ends.
func serve(ctx context.Context, cfg config, log *slog.Logger) error {
	db, err := sqlite.Open(ctx, cfg.Database)
	if err != nil {
		return fmt.Errorf("REVOKEBOT_DATABASE: %w", err)
	}
	defer db.Close()

	cf, err := cloudflare.New(cfg.Cloudflare)
	if err != nil {
		return fmt.Errorf("CLOUDFLARE_* configuration: %w", err)
	}

	api := slack.New(cfg.SlackBotToken,
		slack.OptionAppLevelToken(cfg.SlackAppToken),
		slack.OptionAPIURL(cfg.SlackAPIURL),
		slack.OptionHTTPClient(&http.Client{Timeout: 15 * time.Second}))

	// A wrong bot token would otherwise only show at the first /revoke.
	if _, err := api.AuthTestContext(ctx); err != nil {
		if bot.IsFatalAuthError(err) {
			return fmt.Errorf("slack auth.test: %w (check SLACK_BOT_TOKEN: the Bot User OAuth Token, xoxb-…, of the installed app)", err)
		}
		log.Warn("slack auth.test failed; starting anyway", "err", err)
	}

	if err := checkCloudflare(ctx, cf, cfg, log); err != nil {
		return err
	}

	auditor := bot.NewAuditor(api, cfg.AuditChannel, log)
	svc := &approvals.Service{
		Store:     db,
		Revoker:   cf,
		Notifier:  auditor,
		Directory: bot.NewGroupCache(api, time.Minute),
		Policy:    cfg.Policy,
		TTL:       cfg.RequestTTL,
		DryRun:    cfg.DryRun,
		Logger:    log,
	}
	b := bot.New(api, svc, bot.Config{ApprovalChannel: cfg.ApprovalChannel, Logger: log})

	log.Info("starting revokebot", "version", versionString(), "dry_run", cfg.DryRun,
		"database", cfg.Database, "request_ttl", cfg.RequestTTL.String())
	// Requests approved before a crash are finished before anything new starts.
	if err := svc.Resume(context.WithoutCancel(ctx)); err != nil {
		log.Error("resume interrupted revocations", "err", err)
	}

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		svc.RunExpirer(gctx, expiryInterval(cfg.RequestTTL))
		return nil
	})
	g.Go(func() error { return b.Run(gctx) })
	err = g.Wait()
	// Everything that happened is queued for the audit channel by now.
	drain, cancel := context.WithTimeout(context.WithoutCancel(ctx), auditDrainTimeout)
	defer cancel()
	if derr := auditor.Close(drain); derr != nil {
		log.Error("audit records left undelivered (their text is logged above)", "err", derr)
	}
	log.Info("stopped")
	return err
}

// auditDrainTimeout bounds how long shutdown waits for Slack to take the
// remaining audit records.
const auditDrainTimeout = time.Minute

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
