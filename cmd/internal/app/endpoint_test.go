package app

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// freeAddr returns a loopback address with a port nobody listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func TestEndpointFollowsTheSocket(t *testing.T) {
	t.Parallel()
	addr := freeAddr(t)
	h := start(t, map[string]string{"REVOKEBOT_HTTP_ADDR": addr})
	base := "http://" + addr
	readyIs := func(want int) {
		t.Helper()
		h.slack.Eventually("/readyz answering "+http.StatusText(want), wait, func() bool {
			code, _ := get(t, base+"/readyz")
			return code == want
		})
	}
	if code, body := get(t, base+"/healthz"); code != http.StatusOK || !strings.Contains(body, "ok") {
		t.Fatalf("/healthz: %d %q", code, body)
	}
	readyIs(http.StatusOK)

	// The socket drops and Slack does not let the bot back in for a while.
	release := h.slack.Hold("apps.connections.open")
	h.slack.DropConnection()
	readyIs(http.StatusServiceUnavailable)
	if _, body := get(t, base+"/readyz"); !strings.Contains(body, "Socket Mode") {
		t.Fatalf("/readyz does not say why: %q", body)
	}
	if code, _ := get(t, base+"/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz while disconnected: %d (the process is alive)", code)
	}
	_, metrics := get(t, base+"/metrics")
	if !strings.Contains(metrics, "revokebot_socket_connected 0") {
		t.Fatalf("metrics while disconnected:\n%s", metrics)
	}
	release()
	h.slack.WaitConnected(2, wait)
	readyIs(http.StatusOK)

	m := h.request("alice@example.com")
	h.click(approver, m, "revoke_approve")
	h.waitMessageState(m, "Revoked")
	h.waitAudit(requestID(t, m), "requested", "approved", "revoked")
	h.slack.Eventually("metrics of the revocation", wait, func() bool {
		_, metrics = get(t, base+"/metrics")
		for _, want := range []string{
			`revokebot_events_total{event="requested"} 1`,
			`revokebot_events_total{event="approved"} 1`,
			`revokebot_events_total{event="revoked"} 1`,
			`revokebot_cloudflare_requests_total{code="200"}`,
			`revokebot_cloudflare_request_duration_seconds_count`,
			"revokebot_outbox_backlog 0",
			"revokebot_pending_requests 0",
			"revokebot_socket_connected 1",
		} {
			if !strings.Contains(metrics, want) {
				return false
			}
		}
		return true
	})
	for _, secret := range []string{h.env["SLACK_BOT_TOKEN"], h.env["SLACK_APP_TOKEN"], h.env["CLOUDFLARE_API_TOKEN"]} {
		if strings.Contains(metrics, secret) {
			t.Fatal("metrics show a secret")
		}
	}
	h.stop()
	// The port is closed once revokebot has stopped.
	if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		t.Fatal("the endpoint still listens after shutdown")
	}
}

func TestEndpointPortInUseStopsStart(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	h := start(t, nil)
	h.stop()
	h.env["REVOKEBOT_HTTP_ADDR"] = ln.Addr().String()
	err = Run(t.Context(), nil, getter(h.env), io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "REVOKEBOT_HTTP_ADDR") || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("err = %v", err)
	}
}
