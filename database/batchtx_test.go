package database_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/loyalty-ledger/loyalty/database"
	"github.com/loyalty-ledger/loyalty/dbtest"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// On PostgreSQL a batch transaction plans its statements once (generic
// plans), and the setting ends with it: the pooled connection goes back
// with the server's default, which reports rely on.
func TestBatchTxPlansGenericallyAndLeavesTheConnectionAsItWas(t *testing.T) {
	ctx := context.Background()
	db := dbtest.PostgreSQL(t) // the setting is its own
	var before, inside string
	if err := db.Pool.QueryRow(ctx, `SHOW plan_cache_mode`).Scan(&before); err != nil {
		t.Fatal(err)
	}
	err := db.WriteBatches(ctx, func(tx *database.BatchTx) error {
		b := &pgx.Batch{}
		b.Queue(`SHOW plan_cache_mode`)
		return tx.SendAndCommit(ctx, b, func(br pgx.BatchResults) error {
			return br.QueryRow().Scan(&inside)
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if inside != "force_generic_plan" {
		t.Errorf("inside a batch transaction plan_cache_mode is %q", inside)
	}
	// Every connection of the pool, so the one the transaction used is among them.
	conns := make([]*pgxpool.Conn, 0, db.Pool.Config().MaxConns)
	for range db.Pool.Config().MaxConns {
		c, err := db.Pool.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	defer func() {
		for _, c := range conns {
			c.Release()
		}
	}()
	for _, c := range conns {
		var after string
		if err := c.QueryRow(ctx, `SHOW plan_cache_mode`).Scan(&after); err != nil {
			t.Fatal(err)
		}
		if after != before {
			t.Fatalf("a pooled connection kept plan_cache_mode %q after the transaction (was %q)", after, before)
		}
	}
}
