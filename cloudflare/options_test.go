package cloudflare_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/revokebot/revokebot/cloudflare"
)

func TestNew_validation(t *testing.T) {
	t.Parallel()
	valid := cloudflare.Options{APIToken: testToken, AccountID: "abc"}
	tests := []struct {
		name   string
		modify func(*cloudflare.Options)
		want   []string // substrings of the error; nil means no error
	}{
		{"valid token", func(o *cloudflare.Options) {}, nil},
		{"valid global key", func(o *cloudflare.Options) { o.APIToken, o.Email, o.APIKey = "", testEmail, testKey }, nil},
		{"valid zone", func(o *cloudflare.Options) { o.AccountID, o.ZoneID = "", "z" }, nil},
		{"valid base with slash", func(o *cloudflare.Options) { o.BaseURL = "http://127.0.0.1:8080/client/v4/" }, nil},
		{"no scope", func(o *cloudflare.Options) { o.AccountID = "" }, []string{"Options.AccountID", "Options.ZoneID"}},
		{"blank scope", func(o *cloudflare.Options) { o.AccountID = "  " }, []string{"Options.AccountID", "Options.ZoneID"}},
		{"both scopes", func(o *cloudflare.Options) { o.ZoneID = "z" }, []string{"Options.AccountID", "Options.ZoneID", "mutually exclusive"}},
		{"no credentials", func(o *cloudflare.Options) { o.APIToken = "" }, []string{"Options.APIToken"}},
		{"token and key", func(o *cloudflare.Options) { o.APIKey = testKey }, []string{"Options.APIToken", "Options.APIKey", "mutually exclusive"}},
		{"token and email", func(o *cloudflare.Options) { o.Email = testEmail }, []string{"Options.APIToken", "Options.Email"}},
		{"email without key", func(o *cloudflare.Options) { o.APIToken, o.Email = "", testEmail }, []string{"Options.APIKey"}},
		{"key without email", func(o *cloudflare.Options) { o.APIToken, o.APIKey = "", testKey }, []string{"Options.Email"}},
		{"relative base", func(o *cloudflare.Options) { o.BaseURL = "/client/v4" }, []string{"Options.BaseURL"}},
		{"ftp base", func(o *cloudflare.Options) { o.BaseURL = "ftp://example.com/" }, []string{"Options.BaseURL"}},
		{"unparsable base", func(o *cloudflare.Options) { o.BaseURL = "http://exa mple.com:x/" }, []string{"Options.BaseURL"}},
		{"base with user info", func(o *cloudflare.Options) { o.BaseURL = "https://u:" + testToken + "@example.com/" }, []string{"Options.BaseURL", "user info"}},
		{"base with query", func(o *cloudflare.Options) { o.BaseURL = "https://example.com/?a=b" }, []string{"Options.BaseURL"}},
		{"negative attempts", func(o *cloudflare.Options) { o.Retry.MaxAttempts = -1 }, []string{"Options.Retry.MaxAttempts"}},
		{"negative timeout", func(o *cloudflare.Options) { o.Retry.CallTimeout = -time.Second }, []string{"Options.Retry.CallTimeout"}},
		{"negative budget", func(o *cloudflare.Options) { o.Retry.MaxElapsed = -time.Second }, []string{"Options.Retry.MaxElapsed"}},
		{"custom pacing", func(o *cloudflare.Options) {
			o.RateLimit, o.MaxInFlight = cloudflare.RateLimit{Requests: 1, Per: time.Nanosecond}, 1
		}, nil},
		{"negative requests", func(o *cloudflare.Options) { o.RateLimit = cloudflare.RateLimit{Requests: -1, Per: time.Second} }, []string{"Options.RateLimit.Requests", "negative"}},
		{"negative per", func(o *cloudflare.Options) { o.RateLimit = cloudflare.RateLimit{Requests: 10, Per: -time.Second} }, []string{"Options.RateLimit.Per", "negative"}},
		{"requests only", func(o *cloudflare.Options) { o.RateLimit.Requests = 10 }, []string{"Options.RateLimit.Requests", "Options.RateLimit.Per", "together"}},
		{"per only", func(o *cloudflare.Options) { o.RateLimit.Per = time.Second }, []string{"Options.RateLimit.Requests", "Options.RateLimit.Per", "together"}},
		{"negative max in flight", func(o *cloudflare.Options) { o.MaxInFlight = -1 }, []string{"Options.MaxInFlight", "negative"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			opts := valid
			tt.modify(&opts)
			c, err := cloudflare.New(opts)
			if tt.want == nil {
				if err != nil || c == nil {
					t.Fatalf("New: %v, want a client", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("New succeeded, want an error naming %v", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("err = %q, want it to contain %q", err, w)
				}
			}
			assertNoSecrets(t, err.Error())
		})
	}
}

func TestNew_copiesHTTPClientWithoutRedirects(t *testing.T) {
	t.Parallel()
	hc := &http.Client{}
	client, mux := setup(t, func(o *cloudflare.Options) { o.HTTPClient = hc })
	mux.HandleFunc(revokePath, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://elsewhere.invalid/steal", http.StatusTemporaryRedirect)
	})
	_, err := client.RevokeUser(ctxT(t), cloudflare.RevokeUserParams{Email: "a@b.c"})
	if err == nil || !strings.Contains(err.Error(), "307 Temporary Redirect") {
		t.Fatalf("err = %v, want the redirect reported, not followed", err)
	}
	if hc.CheckRedirect != nil {
		t.Errorf("New modified the caller's http.Client")
	}
}

func TestOptions_printingRedactsSecrets(t *testing.T) {
	t.Parallel()
	opts := cloudflare.Options{APIToken: testToken, Email: testEmail, APIKey: testKey, AccountID: "abc"}
	wrapper := struct{ Opts cloudflare.Options }{opts}

	var outputs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%d"} {
		outputs = append(outputs, fmt.Sprintf(verb, opts), fmt.Sprintf(verb, &opts), fmt.Sprintf(verb, wrapper))
	}
	outputs = append(outputs, opts.String(), opts.GoString())

	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, nil))
	logger.Info("config", "opts", opts)
	slog.New(slog.NewTextHandler(&buf, nil)).Info("config", "opts", opts)
	outputs = append(outputs, buf.String())

	for _, out := range outputs {
		assertNoSecrets(t, out)
	}
	if s := opts.String(); !strings.Contains(s, "APIToken:REDACTED") || !strings.Contains(s, "AccountID:\"abc\"") {
		t.Errorf("String() = %q, want the token masked and the account shown", s)
	}
}

func TestClient_printingRedactsSecrets(t *testing.T) {
	t.Parallel()
	for _, opts := range []cloudflare.Options{
		{APIToken: testToken, AccountID: "abc"},
		{Email: testEmail, APIKey: testKey, ZoneID: "z"},
	} {
		c, err := cloudflare.New(opts)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		slog.New(slog.NewJSONHandler(&buf, nil)).Info("client", "c", c)
		for _, out := range []string{
			fmt.Sprintf("%v", c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c), fmt.Sprintf("%s", c),
			fmt.Sprintf("%v", *c), fmt.Sprintf("%+v", struct{ C *cloudflare.Client }{c}), buf.String(),
		} {
			assertNoSecrets(t, out)
		}
	}
}
