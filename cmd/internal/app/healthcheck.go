package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/revokebot/revokebot/cmd/internal/ops"
)

// healthcheck is `revokebot healthcheck`: it asks the running bot's /healthz
// on REVOKEBOT_HTTP_ADDR and fails unless it answers 200. The container image
// runs it as its HEALTHCHECK, which works without a shell.
func healthcheck(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	getenv, err := withDotEnv(getenv, ".env")
	if err != nil {
		return err
	}
	addr := strings.TrimSpace(getenv("REVOKEBOT_HTTP_ADDR"))
	if addr == "" {
		return errors.New("REVOKEBOT_HTTP_ADDR is not set: the health endpoint is off")
	}
	if err := checkHTTPAddr(addr); err != nil {
		return fmt.Errorf("REVOKEBOT_HTTP_ADDR: %w", err)
	}
	if err := ops.HealthCheck(ctx, addr); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "ok")
	return nil
}
