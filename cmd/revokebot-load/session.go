package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/revokebot/revokebot/bot/bottest"
	"github.com/revokebot/revokebot/cloudflare/cftest"
	"github.com/revokebot/revokebot/cmd/internal/app"
	"github.com/revokebot/revokebot/cmd/internal/faketb"
)

// The people and channels of the fake workspace.
const (
	approver     = "UAPPROVER" // approves everything; never a requester
	secChannel   = "CSECURITY" // where the commands are typed and the approval messages go
	auditChannel = "CAUDIT"
	// maxPending is REVOKEBOT_MAX_PENDING_PER_REQUESTER, its largest value:
	// a burst larger than it is spread over several requesters.
	maxPending = 1000
	// liftedCloudflareRate is CLOUDFLARE_RATE_LIMIT when pacing is lifted.
	liftedCloudflareRate = "1000000/1s"
	// stopTimeout bounds how long a bot has to stop after SIGTERM (its
	// shutdown may flush the audit outbox for up to 10 s).
	stopTimeout = 20 * time.Second
)

// requesterID is the Slack user ID of the i-th requester.
func requesterID(i int) string { return fmt.Sprintf("UREQUESTER%d", i) }

// catch turns a fake's Fatalf, panicking in the calling goroutine, into
// *err: only its first line, since bottest appends a dump of every message.
// Use it as `defer catch(&err)`.
func catch(err *error) {
	r := recover()
	if r == nil {
		return
	}
	f, ok := r.(faketb.Failure)
	if !ok {
		panic(r)
	}
	msg, _, _ := strings.Cut(string(f), "\n")
	*err = errors.New(msg)
}

// session is one revokebot, fresh (a new process and database), wired to
// fakes of its own.
type session struct {
	opts  *options
	tb    *faketb.TB
	dir   string
	slack *bottest.Workspace
	cf    *cftest.Server
	env   map[string]string
	// metricsURL is the bot's /metrics, asking for go_goroutines only.
	metricsURL string
	logPath    string
	logFile    *os.File
	bot        botProcess
	// startup is the time from exec (or app.Run) to the fake Slack's hello
	// on the bot's Socket Mode connection.
	startup time.Duration
	failed  bool
}

// botProcess is a running revokebot: a child process, or app.Run in this
// process (-inprocess).
type botProcess interface {
	// pid is the process to read /proc/<pid>/ of.
	pid() int
	// exited is closed when the bot has stopped of itself; err then says why.
	exited() <-chan struct{}
	err() error
	// stop stops the bot as SIGTERM would, and waits for it.
	stop() error
}

// newSession starts the fakes of one run, named name: a workspace with
// the given number of requesters and the approver, and a Cloudflare account
// whose users are targets (when opts.known); and it prepares the bot's
// environment, with Cloudflare pacing at its default if paced, else lifted.
// The bot is not started yet (see start).
func newSession(ctx context.Context, opts *options, name string, requesters int, targets []string, paced bool) (_ *session, err error) {
	dir, err := os.MkdirTemp(opts.tempDir, "revokebot-load-"+name+"-")
	if err != nil {
		return nil, fmt.Errorf("make a temporary directory: %w", err)
	}
	s := &session{opts: opts, tb: &faketb.TB{Log: opts.progress}, dir: dir}
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	defer catch(&err)
	s.slack = bottest.New(s.tb)
	s.cf = cftest.NewServer(s.tb)

	var ids []string
	for i := range requesters {
		id := requesterID(i)
		ids = append(ids, id)
		s.slack.SetUser(id, bottest.User{Name: strings.ToLower(id), Email: strings.ToLower(id) + "@corp.example", TeamID: bottest.DefaultTeamID})
	}
	s.slack.SetUser(approver, bottest.User{Name: "approver", Email: "approver@corp.example", TeamID: bottest.DefaultTeamID})
	if opts.known {
		for _, email := range targets {
			s.cf.AddUser(cftest.User{Email: email, Name: email, LastLogin: time.Now().Add(-time.Hour), Devices: 1, Sessions: 1})
		}
	}

	database := filepath.Join(dir, "revokebot.db")
	if opts.database != "" {
		if database, err = freshSchema(ctx, opts.database, s.tb); err != nil {
			return nil, err
		}
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	s.metricsURL = "http://" + addr + "/metrics?name[]=go_goroutines"
	s.env = map[string]string{
		"SLACK_APP_TOKEN":                     s.slack.AppToken(),
		"SLACK_BOT_TOKEN":                     s.slack.BotToken(),
		"SLACK_API_URL":                       s.slack.APIURL(),
		"CLOUDFLARE_API_TOKEN":                s.cf.APIToken(),
		"CLOUDFLARE_ACCOUNT_ID":               s.cf.AccountID(),
		"CLOUDFLARE_BASE_URL":                 s.cf.URL(),
		"REVOKEBOT_AUDIT_CHANNEL":             auditChannel,
		"REVOKEBOT_REQUESTERS":                strings.Join(ids, ","),
		"REVOKEBOT_APPROVERS":                 approver,
		"REVOKEBOT_DATABASE":                  database,
		"REVOKEBOT_HTTP_ADDR":                 addr,
		"REVOKEBOT_LOG_LEVEL":                 "info",
		"REVOKEBOT_MAX_PENDING_PER_REQUESTER": strconv.Itoa(maxPending),
		// The fake Slack has no rate limit: lift the pacing of posts.
		"SLACK_POST_RATE_LIMIT":   opts.slackRate,
		"SLACK_UPDATE_RATE_LIMIT": opts.slackRate,
	}
	if !paced {
		s.env["CLOUDFLARE_RATE_LIMIT"] = liftedCloudflareRate
	}
	if opts.bulk > 50 {
		s.env["REVOKEBOT_MAX_TARGETS"] = strconv.Itoa(opts.bulk)
	}
	if s.logFile, err = os.Create(filepath.Join(dir, "revokebot.log")); err != nil {
		return nil, fmt.Errorf("create the bot's log file: %w", err)
	}
	s.logPath = s.logFile.Name()
	return s, nil
}

// freeAddr returns a 127.0.0.1 address with a port free a moment ago.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// freshSchema creates an empty schema on the PostgreSQL server of base,
// dropped with everything in it when tb cleans up, and returns base using
// it (search_path).
func freshSchema(ctx context.Context, base string, tb *faketb.TB) (string, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", errors.New("-database: not a postgres:// URL")
	}
	var b [8]byte
	rand.Read(b[:])
	name := "load_" + hex.EncodeToString(b[:])
	run := func(sql string) error {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			return fmt.Errorf("connect to -database: %w", err)
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, sql); err != nil {
			return fmt.Errorf("%s: %w", sql, err)
		}
		return nil
	}
	if err := run("CREATE SCHEMA " + name); err != nil {
		return "", err
	}
	tb.Cleanup(func() {
		if err := run("DROP SCHEMA " + name + " CASCADE"); err != nil {
			tb.Logf("drop the schema of the run: %v", err)
		}
	})
	q := u.Query()
	q.Set("search_path", name)
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// start starts the bot and waits until the fake Slack has said hello on its
// Socket Mode connection.
func (s *session) start(ctx context.Context) error {
	began := time.Now()
	if s.opts.inProcess {
		s.bot = startInProcess(s.env, s.logFile)
	} else {
		p, err := s.startChild()
		if err != nil {
			return err
		}
		s.bot = p
	}
	// bottest notes a change once the hello is written: the connection
	// counts from then.
	err := s.waitFor(ctx, time.Millisecond, "the Socket Mode connection", func() bool { return s.slack.Connections() > 0 }, nil)
	s.startup = time.Since(began)
	return err
}

// startChild runs the revokebot binary with s.env and nothing of this
// process's environment but PATH and TMPDIR, in s.dir (so that no .env is
// read), its output in the log file.
func (s *session) startChild() (*childProcess, error) {
	path, args, env := s.opts.command()
	cmd := exec.Command(path, args...)
	cmd.Dir = s.dir
	cmd.Env = append(env, "PATH="+os.Getenv("PATH"), "TMPDIR="+os.TempDir())
	for k, v := range s.env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdout, cmd.Stderr = s.logFile, s.logFile
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", path, err)
	}
	p := &childProcess{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// childProcess is revokebot in a child process.
type childProcess struct {
	cmd     *exec.Cmd
	done    chan struct{}
	waitErr error
}

func (p *childProcess) pid() int                { return p.cmd.Process.Pid }
func (p *childProcess) exited() <-chan struct{} { return p.done }
func (p *childProcess) err() error              { return p.waitErr }

func (p *childProcess) stop() error {
	select {
	case <-p.done:
		return fmt.Errorf("revokebot had exited: %v", p.waitErr)
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		if p.waitErr != nil {
			return fmt.Errorf("revokebot exited with %v after SIGTERM", p.waitErr)
		}
		return nil
	case <-time.After(stopTimeout):
		p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("revokebot did not stop within %s of SIGTERM: killed", stopTimeout)
	}
}

// inProcess is revokebot's app.Run in this process.
type inProcess struct {
	cancel  context.CancelFunc
	done    chan struct{}
	runErr  error
	stopped bool
}

func startInProcess(env map[string]string, log io.Writer) *inProcess {
	ctx, cancel := context.WithCancel(context.Background())
	p := &inProcess{cancel: cancel, done: make(chan struct{})}
	go func() {
		p.runErr = app.Run(ctx, nil, func(k string) string { return env[k] }, io.Discard, log)
		close(p.done)
	}()
	return p
}

func (p *inProcess) pid() int                { return os.Getpid() }
func (p *inProcess) exited() <-chan struct{} { return p.done }
func (p *inProcess) err() error              { return p.runErr }

func (p *inProcess) stop() error {
	select {
	case <-p.done:
		return fmt.Errorf("revokebot had stopped: %v", p.runErr)
	default:
	}
	p.cancel()
	select {
	case <-p.done:
		if p.runErr != nil {
			return fmt.Errorf("revokebot's run returned %v after its context ended", p.runErr)
		}
		return nil
	case <-time.After(stopTimeout):
		return fmt.Errorf("revokebot did not stop within %s", stopTimeout)
	}
}

// waitFor polls cond every interval until it holds, and fails when the bot
// exits, ctx ends or opts.timeout passes; missing, if not nil, then says
// what was missing.
func (s *session) waitFor(ctx context.Context, every time.Duration, what string, cond func() bool, missing func() string) error {
	deadline := time.NewTimer(s.opts.timeout)
	defer deadline.Stop()
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		if cond() {
			return nil
		}
		var exited <-chan struct{}
		if s.bot != nil {
			exited = s.bot.exited()
		}
		select {
		case <-tick.C:
			continue
		case <-exited:
			return fmt.Errorf("waiting for %s: revokebot exited: %v", what, s.bot.err())
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		case <-deadline.C:
		}
		msg := fmt.Sprintf("timed out after %s waiting for %s", s.opts.timeout, what)
		if missing != nil {
			msg += ": " + missing()
		}
		return errors.New(msg)
	}
}

// waitAcks waits for the ack of every envelope of ids and returns them in
// the same order.
func (s *session) waitAcks(ctx context.Context, what string, ids []string) ([]bottest.Ack, error) {
	acks := make([]bottest.Ack, len(ids))
	type result struct {
		seen int
		err  error
	}
	done := make(chan result, 1)
	deadline := time.Now().Add(s.opts.timeout)
	go func() {
		var r result
		defer func() { done <- r }()
		defer catch(&r.err)
		for i, id := range ids {
			acks[i] = s.slack.WaitAck(id, max(time.Until(deadline), time.Millisecond))
			r.seen++
		}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			return nil, fmt.Errorf("acks of the %s: %d of %d seen in order, then %v", what, r.seen, len(ids), r.err)
		}
		return acks, nil
	case <-s.bot.exited():
		return nil, fmt.Errorf("waiting for the acks of the %s: revokebot exited: %v", what, s.bot.err())
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// stop stops the bot, and reports whether it stopped cleanly.
func (s *session) stop() error {
	if s.bot == nil {
		return nil
	}
	err := s.bot.stop()
	s.bot = nil
	return err
}

// close stops what still runs and removes the temporary directory, unless
// the session failed or opts.keep asks to keep it.
func (s *session) close() {
	if s.bot != nil {
		s.bot.stop()
		s.bot = nil
	}
	s.tb.RunCleanups()
	if s.logFile != nil {
		s.logFile.Close()
	}
	if s.failed || s.opts.keep {
		fmt.Fprintf(s.opts.progress, "kept %s\n", s.dir)
		return
	}
	os.RemoveAll(s.dir)
}

// fail marks the session failed and returns err with the tail of the
// bot's log.
func (s *session) fail(err error) error {
	s.failed = true
	return fmt.Errorf("%w\n--- last lines of the bot's log, %s ---\n%s", err, s.logPath, tail(s.logPath, 30))
}

// tail returns the last n lines of the file at path.
func tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}

// procStatus holds the memory figures of /proc/<pid>/status, in bytes.
// anon is RssAnon, the part of rss that is the process's own memory (its
// heap, stacks, SQLite's caches), without the pages of its binary and
// libraries (RssFile, shared, and dropped by the kernel when it needs
// them): what a burst grows and should give back.
type procStatus struct {
	rss, hwm, anon int64
}

// readStatus reads VmRSS, VmHWM and RssAnon of process pid.
func readStatus(pid int) (procStatus, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return procStatus{}, err
	}
	var st procStatus
	for _, line := range strings.Split(string(data), "\n") {
		key, value, ok := strings.Cut(line, ":")
		if !ok || key != "VmRSS" && key != "VmHWM" && key != "RssAnon" {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 10, 64)
		if err != nil {
			return procStatus{}, fmt.Errorf("/proc/%d/status: %s: %w", pid, line, err)
		}
		switch key {
		case "VmRSS":
			st.rss = kb << 10
		case "VmHWM":
			st.hwm = kb << 10
		default:
			st.anon = kb << 10
		}
	}
	return st, nil
}

// resetPeak resets process pid's VmHWM to its RSS now, where the kernel
// lets us (for -inprocess, whose peak would otherwise carry over).
func resetPeak(pid int) {
	os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
}

// clockTicks is the kernel's USER_HZ, the unit of /proc/<pid>/stat's times
// (100 on every Linux Go runs on).
const clockTicks = 100

// cpuTime returns the CPU time (user and system) process pid has used.
func cpuTime(pid int) (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name, in parentheses, may hold spaces: count fields
	// after its closing parenthesis (field 3, the state, is then first).
	i := bytes.LastIndexByte(data, ')')
	fields := strings.Fields(string(data[i+1:]))
	if i < 0 || len(fields) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	return time.Duration(utime+stime) * time.Second / clockTicks, nil
}

// goroutines scrapes the bot's go_goroutines gauge; -1 when the bot's
// /metrics does not have it.
func (s *session) goroutines(ctx context.Context) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.metricsURL, nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("scrape /metrics: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return 0, fmt.Errorf("scrape /metrics: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("scrape /metrics: %s", resp.Status)
	}
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, "go_goroutines "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				return 0, fmt.Errorf("scrape /metrics: %q: %w", line, err)
			}
			return int(f), nil
		}
	}
	return -1, nil
}
