// Package pgtest gives a test a PostgreSQL database of its own: a fresh
// schema on the server that REVOKEBOT_TEST_POSTGRES_URL names, dropped with
// everything in it when the test ends.
//
// Without the variable, tests that need PostgreSQL are skipped, with a
// message saying how to run them; with REVOKEBOT_REQUIRE_POSTGRES=1 as well
// (as .ci/run sets), they fail instead, so that CI never passes by skipping.
package pgtest

import (
	"context"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// EnvURL names the variable that points the tests at a PostgreSQL server,
// e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable.
const EnvURL = "REVOKEBOT_TEST_POSTGRES_URL"

// EnvRequire, set to 1, turns a missing EnvURL into a failure.
const EnvRequire = "REVOKEBOT_REQUIRE_POSTGRES"

// ServerURL returns the test server's URL, or skips tb if none is set.
func ServerURL(tb testing.TB) string {
	tb.Helper()
	u := os.Getenv(EnvURL)
	if u == "" {
		msg := "no PostgreSQL to test against: set " + EnvURL + ", e.g. " + EnvURL +
			"='postgres://postgres@127.0.0.1:5432/test?sslmode=disable' (each test works in a schema of its own, dropped at the end)"
		if os.Getenv(EnvRequire) == "1" {
			tb.Fatal(msg + "; " + EnvRequire + "=1 asks for these tests to run")
		}
		tb.Skip(msg)
	}
	return u
}

// WithSetting returns u with a setting added: a query parameter of a URL,
// or a keyword=value of a libpq string (the last one wins).
func WithSetting(tb testing.TB, u, key, value string) string {
	tb.Helper()
	if strings.HasPrefix(u, "postgres://") || strings.HasPrefix(u, "postgresql://") {
		parsed, err := url.Parse(u)
		if err != nil {
			tb.Fatalf("%s is not a URL: %v", EnvURL, err)
		}
		q := parsed.Query()
		q.Set(key, value)
		parsed.RawQuery = q.Encode()
		return parsed.String()
	}
	return u + " " + key + "=" + value
}

// Schema creates an empty schema, dropped (with everything in it) when tb
// ends, and returns the server's URL using it (search_path).
func Schema(tb testing.TB) string {
	tb.Helper()
	base := ServerURL(tb)
	name := "t_" + strings.ReplaceAll(uuid.NewString(), "-", "")[:20]
	Exec(tb, base, `CREATE SCHEMA `+name)
	tb.Cleanup(func() { Exec(tb, base, `DROP SCHEMA `+name+` CASCADE`) })
	return WithSetting(tb, base, "search_path", name)
}

// Exec runs sql on a connection of its own to u.
func Exec(tb testing.TB, u, sql string, args ...any) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		tb.Fatalf("connect to %s: %v", EnvURL, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql, args...); err != nil {
		tb.Fatalf("%s: %v", sql, err)
	}
}
