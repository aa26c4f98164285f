// Package dbtest gives tests real databases: a throwaway PostgreSQL server
// started once per test binary from the installed server binaries, and
// CockroachDB as well when one is configured:
//
//	COCKROACH_BINARY=/path/to/cockroach  starts a single-node test server
//	COCKROACH_URL=postgresql://root@host:26257/?sslmode=disable  uses a running cluster
//
// Each test gets a fresh, migrated database of its own. Nothing is skipped
// silently: the engines a run covers are printed when it starts.
package dbtest

import (
	"context"
	"flag"
	"fmt"
	"net/url"
	"os"
	"strings"
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

// Engine is one database engine the tests of this binary run against.
type Engine struct {
	Name string // e.g. "postgresql 15.18"
	Kind database.Engine
	// adminURL connects to a database from which new ones are created.
	adminURL string
	// urlFor returns the connection string of a named database.
	urlFor func(name string) string
	// template is a migrated database new ones are copied from
	// (PostgreSQL only; CockroachDB migrates each new database).
	template string
}

var (
	engines []*Engine
	counter atomic.Int64
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
		template: "loyalty_template",
	}
	if err := prepareTemplate(ctx, pgEngine); err != nil {
		fmt.Fprintf(os.Stderr, "dbtest: %v\n", err)
		return 1
	}
	engines = append(engines, pgEngine)

	crdbNote := "cockroachdb: not configured (set COCKROACH_BINARY or COCKROACH_URL to cover it)"
	if crdb, stop, err := cockroach(); err != nil {
		fmt.Fprintf(os.Stderr, "dbtest: CockroachDB was configured but is not usable: %v\n", err)
		return 1
	} else if crdb != nil {
		defer stop()
		engines = append(engines, crdb)
		crdbNote = crdb.Name
	}
	mode := "throwaway, fsync off"
	if Durable {
		mode = "fsync on"
	}
	fmt.Printf("dbtest: engines: %s (%s); %s\n", pgEngine.Name, mode, crdbNote)
	fmt.Printf("dbtest: calendar: %s\n", testclock.Describe())
	return m.Run()
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
		return err
	}
	defer db.Close()
	return migrations.Apply(ctx, db.Pool, nil)
}

func createDatabase(ctx context.Context, adminURL, name, template string) error {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return fmt.Errorf("connect to create database %s: %w", name, err)
	}
	defer conn.Close(ctx)
	stmt := "CREATE DATABASE " + pgx.Identifier{name}.Sanitize()
	if template != "" {
		stmt += " TEMPLATE " + pgx.Identifier{template}.Sanitize()
	}
	if _, err := conn.Exec(ctx, stmt); err != nil {
		return fmt.Errorf("create database %s: %w", name, err)
	}
	return nil
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
	return &Engine{Name: name, Kind: database.CockroachDB, adminURL: urlFor("defaultdb"), urlFor: urlFor}
}

// Engines lists the engines of this run.
func Engines() []*Engine { return engines }

// NewDatabase returns a fresh, migrated database on e, closed when the
// test ends.
func (e *Engine) NewDatabase(tb testing.TB) *database.DB {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	name := fmt.Sprintf("t%d_%d_%s", os.Getpid(), counter.Add(1), sanitize(tb.Name()))
	if err := createDatabase(ctx, e.adminURL, name, e.template); err != nil {
		tb.Fatal(err)
	}
	db, err := database.Open(ctx, e.urlFor(name), database.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(db.Close)
	if e.template == "" {
		if err := migrations.Apply(ctx, db.Pool, nil); err != nil {
			tb.Fatal(err)
		}
	}
	return db
}

// New returns a fresh, migrated PostgreSQL database.
func New(tb testing.TB) *database.DB {
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
