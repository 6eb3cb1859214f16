package app

import (
	"bytes"
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/revokebot/revokebot/cmd/internal/ops"
)

func TestHealthcheckCommand(t *testing.T) {
	t.Parallel()
	ln, err := ops.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_, port, _ := net.SplitHostPort(addr)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- ops.Serve(ctx, ln, ops.Handler(prometheus.NewRegistry(), nil), nil) }()

	healthcheck := func(value string) (string, error) {
		var out bytes.Buffer
		err := Run(context.Background(), []string{"healthcheck"}, getter(map[string]string{"REVOKEBOT_HTTP_ADDR": value}), &out, &out)
		return out.String(), err
	}
	// As the image sets it (":8080"), and as a full address.
	for _, value := range []string{":" + port, addr} {
		if out, err := healthcheck(value); err != nil || out != "ok\n" {
			t.Fatalf("REVOKEBOT_HTTP_ADDR=%s: %v, %q", value, err, out)
		}
	}

	if _, err := healthcheck(""); err == nil || err.Error() != "REVOKEBOT_HTTP_ADDR is not set: the health endpoint is off" {
		t.Fatalf("unset: err = %v", err)
	}
	if _, err := healthcheck("8080"); err == nil || !strings.HasPrefix(err.Error(), "REVOKEBOT_HTTP_ADDR: ") {
		t.Fatalf("malformed: err = %v", err)
	}

	cancel()
	select {
	case err := <-served:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(wait):
		t.Fatal("the endpoint did not stop")
	}
	if _, err := healthcheck(addr); err == nil {
		t.Fatal("healthcheck passed with the endpoint stopped")
	}
}
