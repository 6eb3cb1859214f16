package bot

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"
)

func TestCheckResponseURL(t *testing.T) {
	t.Parallel()
	slackOnly := New(nil, nil, Config{})
	listed := New(nil, nil, Config{ResponseURLHosts: []string{"hooks.slack.com", "127.0.0.1:8080", "[::1]:9090", "Fake.Example:8443"}})
	for _, tt := range []struct {
		b   *Bot
		url string
		ok  bool
	}{
		// The default: Slack's webhooks host, over https, on its default port.
		{slackOnly, "https://hooks.slack.com/actions/T1/2/abc", true},
		{slackOnly, "https://HOOKS.Slack.COM/actions/T1/2/abc", true},
		{slackOnly, "HTTPS://hooks.slack.com/actions/T1/2/abc", true},
		{slackOnly, "https://hooks.slack.com:443/actions/T1/2/abc", true},
		{slackOnly, "https://hooks.slack.com:8443/actions/T1/2/abc", false},
		{slackOnly, "http://hooks.slack.com/actions/T1/2/abc", false},
		{slackOnly, "http://hooks.slack.com:443/actions/T1/2/abc", false},
		{slackOnly, "https://evil.example/actions/T1/2/abc", false},
		{slackOnly, "https://hooks.slack.com.evil.example/actions", false},
		{slackOnly, "https://evil.example/hooks.slack.com", false},
		{slackOnly, "https://hooks.slack.com./actions", false},
		{slackOnly, "https://user:pw@hooks.slack.com/actions", false},
		{slackOnly, "https://hooks.slack.com@evil.example/actions", false},
		{slackOnly, "https:hooks.slack.com", false},
		{slackOnly, "//hooks.slack.com/actions", false},
		{slackOnly, "hooks.slack.com/actions", false},
		{slackOnly, "ftp://hooks.slack.com/actions", false},
		{slackOnly, "https:///actions", false},
		{slackOnly, "", false},
		{slackOnly, "http://127.0.0.1:8080/respond/U1/C1", false},
		// Listed with a port: that host and port exactly, http or https.
		{listed, "https://hooks.slack.com/actions/T1/2/abc", true},
		{listed, "http://hooks.slack.com/actions/T1/2/abc", false},
		{listed, "http://127.0.0.1:8080/respond/U1/C1", true},
		{listed, "https://127.0.0.1:8080/respond/U1/C1", true},
		{listed, "http://127.0.0.1/respond/U1/C1", false},
		{listed, "http://127.0.0.1:8081/respond/U1/C1", false},
		{listed, "http://localhost:8080/respond/U1/C1", false},
		{listed, "http://u:p@127.0.0.1:8080/respond/U1/C1", false},
		{listed, "http://[::1]:9090/respond", true},
		{listed, "http://[::1]:8080/respond", false},
		{listed, "http://FAKE.example:8443/respond", true},
		{listed, "https://fake.example/respond", false},
	} {
		u, err := url.Parse(tt.url)
		if err == nil {
			err = tt.b.checkResponseURL(u)
		}
		if (err == nil) != tt.ok {
			t.Errorf("response_url %q with hosts %q: err = %v, want ok = %v", tt.url, tt.b.cfg.ResponseURLHosts, err, tt.ok)
		}
	}
}

// TestReplyOnlyToAllowedHosts checks that reply posts to an allowed
// response_url, over https or http, refuses any other, also when redirected,
// and never logs a response_url.
func TestReplyOnlyToAllowedHosts(t *testing.T) {
	t.Parallel()
	var (
		mu   sync.Mutex
		hits []string
	)
	record := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/redirect/secret-token" {
			http.Redirect(w, r, "http://evil.invalid/stolen/secret-token", http.StatusTemporaryRedirect)
			return
		}
		mu.Lock()
		hits = append(hits, r.URL.Path)
		mu.Unlock()
	})
	tlsSrv := httptest.NewTLSServer(record)
	defer tlsSrv.Close()
	plainSrv := httptest.NewServer(record)
	defer plainSrv.Close()
	tlsHost, plainHost := strings.TrimPrefix(tlsSrv.URL, "https://"), strings.TrimPrefix(plainSrv.URL, "http://")

	var logs bytes.Buffer
	b := New(nil, nil, Config{ResponseURLHosts: []string{tlsHost, plainHost}, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	b.webhooks.Transport = tlsSrv.Client().Transport // trusts the test certificate; plain http too
	for _, tt := range []struct {
		url  string
		sent bool
	}{
		{tlsSrv.URL + "/respond/https-secret-token", true},
		{plainSrv.URL + "/respond/http-secret-token", true},
		{"https://evil.example/respond/secret-token", false},
		{"http://user:secret-token@" + plainHost + "/respond/x", false},
		{"http://[::1/secret-token", false},
		{"not a url secret-token", false},
		{plainSrv.URL + "/redirect/secret-token", false},
	} {
		mu.Lock()
		before := len(hits)
		mu.Unlock()
		b.reply(context.Background(), b.log, tt.url, "hello")
		mu.Lock()
		sent := len(hits) > before
		mu.Unlock()
		if sent != tt.sent {
			t.Errorf("reply to %q: sent = %v, want %v", tt.url, sent, tt.sent)
		}
	}
	if strings.Contains(logs.String(), "secret-token") {
		t.Errorf("a response_url went into the log:\n%s", logs.String())
	}
	for _, want := range []string{"host=evil.example", "reason=\"host not allowed\"", "carries a user name", "redirected"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs.String())
		}
	}
}

func TestSocketTroubleShowsNoMessage(t *testing.T) {
	t.Parallel()
	raw := []byte(`{"envelope_id":"e1","payload":{"response_url":"https://hooks.slack.com/commands/T1/secret"}}`)
	for _, data := range []any{
		&socketmode.ErrorBadMessage{Cause: errors.New("cannot unmarshal"), Message: raw},
		&socketmode.ErrorWriteFailed{Cause: errors.New("broken pipe")},
		&slack.IncomingEventError{ErrorObj: errors.New("read: connection reset")},
	} {
		err := socketTrouble(data)
		if err == nil || strings.Contains(err.Error(), "secret") || strings.Contains(err.Error(), "hooks.slack.com") {
			t.Errorf("socketTrouble(%T) = %v", data, err)
		}
	}
}
