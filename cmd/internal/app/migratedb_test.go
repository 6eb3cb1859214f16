package app

import (
	"bytes"
	"context"
	"database/sql"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/revokebot/revokebot/approvals"
	"github.com/revokebot/revokebot/approvals/postgres"
	"github.com/revokebot/revokebot/approvals/postgres/pgtest"
	"github.com/revokebot/revokebot/approvals/sqlite"
)

// release3 copies the database of the release before aggregates (9
// requests, 19 events, 3 of them undelivered) to a temporary file.
func release3(t *testing.T) string {
	t.Helper()
	in, err := os.ReadFile("../../../approvals/sqlite/testdata/release-v3.db")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "revokebot.db")
	if err := os.WriteFile(path, in, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// migrate runs revokebot migrate-db with args, and returns its error and
// what it wrote.
func migrate(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	getenv := func(string) string { return "" }
	err = Run(context.Background(), append([]string{"migrate-db"}, args...), getenv, &out, &errOut)
	return out.String(), errOut.String(), err
}

func TestMigrateDB(t *testing.T) {
	t.Parallel()
	file, url := release3(t), pgtest.Schema(t)

	stdout, stderr, err := migrate(t, "--from", file, "--to", url)
	if err != nil {
		t.Fatalf("migrate-db: %v\n%s", err, stderr)
	}
	want := "copied 9 requests, 9 targets, 5 reviews, 19 events (last record 19); undelivered: 3; verified\n"
	if stdout != want {
		t.Errorf("stdout:\n%s\nwant:\n%s", stdout, want)
	}
	if !strings.Contains(stderr, "No revokebot may run on "+file+" meanwhile: stop it first") ||
		!strings.Contains(stderr, databaseLabel(url)) {
		t.Errorf("stderr does not warn, naming both databases:\n%s", stderr)
	}

	// The replicas find the history.
	db, err := postgres.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if n, err := db.CountByState(context.Background(), approvals.StateRevoked); err != nil || n != 1 {
		t.Errorf("revoked requests in PostgreSQL: %d, %v; want alice's", n, err)
	}

	// A second run refuses, and says why.
	stdout, _, err = migrate(t, "--from", file, "--to", url)
	if err == nil || !strings.Contains(err.Error(), "holds 9 requests and 19 events already") ||
		!strings.Contains(err.Error(), "the move is done") || stdout != "" {
		t.Errorf("second run: %v\n%s", err, stdout)
	}
	if n, err := db.CountByState(context.Background(), approvals.StateRevoked); err != nil || n != 1 {
		t.Errorf("revoked requests after the second run: %d, %v", n, err)
	}
}

// A revokebot still running on the file (it holds a lease) stops the move.
func TestMigrateDBFileInUse(t *testing.T) {
	t.Parallel()
	file, url := release3(t), pgtest.Schema(t)
	db, err := sqlite.Open(context.Background(), file)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Lease(context.Background(), "courier:refusals", "host-1", time.Minute); err != nil {
		t.Fatal(err)
	}
	db.Close()
	stdout, _, err := migrate(t, "--from", file, "--to", url)
	if err == nil || !strings.Contains(err.Error(), "host-1 holds work") || !strings.Contains(err.Error(), "Stop it") || stdout != "" {
		t.Errorf("migrate-db: %v\n%s", err, stdout)
	}
}

func TestMigrateDBUsageErrors(t *testing.T) {
	t.Parallel()
	file := release3(t)
	missing := filepath.Join(t.TempDir(), "missing.db")
	const url = "postgres://revokebot:s3cret-pw@127.0.0.1:1/revokebot"
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "--from is missing"},
		{[]string{"--to", url}, "--from is missing"},
		{[]string{"--from", file}, "--to is missing"},
		{[]string{"--from", file, "--to", "/var/lib/revokebot/revokebot.db"}, "--to is not a postgres:// URL"},
		{[]string{"--from", file, "--to", "host=db password=s3cret-pw"}, "--to is not a postgres:// URL"},
		{[]string{"--from", url, "--to", url}, "--from names a PostgreSQL server"},
		{[]string{"--from", missing, "--to", url}, "no such file (migrate-db never creates one)"},
		{[]string{"--from", t.TempDir(), "--to", url}, "is not a file"},
		{[]string{"--from", file, url}, "1 unexpected arguments"},
		{[]string{"--from", file, "--to", url, url}, "1 unexpected arguments"},
		{[]string{"--form", file}, "flag provided but not defined: -form"},
	} {
		stdout, stderr, err := migrate(t, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("migrate-db %q: %v, want %q", tc.args, err, tc.want)
		}
		if all := stdout + stderr + err.Error(); strings.Contains(all, "s3cret-pw") {
			t.Errorf("migrate-db %q shows the password: %s", tc.args, all)
		}
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Errorf("migrate-db made %s: %v", missing, err)
	}
}

// An unreachable server is named, with what to check; the password never
// shows.
func TestMigrateDBUnreachable(t *testing.T) {
	t.Parallel()
	file := release3(t)
	addr := freeAddr(t)
	stdout, stderr, err := migrate(t, "--from", file, "--to", "postgres://revokebot:s3cret-pw@"+addr+"/revokebot?sslmode=disable")
	if err == nil || !strings.Contains(err.Error(), "--to") || !strings.Contains(err.Error(), addr) ||
		!strings.Contains(err.Error(), "is the PostgreSQL server up and reachable from here") {
		t.Errorf("migrate-db: %v", err)
	}
	if all := stdout + stderr + err.Error(); strings.Contains(all, "s3cret-pw") {
		t.Errorf("the password shows: %s", all)
	}
	if stdout != "" {
		t.Errorf("stdout: %s", stdout)
	}
}

func TestMigrateDBHelp(t *testing.T) {
	t.Parallel()
	_, stderr, err := migrate(t, "--help")
	if err != nil || !strings.Contains(stderr, "Usage: revokebot migrate-db --from FILE --to URL") || !strings.Contains(stderr, "-to URL") {
		t.Errorf("migrate-db --help: %v\n%s", err, stderr)
	}
	var out bytes.Buffer
	if err := Run(context.Background(), []string{"help"}, nil, &out, io.Discard); err != nil || !strings.Contains(out.String(), "revokebot migrate-db --from FILE --to URL") {
		t.Errorf("help does not list migrate-db: %v\n%s", err, out.String())
	}
}

// Text only SQLite's schema-3 columns hold is named before the summary,
// which stays the last line.
func TestMigrateDBNamesLegacyText(t *testing.T) {
	t.Parallel()
	file, url := release3(t), pgtest.Schema(t)
	raw, err := sql.Open("sqlite", "file:"+file)
	if err != nil {
		t.Fatal(err)
	}
	var id string
	if err := raw.QueryRow(`UPDATE requests SET outcome = 'noted by hand' WHERE email = 'bob@example.com' RETURNING id`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	stdout, stderr, err := migrate(t, "--from", file, "--to", url)
	if err != nil {
		t.Fatalf("migrate-db: %v\n%s", err, stderr)
	}
	lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "note: 1 requests of schema 3") || !strings.HasSuffix(lines[0], ": "+id) ||
		!strings.HasSuffix(lines[1], "; verified") {
		t.Errorf("stdout:\n%s", stdout)
	}
}
