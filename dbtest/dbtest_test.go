package dbtest

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/loyalty-ledger/loyalty/database"
)

func TestMain(m *testing.M) { Main(m) }

func TestRequestedEngine(t *testing.T) {
	for _, c := range []struct {
		value string
		want  database.Engine
		fails bool
	}{
		{"", database.PostgreSQL, false},
		{"postgresql", database.PostgreSQL, false},
		{"cockroachdb", database.CockroachDB, false},
		{" CockroachDB ", database.CockroachDB, false},
		{"crdb", "", true},
		{"postgres", "", true},
	} {
		t.Setenv(EngineEnv, c.value)
		got, err := requestedEngine()
		if (err != nil) != c.fails || got != c.want {
			t.Errorf("%s=%q: got %q, %v; want %q, failure %v", EngineEnv, c.value, got, err, c.want, c.fails)
		}
	}
}

// The CockroachDB statements cannot run on this machine; their text is
// checked against the documented syntax (see restore and
// prepareCockroachTemplate).
func TestCockroachCloneStatements(t *testing.T) {
	if got, want := backupStmt("t1_x_template", "userfile:///t1_x_template"),
		`BACKUP DATABASE "t1_x_template" INTO 'userfile:///t1_x_template'`; got != want {
		t.Errorf("backup:\n got %s\nwant %s", got, want)
	}
	if got, want := restoreStmt("t1_x_template", "userfile:///t1_x_template", "t1_x_7_test"),
		`RESTORE DATABASE "t1_x_template" FROM LATEST IN 'userfile:///t1_x_template' WITH new_db_name = 't1_x_7_test'`; got != want {
		t.Errorf("restore:\n got %s\nwant %s", got, want)
	}
	if got, want := quoteLiteral("it's"), `'it''s'`; got != want {
		t.Errorf("quoteLiteral: got %s, want %s", got, want)
	}
}

// Every engine's databases are migrated, report the engine they run on,
// and are separate from each other.
func TestDatabasesAreMigratedAndSeparate(t *testing.T) {
	for _, e := range Engines() {
		t.Run(string(e.Kind), func(t *testing.T) {
			ctx := context.Background()
			first, second := e.NewDatabase(t), e.NewDatabase(t)
			for _, db := range []*database.DB{first, second} {
				if db.Dialect.Engine != e.Kind {
					t.Fatalf("database on %s says it runs on %s", e.Name, db.Dialect.Engine)
				}
				var version int64
				if err := db.Pool.QueryRow(ctx, `SELECT max(version_id) FROM goose_db_version`).Scan(&version); err != nil || version <= 0 {
					t.Fatalf("migration version %d, %v: want a migrated database", version, err)
				}
			}
			if _, err := first.Pool.Exec(ctx, `INSERT INTO accounts (code, normal_side, allow_negative, shards, created_at)
				VALUES ('dbtest-probe', 'debit', true, 1, now())`); err != nil {
				t.Fatal(err)
			}
			var n int
			if err := second.Pool.QueryRow(ctx, `SELECT count(*) FROM accounts WHERE code = 'dbtest-probe'`).Scan(&n); err != nil || n != 0 {
				t.Fatalf("second database sees %d rows of the first (%v): databases are not separate", n, err)
			}
		})
	}
}

// New gives the engine DBTEST_ENGINE asked for.
func TestNewUsesRequestedEngine(t *testing.T) {
	want, err := requestedEngine()
	if err != nil {
		t.Fatal(err)
	}
	if got := New(t).Dialect.Engine; got != want {
		t.Fatalf("New gave a %s database; %s=%q asks for %s", got, EngineEnv, os.Getenv(EngineEnv), want)
	}
}

// A run that asks New for CockroachDB without configuring one fails at
// once, before starting anything, rather than running on PostgreSQL.
func TestCockroachRequestedButNotConfigured(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "COCKROACH_URL=") && !strings.HasPrefix(kv, "COCKROACH_BINARY=") && !strings.HasPrefix(kv, EngineEnv+"=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, EngineEnv+"=cockroachdb")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 2 {
		t.Fatalf("exit: %v; want status 2\nstdout: %s\nstderr: %s", err, stdout.String(), stderr.String())
	}
	if !strings.Contains(stderr.String(), "no CockroachDB is configured") {
		t.Errorf("stderr does not say why: %s", stderr.String())
	}
	if strings.Contains(stdout.String(), "dbtest: engines:") {
		t.Errorf("the engines started anyway: %s", stdout.String())
	}
}

// The CockroachDB clone path falls back to migrating each database when
// BACKUP or RESTORE fails. PostgreSQL rejects both statements, so an engine
// of kind CockroachDB pointed at this run's PostgreSQL exercises both
// fallbacks here, where no CockroachDB exists.
func TestCloneFallbacks(t *testing.T) {
	pg := Engines()[0]
	fake := func(prefix string) *Engine {
		return &Engine{
			Name: "fake cockroachdb", Kind: database.CockroachDB,
			adminURL: pg.adminURL, urlFor: pg.urlFor,
			prefix: prefix, timeout: pg.timeout, template: prefix + "_template",
		}
	}

	t.Run("backup fails", func(t *testing.T) {
		e := fake(pg.prefix + "_fb")
		if err := prepareCockroachTemplate(context.Background(), e); err != nil {
			t.Fatal(err)
		}
		if e.backup != "" || !strings.Contains(e.cloneNote, "BACKUP of the template failed") {
			t.Fatalf("backup %q, note %q: want no backup and a note saying why", e.backup, e.cloneNote)
		}
		assertMigrated(t, e.NewDatabase(t))
	})

	t.Run("restore fails", func(t *testing.T) {
		e := fake(pg.prefix + "_fr")
		e.template, e.backup = pg.template, "userfile:///nowhere"
		assertMigrated(t, e.NewDatabase(t))
		if !e.restoreFailed.Load() {
			t.Fatal("a failed RESTORE was not recorded: later databases would try again")
		}
		assertMigrated(t, e.NewDatabase(t))
	})
}

func assertMigrated(t *testing.T, db *database.DB) {
	t.Helper()
	var version int64
	if err := db.Pool.QueryRow(context.Background(), `SELECT max(version_id) FROM goose_db_version`).Scan(&version); err != nil || version <= 0 {
		t.Fatalf("migration version %d, %v: want a migrated database", version, err)
	}
}
