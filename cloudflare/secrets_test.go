package cloudflare_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/revokebot/revokebot/approvals"
	"github.com/revokebot/revokebot/cloudflare"
	"github.com/revokebot/revokebot/cloudflare/cftest"
)

// assertNoSecrets fails the test if s contains the test token or key.
func assertNoSecrets(t *testing.T, s string) {
	t.Helper()
	for _, secret := range []string{testToken, testKey, "SECRET"} {
		if strings.Contains(s, secret) {
			t.Errorf("output leaks a secret (%q): %s", secret, s)
		}
	}
}

// TestErrorsNeverContainSecrets triggers every error path the client has,
// with both kinds of credentials, including servers that echo the
// credentials back, and checks no error text contains them.
func TestErrorsNeverContainSecrets(t *testing.T) {
	t.Parallel()
	echo := func(r *http.Request) string {
		return r.Header.Get("Authorization") + " " + r.Header.Get("X-Auth-Key")
	}
	scenarios := map[string]http.HandlerFunc{
		"403 envelope echoing credentials": func(w http.ResponseWriter, r *http.Request) {
			writeBody(w, 403, fmt.Sprintf(`{"success":false,"errors":[{"code":10000,"message":"bad credential %s","documentation_url":"https://x/%s","source":{"pointer":"%s"},"error_chain":[{"code":1,"message":"%s"}]}],"messages":[{"code":2,"message":"%s"}]}`,
				echo(r), echo(r), echo(r), echo(r), echo(r)))
		},
		"success false echoing credentials": func(w http.ResponseWriter, r *http.Request) {
			writeBody(w, 200, fmt.Sprintf(`{"success":false,"errors":[],"messages":[{"code":2,"message":"%s"}]}`, echo(r)))
		},
		"400 html echoing credentials": func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(400)
			_, _ = io.WriteString(w, "<html>you sent "+echo(r)+"</html>")
		},
		"502 html echoing credentials": func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(502)
			_, _ = io.WriteString(w, "<html>upstream saw "+echo(r)+"</html>")
		},
		"200 invalid json echoing credentials": func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(200)
			_, _ = io.WriteString(w, "oops "+echo(r))
		},
		"result false": func(w http.ResponseWriter, r *http.Request) {
			writeBody(w, 200, `{"result":false,"success":true,"messages":[{"code":3,"message":"`+echo(r)+`"}]}`)
		},
		"429 beyond budget": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "3600")
			writeBody(w, 429, `{"success":false,"errors":[{"code":10013,"message":"slow down `+echo(r)+`"}]}`)
		},
		"429 garbage Retry-After": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", echo(r))
			writeBody(w, 429, `{}`)
		},
		"timeout": func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		},
		"dropped connection": func(w http.ResponseWriter, r *http.Request) {
			if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
				conn.Close()
			}
		},
		"redirect": func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "https://elsewhere.invalid/?k="+echo(r), http.StatusFound)
		},
	}
	auths := map[string]func(*cloudflare.Options){
		"token":      func(o *cloudflare.Options) {},
		"global key": func(o *cloudflare.Options) { o.APIToken, o.Email, o.APIKey = "", testEmail, testKey },
	}
	for authName, auth := range auths {
		for name, handler := range scenarios {
			t.Run(authName+"/"+name, func(t *testing.T) {
				t.Parallel()
				client, mux := setup(t, auth, func(o *cloudflare.Options) {
					o.Retry.MaxAttempts = 2
					o.Retry.CallTimeout = 100 * time.Millisecond
					o.Retry.MaxElapsed = 2 * time.Second
				})
				mux.HandleFunc("/", handler)

				_, err := client.RevokeUser(ctxT(t), cloudflare.RevokeUserParams{Email: "a@b.c"})
				if err == nil {
					t.Fatal("RevokeUser succeeded, want an error")
				}
				checkErr(t, err)
				_, err = client.Revoke(ctxT(t), approvals.Revocation{Email: "a@b.c"})
				checkErr(t, err)
				_, err = client.VerifyToken(ctxT(t))
				checkErr(t, err)
				_, err = client.VerifyAccountToken(ctxT(t))
				checkErr(t, err)
			})
		}
	}

	t.Run("network", func(t *testing.T) {
		t.Parallel()
		dead := httptest.NewServer(http.NotFoundHandler())
		dead.Close()
		for _, auth := range auths {
			client, _ := setup(t, auth, func(o *cloudflare.Options) { o.BaseURL = dead.URL + "/client/v4" })
			_, err := client.RevokeUser(ctxT(t), cloudflare.RevokeUserParams{Email: "a@b.c"})
			if err == nil {
				t.Fatal("want a network error")
			}
			checkErr(t, err)
			_, err = client.VerifyToken(ctxT(t))
			checkErr(t, err)
		}
	})

	t.Run("cancelled", func(t *testing.T) {
		t.Parallel()
		for _, auth := range auths {
			client, mux := setup(t, auth, func(o *cloudflare.Options) {
				o.Retry.BaseDelay, o.Retry.MaxDelay = time.Minute, time.Minute
				o.Retry.MaxElapsed = time.Hour
			})
			mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(503) })
			ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
			_, err := client.RevokeUser(ctx, cloudflare.RevokeUserParams{Email: "a@b.c"})
			cancel()
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("err = %v, want context.DeadlineExceeded", err)
			}
			checkErr(t, err)
			ctx, cancel = context.WithCancel(t.Context())
			cancel()
			_, err = client.RevokeUser(ctx, cloudflare.RevokeUserParams{Email: "a@b.c"})
			checkErr(t, err)
		}
	})

	t.Run("validation", func(t *testing.T) {
		t.Parallel()
		client, _ := setup(t)
		_, err := client.RevokeUser(ctxT(t), cloudflare.RevokeUserParams{})
		checkErr(t, err)
		for _, opts := range []cloudflare.Options{
			{APIToken: testToken, APIKey: testKey, Email: testEmail, AccountID: "a"},
			{APIToken: testToken},
			{APIKey: testKey, AccountID: "a"},
			{APIToken: testToken, AccountID: "a", BaseURL: "http://host:" + testToken + "/"},
			{APIToken: testToken, AccountID: "a", BaseURL: "http://" + testToken + " x/"},
			{APIToken: testToken, AccountID: "a", BaseURL: "https://user:" + testToken + "@h/"},
		} {
			_, err := cloudflare.New(opts)
			if err == nil {
				t.Errorf("New(%v) succeeded", opts)
				continue
			}
			checkErr(t, err)
		}
	})
}

// checkErr checks that err, however it is printed or unwrapped, holds no secret.
func checkErr(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	assertNoSecrets(t, err.Error())
	assertNoSecrets(t, fmt.Sprintf("%+v", err))
	assertNoSecrets(t, fmt.Sprintf("%#v", err))
	var apiErr *cloudflare.APIError
	if errors.As(err, &apiErr) {
		assertNoSecrets(t, fmt.Sprintf("%+v", *apiErr))
	}
}

// TestAnswersEchoingSecretsNeverShow has the fake Cloudflare echo the
// credentials in every part of an answer (result, errors, messages, a body
// that is not JSON, plain and JSON-escaped) and checks that no error, summary,
// returned value or log line of any call shows them.
func TestAnswersEchoingSecretsNeverShow(t *testing.T) {
	t.Parallel()
	auths := map[string]struct {
		opts   []cftest.Option
		secret string
	}{
		"token":      {opts: []cftest.Option{cftest.WithAPIToken(testToken)}, secret: testToken},
		"global key": {opts: []cftest.Option{cftest.WithGlobalKey(testEmail, testKey)}, secret: testKey},
	}
	// Bodies and headers are templates: {secret} is the secret, {escaped} the
	// secret with its first letter JSON-escaped, {pair} the email and secret.
	answers := map[string]cftest.Response{
		"result string":        {Body: `{"result":"{secret}","success":true,"errors":[],"messages":[]}`},
		"result escaped":       {Body: `{"result":"{escaped}","success":true,"errors":[],"messages":[]}`},
		"result object":        {Body: `{"result":{"id":"{secret}","status":"{escaped}","name":"{pair}","auth_domain":"{secret}","nested":[{"k":"{secret}"}]},"success":true,"errors":[],"messages":[]}`},
		"result key":           {Body: `{"result":{"{secret}":true},"success":true,"errors":[],"messages":[]}`},
		"errors":               {Status: 403, Body: `{"result":null,"success":false,"errors":[{"code":10000,"message":"bad {secret} {pair}","error_chain":[{"code":1,"message":"{escaped}"}]}],"messages":[]}`},
		"messages on success":  {Body: `{"result":true,"success":true,"errors":[],"messages":[{"code":1,"message":"{secret}"},{"code":2,"message":"{escaped}"},{"code":3,"message":"{pair}"}]}`},
		"messages on failure":  {Body: `{"result":null,"success":false,"errors":[],"messages":[{"code":1,"message":"{pair}"}]}`},
		"not JSON":             {Status: 400, Body: `<html>you sent {secret} and {pair}</html>`},
		"not JSON, 200":        {Body: `oops {secret}`},
		"JSON not an envelope": {Status: 400, Body: `{"detail":"{escaped}","result":"{secret}"}`},
		"header":               {Body: `{"result":true,"success":true,"errors":[],"messages":[]}`, Header: http.Header{"X-Echo": {"{secret}"}}},
	}
	for authName, auth := range auths {
		for name, answer := range answers {
			t.Run(authName+"/"+name, func(t *testing.T) {
				t.Parallel()
				escaped := `\u00` + fmt.Sprintf("%x", auth.secret[0]) + auth.secret[1:]
				fill := strings.NewReplacer("{secret}", auth.secret, "{escaped}", escaped, "{pair}", testEmail+":"+auth.secret).Replace
				answer.Body = fill(answer.Body)
				for k, v := range answer.Header {
					answer.Header = http.Header{k: {fill(v[0])}}
				}
				srv := cftest.NewServer(t, auth.opts...)
				srv.Script(answer, answer)
				srv.ScriptOrganization(answer)
				srv.ScriptVerify(answer)
				client := newFakeClient(t, srv, func(o *cloudflare.Options) {
					if auth.secret == testKey {
						o.APIToken, o.Email, o.APIKey = "", testEmail, testKey
					}
					o.Retry.MaxAttempts = 1
				})

				var log bytes.Buffer
				logger := slog.New(slog.NewJSONHandler(&log, nil))
				show := func(what string, v any, err error) {
					t.Helper()
					checkErr(t, err)
					logger.Info(what, "value", v, "err", err)
					assertNoSecrets(t, fmt.Sprintf("%v %+v", v, v))
				}
				resp, err := client.RevokeUser(ctxT(t), cloudflare.RevokeUserParams{Email: "a@b.c"})
				show("revoke user", resp, err)
				if resp != nil {
					assertNoSecrets(t, string(resp.Result))
				}
				summary, err := client.Revoke(ctxT(t), approvals.Revocation{Email: "a@b.c"})
				show("revoke", summary, err)
				org, err := client.AccessOrganization(ctxT(t))
				show("organization", org, err)
				if auth.secret == testToken {
					status, err := client.VerifyToken(ctxT(t))
					show("verify", status, err)
				}
				assertNoSecrets(t, log.String())
			})
		}
	}
}
