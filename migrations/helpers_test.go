package migrations_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/loyalty-ledger/loyalty/database"
)

// sourceVersions lists the versions of every migration this binary holds.
func sourceVersions(t *testing.T, db *database.DB) []int64 {
	t.Helper()
	sqlDB := stdlib.OpenDBFromPool(db.Pool)
	defer sqlDB.Close()
	p := newProvider(t, sqlDB)
	var versions []int64
	for _, s := range p.ListSources() {
		versions = append(versions, s.Version)
	}
	return versions
}

// requireRecordedOnce fails t unless goose's table records goose's zero
// version and each of want exactly once, and nothing else.
func requireRecordedOnce(t *testing.T, db *database.DB, want []int64) {
	t.Helper()
	rows, err := db.Pool.Query(context.Background(),
		`SELECT version_id, count(*) FROM goose_db_version GROUP BY version_id ORDER BY version_id`)
	if err != nil {
		t.Fatal(err)
	}
	got, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (string, error) {
		var version, n int64
		err := row.Scan(&version, &n)
		return fmt.Sprintf("%d×%d", version, n), err
	})
	if err != nil {
		t.Fatal(err)
	}
	expected := []string{"0×1"}
	for _, v := range want {
		expected = append(expected, fmt.Sprintf("%d×1", v))
	}
	if !slices.Equal(got, expected) {
		t.Errorf("goose_db_version holds (version×rows) %v, want %v", got, expected)
	}
}

// forgetFrom deletes goose's records of version and every later one: what
// a crash leaves when a migration's schema changes committed and its
// record did not (goose stops at the first failure, so nothing later ran).
func forgetFrom(t *testing.T, db *database.DB, version int64) {
	t.Helper()
	if _, err := db.Pool.Exec(context.Background(), `DELETE FROM goose_db_version WHERE version_id >= $1`, version); err != nil {
		t.Fatal(err)
	}
}

var emptyDatabases atomic.Int64

// newEmptyDatabase creates a database with nothing in it (not even goose's
// tables) on the server of base, and returns its connection string: what
// a first rollout finds.
func newEmptyDatabase(t *testing.T, base *database.DB) string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.ConnectConfig(ctx, base.Pool.Config().ConnConfig.Copy())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	name := fmt.Sprintf("m%d_empty_%d", os.Getpid(), emptyDatabases.Add(1))
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	return withDatabase(t, base.Pool.Config().ConnString(), name)
}

// withDatabase returns connString pointed at database name; it takes both
// forms pgx parses (URL, and keyword=value, where a later keyword wins).
func withDatabase(t *testing.T, connString, name string) string {
	t.Helper()
	if strings.HasPrefix(connString, "postgres://") || strings.HasPrefix(connString, "postgresql://") {
		u, err := url.Parse(connString)
		if err != nil {
			t.Fatal(err)
		}
		u.Path = "/" + name
		return u.String()
	}
	return connString + " dbname='" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(name) + "'"
}

// logRecorder is a slog handler that keeps what it is given, for tests
// that check what an instance said.
type logRecorder struct {
	mu    sync.Mutex
	lines []loggedLine
}

type loggedLine struct {
	msg   string
	attrs map[string]any
}

func (r *logRecorder) logger() *slog.Logger { return slog.New(r) }

func (r *logRecorder) Enabled(context.Context, slog.Level) bool { return true }

func (r *logRecorder) Handle(_ context.Context, rec slog.Record) error {
	line := loggedLine{msg: rec.Message, attrs: map[string]any{}}
	rec.Attrs(func(a slog.Attr) bool {
		line.attrs[a.Key] = a.Value.Any()
		return true
	})
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lines = append(r.lines, line)
	return nil
}

func (r *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *logRecorder) WithGroup(string) slog.Handler      { return r }

// find returns the lines with message msg.
func (r *logRecorder) find(msg string) []loggedLine {
	r.mu.Lock()
	defer r.mu.Unlock()
	var found []loggedLine
	for _, l := range r.lines {
		if l.msg == msg {
			found = append(found, l)
		}
	}
	return found
}

// applied returns the versions Apply reported as applied.
func (r *logRecorder) applied() []int64 {
	var versions []int64
	for _, l := range r.find("migration applied") {
		v, _ := l.attrs["version"].(int64)
		versions = append(versions, v)
	}
	return versions
}
