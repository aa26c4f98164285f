package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Where a phase's PostgreSQL time and WAL go, statement by statement
// (events-ab -statements N): the bench's private PostgreSQL loads
// pg_stat_statements, whose counters are reset before each phase and read
// after it. The extension is the bench's tool, on its own server only;
// the service never depends on it.

// statementSettings are the server settings that load pg_stat_statements.
var statementSettings = map[string]string{
	"shared_preload_libraries":         "pg_stat_statements",
	"pg_stat_statements.max":           "1000",
	"pg_stat_statements.track":         "all",
	"pg_stat_statements.save":          "off",
	"track_activity_query_size":        "2048",
	"pg_stat_statements.track_utility": "off",
	// Planning is PostgreSQL's CPU too: a statement planned at every
	// execution (a custom plan) can cost more to plan than to run.
	"pg_stat_statements.track_planning": "on",
}

// maxStatementRows bounds -statements.
const maxStatementRows = 50

// createStatementsExtension makes the view readable in the bench's database.
func createStatementsExtension(ctx context.Context, pool *pgxpool.Pool) error {
	if _, err := pool.Exec(ctx, `CREATE EXTENSION IF NOT EXISTS pg_stat_statements`); err != nil {
		return fmt.Errorf("create pg_stat_statements: %w", err)
	}
	return nil
}

// tableCounts is a snapshot of the row operations and vacuums per table.
type tableCounts map[string][5]int64 // inserted, updated (HOT included), deleted, HOT updated, vacuums

func readTableCounts(ctx context.Context, pool *pgxpool.Pool) (tableCounts, error) {
	rows, err := pool.Query(ctx, `SELECT relname, n_tup_ins, n_tup_upd, n_tup_del, n_tup_hot_upd, autovacuum_count + vacuum_count
		FROM pg_stat_user_tables`)
	if err != nil {
		return nil, fmt.Errorf("read table counters: %w", err)
	}
	out := tableCounts{}
	var name string
	var c [5]int64
	_, err = pgx.ForEachRow(rows, []any{&name, &c[0], &c[1], &c[2], &c[3], &c[4]}, func() error { out[name] = c; return nil })
	if err != nil {
		return nil, fmt.Errorf("read table counters: %w", err)
	}
	return out, nil
}

// resetStatements starts a phase's counting.
func resetStatements(ctx context.Context, pool *pgxpool.Pool) (tableCounts, error) {
	if _, err := pool.Exec(ctx, `SELECT pg_stat_statements_reset()`); err != nil {
		return nil, fmt.Errorf("reset pg_stat_statements: %w", err)
	}
	// The table counters lag by up to PGSTAT_MIN_INTERVAL; a snapshot is
	// near enough over a 20 s phase.
	return readTableCounts(ctx, pool)
}

// printStatements prints the top statements of the phase by execution
// time and by WAL, per committed write, and the row operations per table.
func printStatements(ctx context.Context, w io.Writer, pool *pgxpool.Pool, top int, committed int64, before tableCounts) error {
	if committed <= 0 {
		return nil
	}
	per := float64(committed)
	var totalMS, planMS, totalWAL float64
	var plans int64
	if err := pool.QueryRow(ctx, `SELECT COALESCE(sum(total_exec_time), 0), COALESCE(sum(total_plan_time), 0), COALESCE(sum(plans), 0)::INT8,
			COALESCE(sum(wal_bytes), 0)::FLOAT8 FROM pg_stat_statements`).
		Scan(&totalMS, &planMS, &plans, &totalWAL); err != nil {
		return fmt.Errorf("read pg_stat_statements: %w", err)
	}
	fmt.Fprintf(w, "statements: %.3f ms executing, %.3f ms planning (%.2f plans) and %.0f WAL bytes per committed write in all\n",
		totalMS/per, planMS/per, float64(plans)/per, totalWAL/per)
	for _, order := range []string{"total_exec_time", "total_plan_time", "wal_bytes"} {
		rows, err := pool.Query(ctx, `SELECT calls, total_exec_time, plans, total_plan_time, rows, wal_bytes::FLOAT8, wal_fpi, query
			FROM pg_stat_statements ORDER BY `+order+` DESC LIMIT $1`, top)
		if err != nil {
			return fmt.Errorf("read pg_stat_statements: %w", err)
		}
		fmt.Fprintf(w, "top %d by %s (per committed write: calls, exec µs, plans, plan µs, rows, WAL bytes, full-page images):\n", top, order)
		var calls, nplans, nrows, fpi int64
		var ms, planned, wal float64
		var query string
		_, err = pgx.ForEachRow(rows, []any{&calls, &ms, &nplans, &planned, &nrows, &wal, &fpi, &query}, func() error {
			fmt.Fprintf(w, "  %6.3f %8.1f %6.3f %7.1f %7.3f %8.0f %6.3f  %s\n", float64(calls)/per, 1000*ms/per, float64(nplans)/per, 1000*planned/per,
				float64(nrows)/per, wal/per, float64(fpi)/per, oneLine(query, 150))
			return nil
		})
		if err != nil {
			return fmt.Errorf("read pg_stat_statements: %w", err)
		}
	}
	after, err := readTableCounts(ctx, pool)
	if err != nil {
		return err
	}
	fmt.Fprintln(w, "rows per committed write, by table (inserted, updated, deleted, of which HOT updates; vacuums in the phase):")
	for name, a := range after {
		b := before[name]
		if a == b {
			continue
		}
		fmt.Fprintf(w, "  %-28s %7.3f %7.3f %7.3f %7.3f %3d\n", name,
			float64(a[0]-b[0])/per, float64(a[1]-b[1])/per, float64(a[2]-b[2])/per, float64(a[3]-b[3])/per, a[4]-b[4])
	}
	return nil
}

// oneLine is q on one line, whitespace collapsed, at most n bytes.
func oneLine(q string, n int) string {
	q = strings.Join(strings.Fields(q), " ")
	if len(q) > n {
		q = q[:n] + "…"
	}
	return q
}
