// Package dbtest gives tests real databases: a throwaway PostgreSQL server
// started once per test binary from the installed server binaries, and
// CockroachDB as well when one is configured:
//
//	COCKROACH_BINARY=/path/to/cockroach  starts a single-node test server
//	COCKROACH_URL=postgresql://root@host:26257/?sslmode=disable  uses a running cluster
//
// ForEachEngine runs a test on every configured engine. New gives a test
// one database, on PostgreSQL unless DBTEST_ENGINE=cockroachdb, which puts
// every test that calls New on CockroachDB (and fails the binary at start
// when no CockroachDB is configured).
//
// Each test gets a fresh, migrated database of its own. Nothing is skipped
// silently: the engines a run covers, and the one New uses, are printed when
// it starts.
package dbtest

import (
	"context"
	"flag"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/cockroach-go/v2/testserver"
	"github.com/jackc/pgx/v5"

	"github.com/loyalty-ledger/loyalty/database"
	"github.com/loyalty-ledger/loyalty/embeddedpg"
	"github.com/loyalty-ledger/loyalty/internal/testclock"
	"github.com/loyalty-ledger/loyalty/migrations"
)

// EngineEnv names the environment variable that chooses the engine of New.
const EngineEnv = "DBTEST_ENGINE"

// Creating one database (and preparing a template) may take this long.
// PostgreSQL copies a template in well under a second. On CockroachDB every
// DDL statement is a schema-change job, and the fallback applies all the
// migrations (about 40 statements) to each new database: minutes on a busy
// single node.
const (
	postgresCreateTimeout = 2 * time.Minute
	cockroachTimeout      = 10 * time.Minute
	// restoreTimeout leaves the rest of cockroachTimeout to the fallback
	// when a RESTORE hangs rather than fails.
	restoreTimeout = 4 * time.Minute
)

// Engine is one database engine the tests of this binary run against.
type Engine struct {
	Name string // e.g. "postgresql 15.18"
	Kind database.Engine
	// adminURL connects to a database from which new ones are created.
	adminURL string
	// urlFor returns the connection string of a named database.
	urlFor func(name string) string
	// prefix starts the name of every database this binary creates.
	prefix string
	// timeout bounds the creation of one database.
	timeout time.Duration
	// template is a migrated database new ones are copied from: by CREATE
	// DATABASE ... TEMPLATE on PostgreSQL, by RESTORE of backup on
	// CockroachDB.
	template string
	// backup is the backup collection of template (CockroachDB); empty
	// when none could be taken, and then each database is migrated.
	backup string
	// cloneNote says, on the start line, how new databases are made.
	cloneNote string
	// restoreFailed stops further RESTOREs once one has failed: the cause
	// (version, privileges, license) is usually the same for all of them,
	// and each failed attempt costs time before the fallback.
	restoreFailed atomic.Bool
	restoreLog    sync.Once
}

var (
	engines []*Engine
	// defaultEngine is the engine of New: engines[0] (PostgreSQL) unless
	// DBTEST_ENGINE=cockroachdb.
	defaultEngine *Engine
	counter       atomic.Int64
	// Durable is true when the PostgreSQL server keeps fsync on: for
	// benchmarks, whose figures must reflect durable commits.
	Durable bool
)

// Main starts the engines, runs the tests and stops the engines. Call it
// from TestMain: func TestMain(m *testing.M) { dbtest.Main(m) }.
func Main(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	flag.Parse()
	// Checked before anything starts: a run asked for CockroachDB must not
	// quietly become a PostgreSQL run.
	wantKind, err := requestedEngine()
	if err != nil {
		fmt.Fprintf(os.Stderr, "dbtest: %v\n", err)
		return 2
	}
	if wantKind == database.CockroachDB && os.Getenv("COCKROACH_URL") == "" && os.Getenv("COCKROACH_BINARY") == "" {
		fmt.Fprintf(os.Stderr, "dbtest: %s=cockroachdb, but no CockroachDB is configured: set COCKROACH_BINARY=/path/to/cockroach "+
			"(a test server per test binary) or COCKROACH_URL=postgresql://root@host:26257/?sslmode=disable (a running cluster), "+
			"or unset %s to give New PostgreSQL\n", EngineEnv, EngineEnv)
		return 2
	}
	if err := testclock.Check(); err != nil {
		fmt.Fprintf(os.Stderr, "dbtest: %v\n", err)
		return 2
	}
	ctx := context.Background()
	Durable = benchmarking()

	pg, err := embeddedpg.Start(ctx, embeddedpg.Options{
		Throwaway: !Durable,
		Settings:  map[string]string{"max_connections": "300"},
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "dbtest: start PostgreSQL: %v\n", err)
		return 1
	}
	defer pg.Stop()
	pgEngine := &Engine{
		Name:     "postgresql " + pg.Version(),
		Kind:     database.PostgreSQL,
		adminURL: pg.ConnString("postgres"),
		urlFor:   pg.ConnString,
		prefix:   fmt.Sprintf("t%d", os.Getpid()),
		timeout:  postgresCreateTimeout,
		template: "loyalty_template",
	}
	if err := prepareTemplate(ctx, pgEngine); err != nil {
		fmt.Fprintf(os.Stderr, "dbtest: %v\n", err)
		return 1
	}
	engines = append(engines, pgEngine)
	defaultEngine = pgEngine

	crdbNote := "cockroachdb: not configured (set COCKROACH_BINARY or COCKROACH_URL to cover it)"
	if crdb, stop, err := cockroach(); err != nil {
		fmt.Fprintf(os.Stderr, "dbtest: CockroachDB was configured but is not usable: %v\n", err)
		return 1
	} else if crdb != nil {
		defer stop()
		if err := prepareCockroachTemplate(ctx, crdb); err != nil {
			fmt.Fprintf(os.Stderr, "dbtest: %v\n", err)
			return 1
		}
		engines = append(engines, crdb)
		crdbNote = crdb.Name + ": " + crdb.cloneNote
		if wantKind == database.CockroachDB {
			defaultEngine = crdb
		}
	}
	mode := "throwaway, fsync off"
	if Durable {
		mode = "fsync on"
	}
	newNote := string(defaultEngine.Kind)
	switch {
	case defaultEngine.Kind == database.CockroachDB:
		newNote += " (" + EngineEnv + "=cockroachdb)"
	case len(engines) > 1:
		newNote += " (" + EngineEnv + "=cockroachdb for cockroachdb)"
	}
	fmt.Printf("dbtest: engines: %s (%s); %s; dbtest.New: %s\n", pgEngine.Name, mode, crdbNote, newNote)
	fmt.Printf("dbtest: calendar: %s\n", testclock.Describe())
	return m.Run()
}

// requestedEngine reads DBTEST_ENGINE.
func requestedEngine() (database.Engine, error) {
	raw := os.Getenv(EngineEnv)
	switch strings.ToLower(strings.TrimSpace(raw)) {
	case "", string(database.PostgreSQL):
		return database.PostgreSQL, nil
	case string(database.CockroachDB):
		return database.CockroachDB, nil
	default:
		return "", fmt.Errorf("%s=%q: want %s or %s", EngineEnv, raw, database.PostgreSQL, database.CockroachDB)
	}
}

// benchmarking reports whether this run was asked for benchmarks.
func benchmarking() bool {
	f := flag.Lookup("test.bench")
	return f != nil && f.Value.String() != ""
}

func prepareTemplate(ctx context.Context, e *Engine) error {
	if err := createDatabase(ctx, e.adminURL, e.template, ""); err != nil {
		return err
	}
	db, err := database.Open(ctx, e.urlFor(e.template), database.Options{MaxConns: 2})
	if err != nil {
		return fmt.Errorf("open template %s on %s: %w", e.template, e.Name, err)
	}
	defer db.Close()
	if err := migrations.Apply(ctx, db.Pool, nil); err != nil {
		return fmt.Errorf("migrate template %s on %s: %w", e.template, e.Name, err)
	}
	return nil
}

// prepareCockroachTemplate migrates a template database once and backs it
// up, so that each test's database is a RESTORE of it (one job) rather
// than a run of every migration (one schema-change job per statement).
// CockroachDB has no CREATE DATABASE ... TEMPLATE: its CREATE DATABASE
// takes no template parameter
// (https://www.cockroachlabs.com/docs/stable/create-database).
// A failed BACKUP does not fail the run: databases are then migrated one
// by one, slower, and the start line says so.
func prepareCockroachTemplate(ctx context.Context, e *Engine) error {
	ctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	if err := prepareTemplate(ctx, e); err != nil {
		return err
	}
	// userfile storage is a table in the cluster itself (in defaultdb, per
	// user), so the backup needs no external storage and no privilege
	// beyond the user's own; userfile:/// is the user's default space.
	// https://www.cockroachlabs.com/docs/stable/use-userfile-storage,
	// "Backup and restore with userfile".
	// BACKUP DATABASE ... INTO {collectionURI}:
	// https://www.cockroachlabs.com/docs/stable/backup, "Back up a
	// database"; full backups need no Enterprise license since v20.2
	// (https://www.cockroachlabs.com/docs/v20.2/take-full-and-incremental-backups).
	// No AS OF SYSTEM TIME '-10s', which that page advises for busy
	// databases: ten seconds ago the template did not exist yet, and
	// nothing writes to it.
	backup := "userfile:///" + e.template
	if err := execAdmin(ctx, e.adminURL, backupStmt(e.template, backup)); err != nil {
		e.cloneNote = fmt.Sprintf("each database migrated (BACKUP of the template failed: %v)", err)
		fmt.Fprintf(os.Stderr, "dbtest: %s: %s\n", e.Name, e.cloneNote)
		return nil
	}
	e.backup = backup
	e.cloneNote = "databases restored from a migrated template (" + backup + ")"
	return nil
}

// restore creates database name as a copy of the template.
// RESTORE DATABASE ... FROM LATEST IN {collectionURI} WITH new_db_name:
// https://www.cockroachlabs.com/docs/stable/restore, "Rename a database on
// restore" and "Restore the most recent full or incremental backup";
// new_db_name is new in v22.1 (.../docs/v22.1/restore), FROM LATEST IN is
// in the v21.2 page already. The same page: RESTORE needs no Enterprise
// license, and without DETACHED it returns when its job is done.
func (e *Engine) restore(ctx context.Context, name string) error {
	ctx, cancel := context.WithTimeout(ctx, restoreTimeout)
	defer cancel()
	if err := execAdmin(ctx, e.adminURL, restoreStmt(e.template, e.backup, name)); err != nil {
		return fmt.Errorf("restore template %s as %s: %w", e.template, name, err)
	}
	return nil
}

func backupStmt(template, collection string) string {
	return "BACKUP DATABASE " + pgx.Identifier{template}.Sanitize() + " INTO " + quoteLiteral(collection)
}

func restoreStmt(template, collection, name string) string {
	return "RESTORE DATABASE " + pgx.Identifier{template}.Sanitize() +
		" FROM LATEST IN " + quoteLiteral(collection) +
		" WITH new_db_name = " + quoteLiteral(name)
}

func createDatabase(ctx context.Context, adminURL, name, template string) error {
	stmt := "CREATE DATABASE " + pgx.Identifier{name}.Sanitize()
	if template != "" {
		stmt += " TEMPLATE " + pgx.Identifier{template}.Sanitize()
	}
	if err := execAdmin(ctx, adminURL, stmt); err != nil {
		return fmt.Errorf("create database %s: %w", name, err)
	}
	return nil
}

// execAdmin runs one statement on a connection of its own, outside any
// explicit transaction, which CREATE DATABASE refuses on PostgreSQL and
// BACKUP and RESTORE refuse on CockroachDB unless DETACHED.
func execAdmin(ctx context.Context, adminURL, stmt string) error {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, stmt)
	return err
}

// quoteLiteral quotes s as an SQL string literal: BACKUP and RESTORE take
// their URIs and options as literals.
func quoteLiteral(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// cockroach returns the CockroachDB engine when one is configured.
func cockroach() (*Engine, func(), error) {
	if raw := os.Getenv("COCKROACH_URL"); raw != "" {
		base, err := url.Parse(raw)
		if err != nil {
			return nil, nil, fmt.Errorf("COCKROACH_URL: %w", err)
		}
		e := crdbEngine("cockroachdb at COCKROACH_URL", base)
		return e, func() {}, nil
	}
	if bin := os.Getenv("COCKROACH_BINARY"); bin != "" {
		ts, err := testserver.NewTestServer(testserver.CockroachBinaryPathOpt(bin))
		if err != nil {
			return nil, nil, fmt.Errorf("start CockroachDB from COCKROACH_BINARY=%s: %w", bin, err)
		}
		if err := ts.WaitForInit(); err != nil {
			ts.Stop()
			return nil, nil, fmt.Errorf("CockroachDB from %s did not start: %w", bin, err)
		}
		return crdbEngine("cockroachdb ("+bin+")", ts.PGURL()), ts.Stop, nil
	}
	return nil, nil, nil
}

func crdbEngine(name string, base *url.URL) *Engine {
	urlFor := func(db string) string {
		u := *base
		u.Path = "/" + db
		return u.String()
	}
	// A cluster at COCKROACH_URL outlives test binaries and keeps their
	// databases and template backups: the start time keeps a later
	// binary that reuses a process id from colliding with them.
	prefix := fmt.Sprintf("t%d_%s", os.Getpid(), strconv.FormatInt(time.Now().Unix(), 36))
	return &Engine{
		Name:     name,
		Kind:     database.CockroachDB,
		adminURL: urlFor("defaultdb"),
		urlFor:   urlFor,
		prefix:   prefix,
		timeout:  cockroachTimeout,
		template: prefix + "_template",
	}
}

// Engines lists the engines of this run; the first is always PostgreSQL.
func Engines() []*Engine { return engines }

// NewDatabase returns a fresh, migrated database on e, closed when the
// test ends.
func (e *Engine) NewDatabase(tb testing.TB) *database.DB {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), e.timeout)
	defer cancel()
	name := fmt.Sprintf("%s_%d_%s", e.prefix, counter.Add(1), sanitize(tb.Name()))
	name, migrate, err := e.create(ctx, tb, name)
	if err != nil {
		tb.Fatalf("dbtest: %s: %v", e.Name, err)
	}
	db, err := database.Open(ctx, e.urlFor(name), database.Options{})
	if err != nil {
		tb.Fatalf("dbtest: %s: open %s: %v", e.Name, name, err)
	}
	tb.Cleanup(db.Close)
	if migrate {
		if err := migrations.Apply(ctx, db.Pool, nil); err != nil {
			tb.Fatalf("dbtest: %s: migrate %s: %v", e.Name, name, err)
		}
	}
	return db
}

// create makes the database for a test and reports its name (which the
// fallback changes) and whether it still needs the migrations.
func (e *Engine) create(ctx context.Context, tb testing.TB, name string) (string, bool, error) {
	if e.Kind == database.PostgreSQL {
		return name, false, createDatabase(ctx, e.adminURL, name, e.template)
	}
	if e.backup != "" && !e.restoreFailed.Load() {
		err := e.restore(ctx, name)
		if err == nil {
			return name, false, nil
		}
		e.restoreFailed.Store(true)
		e.restoreLog.Do(func() {
			fmt.Fprintf(os.Stderr, "dbtest: %s: %v; from now on each new database is migrated instead (slower)\n", e.Name, err)
		})
		tb.Logf("dbtest: %s: %v; migrating the database instead", e.Name, err)
		// A RESTORE cut off by its timeout may still finish in the
		// background and take the name: the fallback uses another one.
		name += "_m"
	}
	return name, true, createDatabase(ctx, e.adminURL, name, "")
}

// New returns a fresh, migrated database on PostgreSQL, or on CockroachDB
// when DBTEST_ENGINE=cockroachdb.
func New(tb testing.TB) *database.DB {
	tb.Helper()
	if defaultEngine == nil {
		tb.Fatal("dbtest: no engines: call dbtest.Main from TestMain")
	}
	return defaultEngine.NewDatabase(tb)
}

// PostgreSQL returns a fresh, migrated PostgreSQL database whatever
// DBTEST_ENGINE says: for tests of what only PostgreSQL does (its
// settings, its Unix socket for a fault-injecting proxy).
func PostgreSQL(tb testing.TB) *database.DB {
	tb.Helper()
	if len(engines) == 0 {
		tb.Fatal("dbtest: no engines: call dbtest.Main from TestMain")
	}
	return engines[0].NewDatabase(tb)
}

// ForEachEngine runs fn as a subtest on every engine, each with a fresh
// database.
func ForEachEngine(t *testing.T, fn func(t *testing.T, db *database.DB)) {
	t.Helper()
	if len(engines) == 0 {
		t.Fatal("dbtest: no engines: call dbtest.Main from TestMain")
	}
	for _, e := range engines {
		t.Run(string(e.Kind), func(t *testing.T) {
			fn(t, e.NewDatabase(t))
		})
	}
}

func sanitize(name string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(name) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
		if b.Len() >= 30 {
			break
		}
	}
	return b.String()
}
