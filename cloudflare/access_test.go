package cloudflare_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/revokebot/revokebot/cloudflare"
	"github.com/revokebot/revokebot/cloudflare/cftest"
)

func TestRevokeUser_bearerAuth(t *testing.T) {
	t.Parallel()
	client, mux := setup(t)
	var calls atomic.Int32
	mux.HandleFunc(revokePath, func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		testMethod(t, r, http.MethodPost)
		testHeader(t, r, "Authorization", "Bearer "+testToken)
		testHeader(t, r, "X-Auth-Email", "")
		testHeader(t, r, "X-Auth-Key", "")
		testHeader(t, r, "Content-Type", "application/json")
		testHeader(t, r, "Accept", "application/json")
		testHeader(t, r, "User-Agent", "revokebot")
		writeBody(w, http.StatusOK, `{"result":true,"success":true,"errors":[],"messages":[{"code":1,"message":"queued"}]}`)
	})

	resp, err := client.RevokeUser(ctxT(t), cloudflare.RevokeUserParams{Email: "a@b.c"})
	if err != nil {
		t.Fatalf("RevokeUser: %v", err)
	}
	if got, want := calls.Load(), int32(1); got != want {
		t.Errorf("calls = %d, want %d", got, want)
	}
	if !resp.Success || resp.StatusCode != 200 || resp.Attempts != 1 || string(resp.Result) != "true" {
		t.Errorf("resp = %+v, want success, 200, 1 attempt, result true", resp)
	}
	if want := []cloudflare.ResponseInfo{{Code: 1, Message: "queued"}}; !reflect.DeepEqual(resp.Messages, want) {
		t.Errorf("Messages = %+v, want %+v", resp.Messages, want)
	}
}

func TestRevokeUser_globalKeyAuth(t *testing.T) {
	t.Parallel()
	client, mux := setup(t, func(o *cloudflare.Options) {
		o.APIToken, o.Email, o.APIKey, o.UserAgent = "", testEmail, testKey, "revokebot/test"
	})
	mux.HandleFunc(revokePath, func(w http.ResponseWriter, r *http.Request) {
		testHeader(t, r, "Authorization", "")
		testHeader(t, r, "X-Auth-Email", testEmail)
		testHeader(t, r, "X-Auth-Key", testKey)
		testHeader(t, r, "User-Agent", "revokebot/test")
		writeBody(w, http.StatusOK, okBody)
	})
	if _, err := client.RevokeUser(ctxT(t), cloudflare.RevokeUserParams{Email: "a@b.c"}); err != nil {
		t.Fatalf("RevokeUser: %v", err)
	}
}

func TestRevokeUser_paths(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		opts     func(*cloudflare.Options)
		wantPath string // escaped
	}{
		{"account", func(o *cloudflare.Options) {}, "/client/v4/accounts/abc/access/organizations/revoke_user"},
		{"zone", func(o *cloudflare.Options) { o.AccountID, o.ZoneID = "", "zone1" }, "/client/v4/zones/zone1/access/organizations/revoke_user"},
		{"escaped id", func(o *cloudflare.Options) { o.AccountID = "a/b c?" }, "/client/v4/accounts/a%2Fb%20c%3F/access/organizations/revoke_user"},
		{"base without trailing slash", func(o *cloudflare.Options) { o.BaseURL = strings.TrimSuffix(o.BaseURL, "/") }, "/client/v4/accounts/abc/access/organizations/revoke_user"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var got atomic.Value
			client, mux := setup(t, tt.opts)
			mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
				got.Store(r.URL.EscapedPath())
				writeBody(w, http.StatusOK, okBody)
			})
			if _, err := client.RevokeUser(ctxT(t), cloudflare.RevokeUserParams{Email: "a@b.c"}); err != nil {
				t.Fatalf("RevokeUser: %v", err)
			}
			if got := got.Load(); got != tt.wantPath {
				t.Errorf("path = %v, want %q", got, tt.wantPath)
			}
		})
	}
}

func TestRevokeUser_bodyAndQuery(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		params    cloudflare.RevokeUserParams
		wantBody  map[string]any
		wantQuery string
	}{
		{
			name:      "email only",
			params:    cloudflare.RevokeUserParams{Email: "a@b.c"},
			wantBody:  map[string]any{"email": "a@b.c", "devices": false, "warp_session_reauth": false},
			wantQuery: "devices=false",
		},
		{
			name:      "devices",
			params:    cloudflare.RevokeUserParams{Email: "a@b.c", Devices: true},
			wantBody:  map[string]any{"email": "a@b.c", "devices": true, "warp_session_reauth": false},
			wantQuery: "devices=true",
		},
		{
			name:      "everything",
			params:    cloudflare.RevokeUserParams{Email: " a@b.c ", Devices: true, UserUID: "6c1b5c46-0000-4000-8000-000000000001", WARPSessionReauth: true},
			wantBody:  map[string]any{"email": "a@b.c", "devices": true, "user_uid": "6c1b5c46-0000-4000-8000-000000000001", "warp_session_reauth": true},
			wantQuery: "devices=true",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			client, mux := setup(t)
			var gotBody map[string]any
			var gotQuery string
			mux.HandleFunc(revokePath, func(w http.ResponseWriter, r *http.Request) {
				gotQuery = r.URL.RawQuery
				raw, _ := io.ReadAll(r.Body)
				if err := json.Unmarshal(raw, &gotBody); err != nil {
					t.Errorf("body %q: %v", raw, err)
				}
				writeBody(w, http.StatusOK, okBody)
			})
			if _, err := client.RevokeUser(ctxT(t), tt.params); err != nil {
				t.Fatalf("RevokeUser: %v", err)
			}
			if !reflect.DeepEqual(gotBody, tt.wantBody) {
				t.Errorf("body = %v (keys %v), want %v", gotBody, slices.Sorted(maps.Keys(gotBody)), tt.wantBody)
			}
			if gotQuery != tt.wantQuery {
				t.Errorf("query = %q, want %q", gotQuery, tt.wantQuery)
			}
		})
	}
}

func TestRevokeUser_emptyEmail(t *testing.T) {
	t.Parallel()
	client, mux := setup(t)
	var calls atomic.Int32
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { calls.Add(1) })
	_, err := client.RevokeUser(ctxT(t), cloudflare.RevokeUserParams{Email: "  "})
	if err == nil || !strings.Contains(err.Error(), "Email is required") {
		t.Fatalf("err = %v, want an error about Email", err)
	}
	if calls.Load() != 0 {
		t.Errorf("a request was sent for an empty email")
	}
}

func TestRevokeUser_successFalse(t *testing.T) {
	t.Parallel()
	client, mux := setup(t)
	var calls atomic.Int32
	mux.HandleFunc(revokePath, func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		writeBody(w, http.StatusOK, `{"result":null,"success":false,"errors":[{"code":12130,"message":"access.api.error.invalid_request","documentation_url":"https://developers.cloudflare.com/x","source":{"pointer":"/email"}},{"code":7,"message":"second"}],"messages":[]}`)
	})
	_, err := client.RevokeUser(ctxT(t), cloudflare.RevokeUserParams{Email: "a@b.c"})
	var apiErr *cloudflare.APIError
	if !errors.As(err, &apiErr) {
		t.Fatalf("err = %v, want *APIError", err)
	}
	if got, want := apiErr.Codes(), []int{12130, 7}; !slices.Equal(got, want) {
		t.Errorf("codes = %v, want %v", got, want)
	}
	if got, want := apiErr.Errors[0].Source, (&cloudflare.ResponseInfoSource{Pointer: "/email"}); !reflect.DeepEqual(got, want) {
		t.Errorf("source = %+v, want %+v", got, want)
	}
	if got, want := apiErr.Errors[0].DocumentationURL, "https://developers.cloudflare.com/x"; got != want {
		t.Errorf("documentation_url = %q, want %q", got, want)
	}
	want := "revoke a@b.c: after 1 attempt: cloudflare: POST /accounts/abc/access/organizations/revoke_user: 200 OK: [12130] access.api.error.invalid_request; [7] second"
	if err.Error() != want {
		t.Errorf("err = %q\nwant  %q", err, want)
	}
	if calls.Load() != 1 {
		t.Errorf("calls = %d, want 1 (no retry)", calls.Load())
	}
}

func TestRevokeUser_unexpectedResult(t *testing.T) {
	t.Parallel()
	for _, body := range []string{
		`{"result":false,"success":true,"errors":[],"messages":[]}`,
		`{"success":true,"errors":[],"messages":[]}`,
		`{"result":{"x":1},"success":true}`,
		`{"result":true,"errors":[]}`, // success missing
		`not json`,
	} {
		t.Run(body, func(t *testing.T) {
			t.Parallel()
			client, mux := setup(t)
			var calls atomic.Int32
			mux.HandleFunc(revokePath, func(w http.ResponseWriter, r *http.Request) {
				calls.Add(1)
				writeBody(w, http.StatusOK, body)
			})
			_, err := client.RevokeUser(ctxT(t), cloudflare.RevokeUserParams{Email: "a@b.c"})
			var apiErr *cloudflare.APIError
			if !errors.As(err, &apiErr) || apiErr.StatusCode != 200 {
				t.Fatalf("err = %v, want *APIError with status 200", err)
			}
			if calls.Load() != 1 {
				t.Errorf("calls = %d, want 1", calls.Load())
			}
		})
	}
}

func TestRevokeUser_clientErrorsAreNotRetried(t *testing.T) {
	t.Parallel()
	for _, status := range []int{400, 401, 402, 403, 404, 405, 406, 410, 411, 412, 413, 415, 418, 422, 451} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			t.Parallel()
			srv := cftest.NewServer(t)
			srv.Script(cftest.Fail(status, 10000, "Authentication error"))
			client := newFakeClient(t, srv)
			_, err := client.RevokeUser(ctxT(t), cloudflare.RevokeUserParams{Email: "a@b.c"})
			var apiErr *cloudflare.APIError
			if !errors.As(err, &apiErr) || apiErr.StatusCode != status {
				t.Fatalf("err = %v, want *APIError with status %d", err, status)
			}
			if got := len(srv.Calls()); got != 1 {
				t.Errorf("calls = %d, want exactly 1", got)
			}
			want := fmt.Sprintf("revoke a@b.c: after 1 attempt: cloudflare: POST /accounts/acc-test/access/organizations/revoke_user: %d %s: [10000] Authentication error", status, http.StatusText(status))
			if err.Error() != want {
				t.Errorf("err = %q\nwant  %q", err, want)
			}
		})
	}
}

func TestRevokeUser_wrongTokenAgainstFake(t *testing.T) {
	t.Parallel()
	srv := cftest.NewServer(t)
	client := newFakeClient(t, srv, func(o *cloudflare.Options) { o.APIToken = "wrong" })
	_, err := client.RevokeUser(ctxT(t), cloudflare.RevokeUserParams{Email: "a@b.c"})
	var apiErr *cloudflare.APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 403 || !slices.Equal(apiErr.Codes(), []int{10000}) {
		t.Fatalf("err = %v, want 403 [10000]", err)
	}
	calls := srv.Calls()
	if len(calls) != 1 || calls[0].AuthOK {
		t.Errorf("calls = %+v, want one call with AuthOK false", calls)
	}
}

func TestRevokeUser_htmlErrorBody(t *testing.T) {
	t.Parallel()
	client, mux := setup(t, func(o *cloudflare.Options) { o.Retry.MaxAttempts = 2 })
	html := "<html>\r\n<head><title>502 Bad Gateway</title></head>\n<body>\x00\x1b[31m" + strings.Repeat("<p>cloudflare</p>\n", 100) + "</body></html>"
	var calls atomic.Int32
	mux.HandleFunc(revokePath, func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusBadGateway)
		_, _ = io.WriteString(w, html)
	})
	_, err := client.RevokeUser(ctxT(t), cloudflare.RevokeUserParams{Email: "a@b.c"})
	var apiErr *cloudflare.APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusBadGateway {
		t.Fatalf("err = %v, want *APIError 502", err)
	}
	if n := len([]rune(apiErr.Detail)); n == 0 || n > 200 {
		t.Errorf("detail has %d chars, want 1..200: %q", n, apiErr.Detail)
	}
	if !strings.HasPrefix(apiErr.Detail, "<html> <head><title>502 Bad Gateway</title>") {
		t.Errorf("detail = %q, want the start of the page", apiErr.Detail)
	}
	if strings.ContainsAny(err.Error(), "\r\n\x00\x1b") {
		t.Errorf("error text has control characters: %q", err)
	}
	if !strings.Contains(err.Error(), "after 2 attempts") || !strings.Contains(err.Error(), "502 Bad Gateway") {
		t.Errorf("err = %q, want attempts and status", err)
	}
	if calls.Load() != 2 {
		t.Errorf("calls = %d, want 2 (5xx retried)", calls.Load())
	}
}

func TestRevokeUser_oversizedBody(t *testing.T) {
	t.Parallel()
	client, mux := setup(t)
	mux.HandleFunc(revokePath, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, `{"result":true,"success":true,"messages":[{"message":"`+strings.Repeat("x", 2<<20)+`"}]}`)
	})
	_, err := client.RevokeUser(ctxT(t), cloudflare.RevokeUserParams{Email: "a@b.c"})
	if err == nil || !strings.Contains(err.Error(), "exceeds 1 MiB") {
		t.Fatalf("err = %v, want a body-size error", err)
	}
	if len(err.Error()) > 600 {
		t.Errorf("error text is %d bytes long; want a short excerpt", len(err.Error()))
	}
}
