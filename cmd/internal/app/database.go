package app

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/google/uuid"

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

// openReadOnly opens the store REVOKEBOT_DATABASE names for reading only,
// changing nothing (the audit commands): it works on a read-only replica
// or copy, and never creates a file.
func openReadOnly(ctx context.Context, where string) (database, error) {
	if isPostgres(where) {
		return postgres.OpenReadOnly(ctx, where)
	}
	return sqlite.OpenReadOnly(ctx, where)
}

// openForAudit loads the configuration as Run does (the environment, then
// ./.env) and opens the database read-only, for the audit commands: a
// SQLite file that does not exist is an error, never created.
func openForAudit(ctx context.Context, command string, getenv func(string) string) (config, database, error) {
	getenv, err := withDotEnv(getenv, ".env")
	if err != nil {
		return config{}, nil, err
	}
	cfg, err := loadConfig(getenv)
	if err != nil {
		return config{}, nil, fmt.Errorf("invalid configuration (see README.md, \"Configuration reference\"):\n%w", err)
	}
	if !isPostgres(cfg.Database) {
		if _, err := os.Stat(cfg.Database); errors.Is(err, fs.ErrNotExist) {
			return config{}, nil, fmt.Errorf("REVOKEBOT_DATABASE: %s does not exist (%s never creates one): point it at revokebot's database file", cfg.Database, command)
		}
	}
	db, err := openReadOnly(ctx, cfg.Database)
	if err != nil {
		return config{}, nil, openError(cfg.Database, err)
	}
	return cfg, db, nil
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

// nameLease is the lease that makes a replica's name its own.
func nameLease(replica string) string { return "replica:" + replica }

// takeName makes replica this process's name among those sharing db: it
// takes the name's lease, so that two live processes never share a name
// (each would take the other's delivery claims for its own). A predecessor
// under the same name that was killed (a container restarted in its pod)
// holds it until its lease ends: takeName waits that long, then refuses. It
// returns the owner to keep the lease with (see keepName).
func takeName(ctx context.Context, db database, replica string, ttl time.Duration) (owner string, err error) {
	owner = replica + "/" + uuid.NewString()[:8]
	deadline := time.Now().Add(ttl + 2*time.Second)
	for {
		held, err := db.Lease(ctx, nameLease(replica), owner, ttl)
		if err != nil {
			return "", fmt.Errorf("REVOKEBOT_DATABASE: take this replica's name: %w", err)
		}
		if held {
			return owner, nil
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("REVOKEBOT_REPLICA: another running revokebot uses the name %q: give each replica its own name, or leave REVOKEBOT_REPLICA unset", replica)
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(ttl / 4):
		}
	}
}

// keepName renews the name's lease every third of ttl until ctx ends, then
// releases it. If another process took the name meanwhile (this one
// stalled past the lease), it returns an error: two processes must not
// share a name, so this one stops.
func keepName(ctx context.Context, db database, replica, owner string, ttl time.Duration, log *slog.Logger) error {
	defer func() {
		release, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		db.Release(release, nameLease(replica), owner)
	}()
	t := time.NewTicker(ttl / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		held, err := db.Renew(ctx, nameLease(replica), owner, ttl)
		switch {
		case err != nil && ctx.Err() == nil:
			log.Warn("renew this replica's name; retrying", "replica", replica, "err", err)
		case err == nil && !held:
			return fmt.Errorf("REVOKEBOT_REPLICA: another revokebot took the name %q while this one did not answer: stopping, so that two never share it", replica)
		}
	}
}
