package main

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/loyalty-ledger/loyalty/database"
	"github.com/loyalty-ledger/loyalty/events"
	"github.com/loyalty-ledger/loyalty/ledger"
)

// checkAcknowledged checks that every stay and redemption the service
// acknowledged is in the ledger, under the idempotency key it was sent
// with, and that the ledger holds no other transaction under the run's
// keys (replays recorded nothing twice).
func checkAcknowledged(ctx context.Context, pool *pgxpool.Pool, rep *report) ([]string, error) {
	ids := make([]uuid.UUID, len(rep.Acked))
	keys := make([]string, len(rep.Acked))
	for i, a := range rep.Acked {
		id, err := uuid.Parse(a.TransactionID)
		if err != nil {
			return []string{fmt.Sprintf("acknowledged transaction id %q is not a UUID", a.TransactionID)}, nil
		}
		ids[i], keys[i] = id, a.Key
	}
	var found, keyed int64
	if err := pool.QueryRow(ctx, `SELECT COUNT(*) FROM transactions t
		JOIN unnest($1::UUID[], $2::TEXT[]) AS a(id, key) ON t.id = a.id AND t.idempotency_key = a.key`,
		ids, keys).Scan(&found); err != nil {
		return nil, fmt.Errorf("look up acknowledged transactions: %w", err)
	}
	if err := pool.QueryRow(ctx, `SELECT COUNT(*) FROM transactions WHERE idempotency_key LIKE $1`,
		rep.KeyPrefix+"%").Scan(&keyed); err != nil {
		return nil, fmt.Errorf("count the run's transactions: %w", err)
	}
	var problems []string
	if found != int64(len(ids)) {
		problems = append(problems, fmt.Sprintf("%d of %d acknowledged transactions are missing from the ledger", int64(len(ids))-found, len(ids)))
	}
	if keyed != int64(len(ids)) {
		problems = append(problems, fmt.Sprintf("the ledger holds %d transactions under the run's idempotency keys, %d were acknowledged", keyed, len(ids)))
	}
	return problems, nil
}

// verifyLedger runs ledger.Verify on the database at url and returns the
// discrepancies it finds.
func verifyLedger(ctx context.Context, url string) ([]ledger.Discrepancy, error) {
	db, err := database.Open(ctx, url, database.Options{MaxConns: 4})
	if err != nil {
		return nil, err
	}
	defer db.Close()
	return ledger.New(db, ledger.Options{Outbox: events.OfTransaction}).Verify(ctx)
}
