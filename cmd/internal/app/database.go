package app

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/revokebot/revokebot/approvals"
	"github.com/revokebot/revokebot/approvals/postgres"
	"github.com/revokebot/revokebot/approvals/sqlite"
	"github.com/revokebot/revokebot/cloudflare"
)

// database is what revokebot needs of its store: the requests and their
// events, the outbox, leases, and a few things for operations. Both stores
// are one.
type database interface {
	approvals.Store
	approvals.Outbox
	Ping(ctx context.Context) error
	SchemaVersion(ctx context.Context) (int, error)
	CountByState(ctx context.Context, s approvals.State) (int, error)
	Close() error
}

var (
	_ database = (*sqlite.DB)(nil)
	_ database = (*postgres.DB)(nil)
)

// isPostgres reports whether REVOKEBOT_DATABASE names a PostgreSQL server
// (a postgres:// or postgresql:// URL) rather than a SQLite file.
func isPostgres(v string) bool {
	lower := strings.ToLower(v)
	return strings.HasPrefix(lower, "postgres://") || strings.HasPrefix(lower, "postgresql://")
}

// databaseLabel names the database for logs and reports: the file path, or
// the server's URL without its password and parameters.
func databaseLabel(v string) string {
	if !isPostgres(v) {
		return v
	}
	u, err := url.Parse(v)
	if err != nil {
		return "postgres (the URL does not parse)"
	}
	label := u.Scheme + "://"
	if u.User != nil {
		label += u.User.Username() + "@"
	}
	return label + u.Host + u.Path
}

// openDatabase opens the store REVOKEBOT_DATABASE names, and, for a server
// shared by several replicas, the Cloudflare rate budget they share (nil
// for SQLite: one process paces itself).
func openDatabase(ctx context.Context, where string) (database, cloudflare.Budget, error) {
	if isPostgres(where) {
		db, err := postgres.Open(ctx, where)
		if err != nil {
			return nil, nil, err
		}
		return db, db, nil
	}
	db, err := sqlite.Open(ctx, where)
	if err != nil {
		return nil, nil, err
	}
	return db, nil, nil
}

// takeOver frees, for a SQLite file, the leases and claims of the process
// before this one: one process uses the file, so they are a killed
// predecessor's, and waiting for them to end would only delay the work.
// A PostgreSQL server is shared by replicas that may be alive: there, a
// dead replica's leases end by themselves.
func takeOver(ctx context.Context, db database) error {
	if s, ok := db.(*sqlite.DB); ok {
		return s.ReleaseAll(ctx)
	}
	return nil
}

// openError words a failure to open the database for the person starting
// revokebot: which variable, and what to check.
func openError(where string, err error) error {
	if isPostgres(where) {
		return fmt.Errorf("REVOKEBOT_DATABASE: %w (is the PostgreSQL server up and reachable from here, and are the user, database and sslmode in the URL right?)", err)
	}
	return fmt.Errorf("REVOKEBOT_DATABASE: %w", err)
}
