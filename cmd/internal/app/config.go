package app

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/revokebot/revokebot/approvals"
	"github.com/revokebot/revokebot/bot"
	"github.com/revokebot/revokebot/cloudflare"
)

// config is everything revokebot reads from its environment.
type config struct {
	SlackAppToken   string
	SlackBotToken   string
	SlackAPIURL     string
	Cloudflare      cloudflare.Options
	AuditChannel    string
	ApprovalChannel string
	Policy          approvals.Policy
	RequestTTL      time.Duration
	Database        string
	DryRun          bool
	LogLevel        slog.Level
	LogFormat       string
	// HTTPAddr is where /healthz, /readyz and /metrics listen (host:port);
	// empty turns the endpoint off.
	HTTPAddr string
	// MaxPending is how many pending requests one requester may have.
	MaxPending int
	// SlackPacing is how fast messages are posted and edited.
	SlackPacing bot.Pacing
	// RefusalWindow folds one person's refused attempts into one audit
	// record per window.
	RefusalWindow time.Duration
	// MaxTargets is the most targets one /revoke may name.
	MaxTargets int
	// RequiredApprovals is how many distinct approvers, never the
	// requester, must approve a request before Cloudflare is called.
	RequiredApprovals int
	// Notify is who each approval message mentions; empty: nobody.
	Notify approvals.Audience
	// EscalateAfter is how long a request may wait for a decision before it
	// is escalated to EscalationApprovers; 0: never. Always shorter than
	// RequestTTL.
	EscalateAfter time.Duration
	// EscalationApprovers is who a request is escalated to; set exactly when
	// EscalateAfter is.
	EscalationApprovers approvals.Audience
	// LeaseTTL is how long a replica's lease on a revocation in progress
	// lasts unless renewed: the longest another replica waits before it
	// takes over from one that died. Its claims on deliveries to Slack last
	// three times as long.
	LeaseTTL time.Duration
	// Replica names this process among the replicas sharing the database;
	// empty: the host name and a random suffix, new at each start.
	Replica string
	// VerifyTimeout is how long a revoked person's sessions are looked at,
	// at most, before the verification gives up (unverified).
	VerifyTimeout time.Duration
	// WatchFor is how long a revoked person is watched for a return (0:
	// not watched); WatchEvery, how often their logins are read.
	WatchFor, WatchEvery time.Duration
	// AuditVerifyEvery is how often the audit trail checks itself (0: never).
	AuditVerifyEvery time.Duration
}

// The defaults of REVOKEBOT_MAX_TARGETS and REVOKEBOT_REQUIRED_APPROVALS.
const (
	defaultMaxTargets        = 50
	defaultRequiredApprovals = 1
)

// The API roots revokebot talks to unless SLACK_API_URL or
// CLOUDFLARE_BASE_URL say otherwise.
const (
	defaultSlackAPIURL       = "https://slack.com/api/"
	defaultCloudflareBaseURL = "https://api.cloudflare.com/client/v4"
)

var (
	channelID = regexp.MustCompile(`^[CG][A-Z0-9]{2,20}$`)
	userID    = regexp.MustCompile(`^[UW][A-Z0-9]{2,20}$`)
	groupID   = regexp.MustCompile(`^S[A-Z0-9]{2,20}$`)
	cfID      = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	// libpqSetting finds a keyword=value setting of a libpq connection
	// string, which is not a file path.
	libpqSetting = regexp.MustCompile(`(^|\s)(host|hostaddr|port|user|password|dbname|sslmode|service)\s*=`)
	// replicaName is a replica's name: a pod name fits.
	replicaName = regexp.MustCompile(`^[A-Za-z0-9._-]{1,63}$`)
)

// loadConfig reads and checks the configuration. It reports every problem at
// once, each naming its variable, and never includes a secret's value.
func loadConfig(getenv func(string) string) (config, error) {
	var (
		c    config
		errs []error
	)
	// Each variable is reported once, with its first problem.
	reported := map[string]bool{}
	bad := func(name, format string, args ...any) {
		if reported[name] {
			return
		}
		reported[name] = true
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{name}, args...)...))
	}
	get := func(name string) string {
		v := strings.TrimSpace(getenv(name))
		if strings.Contains(v, "REPLACE-ME") {
			bad(name, "still holds the placeholder from .env.example: put your real value in .env")
			return ""
		}
		return v
	}
	secret := func(name, prefix, what string) string {
		v := get(name)
		switch {
		case v == "":
			bad(name, "is required: %s", what)
		case !strings.HasPrefix(v, prefix):
			bad(name, "does not start with %q: %s", prefix, what)
		}
		return v
	}

	c.SlackAppToken = secret("SLACK_APP_TOKEN", "xapp-", "the app-level token (xapp-…) with connections:write, from your Slack app's Basic Information page")
	c.SlackBotToken = secret("SLACK_BOT_TOKEN", "xoxb-", "the bot token (xoxb-…) from your Slack app's OAuth & Permissions page")
	c.SlackAPIURL = defaultSlackAPIURL
	if v := get("SLACK_API_URL"); v != "" {
		if err := checkAPIURL(v, defaultSlackAPIURL, "the bot and app tokens"); err != nil {
			bad("SLACK_API_URL", "%v", err)
		} else {
			c.SlackAPIURL = strings.TrimSuffix(v, "/") + "/"
		}
	}

	cf := &c.Cloudflare
	cf.APIToken, cf.Email, cf.APIKey = get("CLOUDFLARE_API_TOKEN"), get("CLOUDFLARE_EMAIL"), get("CLOUDFLARE_API_KEY")
	switch {
	case cf.APIToken != "" && (cf.Email != "" || cf.APIKey != ""):
		bad("CLOUDFLARE_API_TOKEN", "set either CLOUDFLARE_API_TOKEN, or CLOUDFLARE_EMAIL with CLOUDFLARE_API_KEY, not both")
	case cf.APIToken == "" && cf.Email == "" && cf.APIKey == "":
		bad("CLOUDFLARE_API_TOKEN", "is required (or CLOUDFLARE_EMAIL with CLOUDFLARE_API_KEY): an API token with the permission \"Access: Organizations, Identity Providers, and Groups Write\"")
	case cf.APIToken == "" && cf.Email == "":
		bad("CLOUDFLARE_EMAIL", "is required with CLOUDFLARE_API_KEY")
	case cf.APIToken == "" && cf.APIKey == "":
		bad("CLOUDFLARE_API_KEY", "is required with CLOUDFLARE_EMAIL")
	}
	cf.AccountID, cf.ZoneID = get("CLOUDFLARE_ACCOUNT_ID"), get("CLOUDFLARE_ZONE_ID")
	switch {
	case cf.AccountID != "" && cf.ZoneID != "":
		bad("CLOUDFLARE_ACCOUNT_ID", "set either CLOUDFLARE_ACCOUNT_ID or CLOUDFLARE_ZONE_ID, not both")
	case cf.AccountID == "" && cf.ZoneID == "":
		bad("CLOUDFLARE_ACCOUNT_ID", "is required (or CLOUDFLARE_ZONE_ID): the ID in your Cloudflare dashboard's URL")
	case cf.AccountID != "" && !cfID.MatchString(cf.AccountID):
		bad("CLOUDFLARE_ACCOUNT_ID", "%q is not an account ID (letters, digits, - and _)", cf.AccountID)
	case cf.ZoneID != "" && !cfID.MatchString(cf.ZoneID):
		bad("CLOUDFLARE_ZONE_ID", "%q is not a zone ID (letters, digits, - and _)", cf.ZoneID)
	}
	cf.RateLimit = cloudflare.DefaultRateLimit
	if v := get("CLOUDFLARE_RATE_LIMIT"); v != "" {
		rl, err := parseRateLimit(v)
		if err != nil {
			bad("CLOUDFLARE_RATE_LIMIT", "%q %v", v, err)
		} else {
			cf.RateLimit = rl
		}
	}
	c.SlackPacing = bot.DefaultPacing
	if v := get("SLACK_POST_RATE_LIMIT"); v != "" {
		if rl, err := parseRateLimit(v); err != nil {
			bad("SLACK_POST_RATE_LIMIT", "%q %v", v, err)
		} else {
			c.SlackPacing.PostEvery, c.SlackPacing.PostBurst = rl.Per/time.Duration(rl.Requests), max(1, rl.Requests/5)
		}
	}
	if v := get("SLACK_UPDATE_RATE_LIMIT"); v != "" {
		if rl, err := parseRateLimit(v); err != nil {
			bad("SLACK_UPDATE_RATE_LIMIT", "%q %v", v, err)
		} else {
			c.SlackPacing.ReadEvery, c.SlackPacing.ReadBurst = rl.Per/time.Duration(rl.Requests), max(1, rl.Requests/5)
		}
	}
	cf.BaseURL = defaultCloudflareBaseURL
	if v := get("CLOUDFLARE_BASE_URL"); v != "" {
		if err := checkAPIURL(v, defaultCloudflareBaseURL, "the Cloudflare token or key"); err != nil {
			bad("CLOUDFLARE_BASE_URL", "%v", err)
		} else {
			cf.BaseURL = v
		}
	}

	channel := func(name string, required bool) string {
		v := get(name)
		switch {
		case v == "" && required:
			bad(name, "is required: a channel ID like C0123ABCD (in Slack: channel details → About, at the bottom)")
		case v != "" && !channelID.MatchString(v):
			bad(name, "%q is not a channel ID like C0123ABCD (use the ID, not the #name)", v)
		}
		return v
	}
	c.AuditChannel = channel("REVOKEBOT_AUDIT_CHANNEL", true)
	c.ApprovalChannel = channel("REVOKEBOT_APPROVAL_CHANNEL", false)

	// audience reads a comma-separated list of user and user group IDs; an
	// optional one may be empty.
	audience := func(name string, required bool) approvals.Audience {
		var a approvals.Audience
		invalid := 0
		for _, id := range strings.Split(get(name), ",") {
			id = strings.TrimSpace(id)
			switch {
			case id == "":
			case userID.MatchString(id):
				a.Users = append(a.Users, id)
			case groupID.MatchString(id):
				a.Groups = append(a.Groups, id)
			default:
				invalid++
				bad(name, "%q is neither a Slack user ID (U…, W…) nor a user group ID (S…)", id)
			}
		}
		if required && a.Empty() && invalid == 0 {
			bad(name, "is required: comma-separated Slack user IDs (U…) and user group IDs (S…); nobody is allowed by default")
		}
		return a
	}
	c.Policy.Requesters = audience("REVOKEBOT_REQUESTERS", true)
	c.Policy.Approvers = audience("REVOKEBOT_APPROVERS", true)
	c.Notify = audience("REVOKEBOT_NOTIFY", false)

	c.RequestTTL = approvals.DefaultTTL
	if v := get("REVOKEBOT_REQUEST_TTL"); v != "" {
		d, err := time.ParseDuration(v)
		switch {
		case err != nil:
			bad("REVOKEBOT_REQUEST_TTL", "%q is not a duration like 30m or 1h", v)
		case d < time.Second || d > 7*24*time.Hour:
			bad("REVOKEBOT_REQUEST_TTL", "%s is out of range: between 1s and 168h", d)
		default:
			c.RequestTTL = d
		}
	}

	// Escalation: a duration and who to escalate to, both or neither.
	escalateAfter := get("REVOKEBOT_ESCALATE_AFTER")
	if escalateAfter != "" {
		d, err := time.ParseDuration(escalateAfter)
		switch {
		case err != nil:
			bad("REVOKEBOT_ESCALATE_AFTER", "%q is not a duration like 10m (unset it to never escalate)", escalateAfter)
		case d <= 0:
			bad("REVOKEBOT_ESCALATE_AFTER", "%s is out of range: more than 0 and shorter than REVOKEBOT_REQUEST_TTL (unset it to never escalate)", d)
		case d >= c.RequestTTL && !reported["REVOKEBOT_REQUEST_TTL"]:
			bad("REVOKEBOT_ESCALATE_AFTER", "%s is not shorter than REVOKEBOT_REQUEST_TTL (%s), so no request would still be pending to escalate: "+
				"shorten REVOKEBOT_ESCALATE_AFTER or lengthen REVOKEBOT_REQUEST_TTL", d, c.RequestTTL)
		default:
			c.EscalateAfter = d
		}
	}
	c.EscalationApprovers = audience("REVOKEBOT_ESCALATION_APPROVERS", false)
	switch {
	case reported["REVOKEBOT_ESCALATION_APPROVERS"] || reported["REVOKEBOT_ESCALATE_AFTER"]:
	case escalateAfter != "" && c.EscalationApprovers.Empty():
		bad("REVOKEBOT_ESCALATION_APPROVERS", "is required when REVOKEBOT_ESCALATE_AFTER is set: comma-separated Slack user IDs (U…) and user group IDs (S…) "+
			"to escalate a request to (or unset REVOKEBOT_ESCALATE_AFTER to never escalate)")
	case escalateAfter == "" && !c.EscalationApprovers.Empty():
		bad("REVOKEBOT_ESCALATION_APPROVERS", "is set, but REVOKEBOT_ESCALATE_AFTER is not, so no request would ever be escalated: "+
			"set REVOKEBOT_ESCALATE_AFTER too (a duration like 10m), or unset REVOKEBOT_ESCALATION_APPROVERS")
	}

	c.RefusalWindow = time.Minute
	if v := get("REVOKEBOT_AUDIT_REFUSAL_WINDOW"); v != "" {
		d, err := time.ParseDuration(v)
		switch {
		case err != nil:
			bad("REVOKEBOT_AUDIT_REFUSAL_WINDOW", "%q is not a duration like 1m, or 0 to audit every refusal on its own", v)
		case d < 0 || d > time.Hour:
			bad("REVOKEBOT_AUDIT_REFUSAL_WINDOW", "%s is out of range: between 0 and 1h", d)
		default:
			c.RefusalWindow = d
		}
	}

	c.Database = "revokebot.db"
	if v := get("REVOKEBOT_DATABASE"); v != "" {
		switch {
		case isPostgres(v):
			// Neither url's error nor the value is quoted: both may hold the password.
			if u, err := url.Parse(v); err != nil || strings.Contains(u.Host+u.Path, "@") {
				bad("REVOKEBOT_DATABASE", "the PostgreSQL URL does not parse: write it as postgres://user:password@host:5432/database?sslmode=require, with special characters in the password (such as @ / : ? #) %%-encoded")
			}
		case libpqSetting.MatchString(v):
			bad("REVOKEBOT_DATABASE", "looks like a libpq keyword/value string (host=… user=…): write it as a postgres:// URL instead; a plain value is a SQLite file path")
		case strings.Contains(v, "://"):
			scheme, _, _ := strings.Cut(v, "://")
			bad("REVOKEBOT_DATABASE", "a %s:// URL: a URL must start with postgres:// or postgresql:// (PostgreSQL); anything else is a SQLite file path", scheme)
		case strings.ContainsAny(v, "?#"):
			bad("REVOKEBOT_DATABASE", "%q: the file path must not contain ? or #", v)
		}
		c.Database = v
	}

	c.LeaseTTL = approvals.DefaultLeaseTTL
	if v := get("REVOKEBOT_LEASE_TTL"); v != "" {
		d, err := time.ParseDuration(v)
		switch {
		case err != nil:
			bad("REVOKEBOT_LEASE_TTL", "%q is not a duration like 15s", v)
		case d < time.Second || d > 5*time.Minute:
			bad("REVOKEBOT_LEASE_TTL", "%s is out of range: between 1s and 5m", d)
		default:
			c.LeaseTTL = d
		}
	}
	c.VerifyTimeout = approvals.DefaultVerifyTimeout
	if v := get("REVOKEBOT_VERIFY_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		switch {
		case err != nil:
			bad("REVOKEBOT_VERIFY_TIMEOUT", "%q is not a duration like 2m", v)
		case d < time.Second || d > time.Hour:
			bad("REVOKEBOT_VERIFY_TIMEOUT", "%s is out of range: between 1s and 1h", d)
		default:
			c.VerifyTimeout = d
		}
	}
	c.WatchFor = approvals.DefaultWatchFor
	if v := get("REVOKEBOT_WATCH_FOR"); v != "" {
		d, err := time.ParseDuration(v)
		switch {
		case err != nil:
			bad("REVOKEBOT_WATCH_FOR", "%q is not a duration like 24h (0 turns the watch off)", v)
		case d < 0 || d > 30*24*time.Hour:
			bad("REVOKEBOT_WATCH_FOR", "%s is out of range: between 0 (off) and 720h", d)
		default:
			c.WatchFor = d
		}
	}
	c.WatchEvery = approvals.DefaultWatchEvery
	if v := get("REVOKEBOT_WATCH_EVERY"); v != "" {
		d, err := time.ParseDuration(v)
		switch {
		case err != nil:
			bad("REVOKEBOT_WATCH_EVERY", "%q is not a duration like 5m", v)
		case d < time.Second || d > 24*time.Hour:
			bad("REVOKEBOT_WATCH_EVERY", "%s is out of range: between 1s and 24h", d)
		default:
			c.WatchEvery = d
		}
	}
	if v := get("REVOKEBOT_AUDIT_VERIFY_EVERY"); v != "" {
		d, err := time.ParseDuration(v)
		switch {
		case err != nil:
			bad("REVOKEBOT_AUDIT_VERIFY_EVERY", "%q is not a duration like 24h (0 or unset: never)", v)
		case d != 0 && (d < time.Second || d > 30*24*time.Hour):
			bad("REVOKEBOT_AUDIT_VERIFY_EVERY", "%s is out of range: 0 (never), or between 1s and 720h", d)
		default:
			c.AuditVerifyEvery = d
		}
	}
	c.Replica = get("REVOKEBOT_REPLICA")
	if c.Replica != "" && !replicaName.MatchString(c.Replica) {
		bad("REVOKEBOT_REPLICA", "%q is not a name of 1 to 63 letters, digits, dots, dashes or underscores", c.Replica)
	}

	c.MaxPending = approvals.DefaultMaxPending
	if v := get("REVOKEBOT_MAX_PENDING_PER_REQUESTER"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			bad("REVOKEBOT_MAX_PENDING_PER_REQUESTER", "%q is not a number from 1 to 1000", v)
		} else {
			c.MaxPending = n
		}
	}

	c.MaxTargets = defaultMaxTargets
	if v := get("REVOKEBOT_MAX_TARGETS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 500 {
			bad("REVOKEBOT_MAX_TARGETS", "%q is not a number from 1 to 500", v)
		} else {
			c.MaxTargets = n
		}
	}

	c.RequiredApprovals = defaultRequiredApprovals
	if v := get("REVOKEBOT_REQUIRED_APPROVALS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 5 {
			bad("REVOKEBOT_REQUIRED_APPROVALS", "%q is not a number from 1 to 5", v)
		} else {
			c.RequiredApprovals = n
		}
	}
	// Approvers listed only as users can be counted now; a group's members
	// are known only when a request is decided.
	if a := c.Policy.Approvers; len(a.Groups) == 0 && !reported["REVOKEBOT_APPROVERS"] {
		if n := len(distinct(a.Users)); n < c.RequiredApprovals {
			bad("REVOKEBOT_REQUIRED_APPROVALS", "is %d, but REVOKEBOT_APPROVERS lists only %d distinct user(s) and no user group, so no request could ever be approved: "+
				"add approvers or a user group to REVOKEBOT_APPROVERS, or lower REVOKEBOT_REQUIRED_APPROVALS", c.RequiredApprovals, n)
		}
	}

	if v := get("REVOKEBOT_DRY_RUN"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			bad("REVOKEBOT_DRY_RUN", "%q is not true or false", v)
		}
		c.DryRun = b
	}

	c.LogLevel = slog.LevelInfo
	if v := get("REVOKEBOT_LOG_LEVEL"); v != "" {
		if err := c.LogLevel.UnmarshalText([]byte(v)); err != nil {
			bad("REVOKEBOT_LOG_LEVEL", "%q is not one of debug, info, warn, error", v)
		}
	}
	c.LogFormat = "json"
	if v := strings.ToLower(get("REVOKEBOT_LOG_FORMAT")); v != "" {
		if v != "json" && v != "text" {
			bad("REVOKEBOT_LOG_FORMAT", "%q is not json or text", v)
		}
		c.LogFormat = v
	}

	if v := get("REVOKEBOT_HTTP_ADDR"); v != "" {
		if err := checkHTTPAddr(v); err != nil {
			bad("REVOKEBOT_HTTP_ADDR", "%v", err)
		}
		c.HTTPAddr = v
	}
	return c, errors.Join(errs...)
}

// distinct returns ids without repeats.
func distinct(ids []string) []string {
	var out []string
	for _, id := range ids {
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}

// checkHTTPAddr checks that v is host:port with a numeric port, the form of
// REVOKEBOT_HTTP_ADDR. The host may be empty (every interface).
func checkHTTPAddr(v string) error {
	_, port, err := net.SplitHostPort(v)
	if err != nil {
		return fmt.Errorf("%q is not host:port like :8080 or 127.0.0.1:8080", v)
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		return fmt.Errorf("%q: the port must be a number from 1 to 65535", v)
	}
	return nil
}

// parseRateLimit reads a rate limit written as requests/period, like 1200/5m.
func parseRateLimit(v string) (cloudflare.RateLimit, error) {
	n, per, ok := strings.Cut(v, "/")
	requests, err := strconv.Atoi(strings.TrimSpace(n))
	if !ok || err != nil || requests < 1 {
		return cloudflare.RateLimit{}, errors.New("is not requests/period like 1200/5m (Cloudflare's limit) or 600/5m")
	}
	d, err := time.ParseDuration(strings.TrimSpace(per))
	if err != nil || d < time.Second || d > time.Hour {
		return cloudflare.RateLimit{}, errors.New("has a period that is not a duration from 1s to 1h, like 5m")
	}
	return cloudflare.RateLimit{Requests: requests, Per: d}, nil
}

// checkAPIURL checks v as the root of an API that carries secrets with every
// call (they are named by what): an http(s) URL like example, and plain http
// only to this machine, where a local fake serves it, so that a secret never
// crosses a network unencrypted. Its error is for after the variable's name.
func checkAPIURL(v, example, what string) error {
	if !plainHTTPURL(v) {
		return fmt.Errorf("is not an http(s) URL like %s (with no user, password, query or fragment)", example)
	}
	u, _ := url.Parse(v)
	if u.Scheme == "http" && !isLoopback(u.Hostname()) {
		return fmt.Errorf("uses plain http:// to %s, which is not this machine, so %s would cross the network unencrypted: "+
			"use https:// (like %s); http:// is only for a local test server on 127.0.0.1, ::1 or localhost", u.Host, what, example)
	}
	return nil
}

// isLoopback reports whether host names this machine: localhost, or an
// address in 127.0.0.0/8 or ::1.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// plainHTTPURL reports whether v is an absolute http(s) URL without user
// info, query or fragment: the form an API root takes.
func plainHTTPURL(v string) bool {
	u, err := url.Parse(v)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" &&
		u.User == nil && u.RawQuery == "" && u.Fragment == "" && !strings.HasSuffix(v, "?")
}
