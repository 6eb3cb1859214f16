package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/revokebot/revokebot/approvals/dbcopy"
	"github.com/revokebot/revokebot/approvals/postgres"
	"github.com/revokebot/revokebot/approvals/sqlite"
)

const migrateUsage = `Usage: revokebot migrate-db --from FILE --to URL

Copies the whole history of a SQLite database (requests, reviews, targets,
every event and what is left to deliver of it) into an empty PostgreSQL
database, in one transaction, then reads it back from both and compares.
FILE is only brought up to the current schema, as revokebot would.

  1. stop the revokebot that uses FILE (no revokebot may run on it meanwhile)
  2. revokebot migrate-db --from FILE --to URL
  3. start the replicas with REVOKEBOT_DATABASE=URL, and never again a
     revokebot on FILE (keep it as the record of the move)

`

// migrateDB is the migrate-db command: it copies the SQLite file --from
// names into the empty PostgreSQL database --to names (see migrateUsage).
// Its errors name the flag to correct, and never show the URL's password.
func migrateDB(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	flags := flag.NewFlagSet("migrate-db", flag.ContinueOnError)
	flags.SetOutput(stderr)
	from := flags.String("from", "", "the SQLite `FILE` revokebot used (its REVOKEBOT_DATABASE)")
	to := flags.String("to", "", "the postgres:// `URL` of the empty PostgreSQL database the replicas will use")
	flags.Usage = func() {
		fmt.Fprint(flags.Output(), migrateUsage)
		flags.PrintDefaults()
	}
	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return fmt.Errorf("migrate-db: %w", err)
	}
	switch {
	case flags.NArg() > 0:
		// Not shown: a URL given without --to would show its password.
		return fmt.Errorf("migrate-db: %d unexpected arguments: it takes --from FILE and --to URL only", flags.NArg())
	case *from == "":
		return errors.New("migrate-db: --from is missing: name the SQLite file revokebot used (its REVOKEBOT_DATABASE; revokebot.db by default)")
	case isPostgres(*from):
		return errors.New("migrate-db: --from names a PostgreSQL server: it is the SQLite file to copy from (the server goes in --to)")
	case *to == "":
		return errors.New("migrate-db: --to is missing: give the postgres:// URL of the empty PostgreSQL database the replicas will use")
	case !isPostgres(*to):
		// Not shown: it may be a key=value string with a password.
		return errors.New("migrate-db: --to is not a postgres:// URL: write postgres://USER:PASSWORD@HOST:5432/DATABASE?sslmode=require, the REVOKEBOT_DATABASE the replicas will use")
	}
	if info, err := os.Stat(*from); errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("migrate-db: --from %s: no such file (migrate-db never creates one): name the SQLite file revokebot used", *from)
	} else if err != nil {
		return fmt.Errorf("migrate-db: --from: %w", err)
	} else if !info.Mode().IsRegular() {
		return fmt.Errorf("migrate-db: --from %s is not a file: name the SQLite file revokebot used", *from)
	}
	target := databaseLabel(*to)
	fmt.Fprintf(stderr, "migrate-db: copying %s into %s. No revokebot may run on %s meanwhile: stop it first.\n", *from, target, *from)

	// The server first: it is what most likely fails, and opening the file
	// upgrades its schema.
	dst, err := postgres.Open(ctx, *to)
	if err != nil {
		return fmt.Errorf("migrate-db: --to: %w (is the PostgreSQL server up and reachable from here, and are the user, database and sslmode in the URL right?)", err)
	}
	defer dst.Close()
	src, err := sqlite.Open(ctx, *from)
	if err != nil {
		return fmt.Errorf("migrate-db: --from: %w (is it the SQLite file revokebot used?)", err)
	}
	defer src.Close()

	sum, err := dbcopy.Copy(ctx, src, dst)
	var (
		notEmpty *dbcopy.NotEmptyError
		inUse    *dbcopy.InUseError
	)
	switch {
	case err == nil:
	case ctx.Err() != nil:
		// Not wrapped: an interrupted copy is a failure, not a clean stop.
		return fmt.Errorf("migrate-db: interrupted; nothing was written to %s", target)
	case errors.As(err, &notEmpty):
		return fmt.Errorf("migrate-db: --to %s: %w. If it holds an earlier copy of %s, the move is done: start the replicas with it; else name a new, empty database", target, err, *from)
	case errors.As(err, &inUse):
		return fmt.Errorf("migrate-db: --from %s: %w. Stop it, then run migrate-db again; nothing was written", *from, err)
	default:
		return fmt.Errorf("migrate-db: %w; nothing was written to %s", err, target)
	}

	backlog, err := dbcopy.Verify(ctx, src, dst)
	if err != nil {
		return fmt.Errorf("migrate-db: the copy in %s is committed but does not read back as %s does: %w. "+
			"Do not start replicas on it: run revokebot on %s as before, and report this; "+
			"was a revokebot running on either database?", target, *from, err, *from)
	}
	if len(sum.Legacy) > 0 {
		fmt.Fprintf(stdout, "note: %d requests of schema 3 hold text in SQLite's legacy columns (email, decided_by, decided_at, outcome) that PostgreSQL has no place for; %s keeps it: %s\n",
			len(sum.Legacy), *from, strings.Join(sum.Legacy, ", "))
	}
	// The last line, which README.md and deploy/kubernetes-migrate-db.yaml
	// tell people to look for.
	fmt.Fprintf(stdout, "copied %d requests, %d targets, %d reviews, %d events (last record %d); undelivered: %d; verified\n",
		sum.Requests, sum.Targets, sum.Reviews, sum.Events, sum.LastSeq, backlog)
	return nil
}
