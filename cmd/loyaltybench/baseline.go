package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// baselineConfig is one run of the raw-SQL baseline: balanced two-posting
// transfers, one READ COMMITTED transaction each, straight from a pool.
type baselineConfig struct {
	Clients  int
	Duration time.Duration
	Count    int64
	Mode     string // spread: two random accounts; hot: one side is always account 0
	Accounts int
	Seed     uint64
	// PostgresPID is the database server's postmaster, for its CPU time
	// (0: only the client's is measured).
	PostgresPID int
}

func (cfg *baselineConfig) check() error {
	switch {
	case cfg.Clients < 1:
		return errors.New("-clients must be at least 1")
	case cfg.Accounts < 2:
		return errors.New("-accounts must be at least 2")
	case cfg.Duration <= 0 && cfg.Count <= 0:
		return errors.New("give -duration or -count")
	case cfg.Mode != modeSpread && cfg.Mode != modeHot:
		return fmt.Errorf("-mode %q: spread or hot", cfg.Mode)
	}
	return nil
}

// maxBaselineAttempts bounds the tries of one transfer on a serialization
// failure or deadlock (neither should happen: READ COMMITTED, rows locked
// in id order).
const maxBaselineAttempts = 10

// setupBaseline drops and recreates the baseline's tables, with every
// account at balance 0.
func setupBaseline(ctx context.Context, pool *pgxpool.Pool, accounts int) error {
	for _, stmt := range []string{
		`DROP TABLE IF EXISTS bench_postings, bench_transfers, bench_accounts`,
		`CREATE TABLE bench_accounts (id BIGINT PRIMARY KEY, balance BIGINT NOT NULL)`,
		`CREATE TABLE bench_transfers (id UUID PRIMARY KEY, created_at TIMESTAMPTZ NOT NULL)`,
		`CREATE TABLE bench_postings (transfer_id UUID, seq INT, account_id BIGINT, amount BIGINT, PRIMARY KEY (transfer_id, seq))`,
	} {
		if _, err := pool.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("baseline setup: %s: %w", stmt, err)
		}
	}
	if _, err := pool.Exec(ctx, `INSERT INTO bench_accounts (id, balance) SELECT g.id, 0 FROM generate_series(0, $1::BIGINT - 1) AS g (id)`, accounts); err != nil {
		return fmt.Errorf("baseline setup: accounts: %w", err)
	}
	if _, err := pool.Exec(ctx, `ANALYZE bench_accounts`); err != nil {
		return fmt.Errorf("baseline setup: analyze: %w", err)
	}
	return nil
}

// runBaseline creates the tables, runs transfers from cfg.Clients
// goroutines until cfg.Duration has passed or cfg.Count transfers have
// run, then checks the books: report.Problems lists what does not add up.
func runBaseline(ctx context.Context, cfg baselineConfig, pool *pgxpool.Pool) (*report, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	rep := &report{Target: targetBaseline, Mode: cfg.Mode, Clients: cfg.Clients}
	setupStart := time.Now()
	if err := setupBaseline(ctx, pool, cfg.Accounts); err != nil {
		return nil, err
	}
	rep.Setup = time.Since(setupStart)

	type state struct {
		lat       latencies
		errs      map[string]int64
		committed int64
		retries   int64
		examples  []string
	}
	states := make([]*state, cfg.Clients)
	var started atomic.Int64
	var wg sync.WaitGroup
	meter := cpuMeter{postgresPID: cfg.PostgresPID}
	cpuBefore, cpuErr := meter.read()
	start := time.Now()
	var end time.Time
	if cfg.Duration > 0 {
		end = start.Add(cfg.Duration)
	}
	for i := range states {
		st := &state{lat: latencies{limit: maxSamples/cfg.Clients + 1}, errs: map[string]int64{}}
		states[i] = st
		rng := rand.New(rand.NewPCG(cfg.Seed, uint64(i)+1))
		wg.Go(func() {
			for ctx.Err() == nil {
				if cfg.Count > 0 && started.Add(1) > cfg.Count {
					return
				}
				if !end.IsZero() && !time.Now().Before(end) {
					return
				}
				from, to := pickAccounts(rng, cfg.Mode, cfg.Accounts)
				amount := int64(1 + rng.IntN(1000))
				t0 := time.Now()
				tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
				retries, err := transfer(tctx, pool, uuid.New(), from, to, amount)
				cancel()
				st.lat.add(time.Since(t0))
				st.retries += int64(retries)
				if err != nil {
					st.errs[sqlCode(err)]++
					if len(st.examples) < maxExamples {
						st.examples = append(st.examples, err.Error())
					}
					continue
				}
				st.committed++
			}
		})
	}
	wg.Wait()
	rep.Elapsed = time.Since(start)
	rep.measureCPU(meter, cpuBefore, cpuErr, io.Discard)

	k := &kindStats{Name: kindTransfer, Errors: map[string]int64{}}
	for _, st := range states {
		k.merge(&st.lat)
		for c, n := range st.errs {
			k.Errors[c] += n
		}
		rep.Committed += st.committed
		rep.Retries += st.retries
		for _, e := range st.examples {
			if len(rep.Examples) < maxExamples {
				rep.Examples = append(rep.Examples, e)
			}
		}
	}
	k.finish()
	rep.Kinds = []*kindStats{k}
	rep.Ops = k.Count

	problems, err := checkBaseline(ctx, pool, rep.Committed)
	if err != nil {
		return nil, err
	}
	rep.Problems = problems
	return rep, nil
}

// pickAccounts returns two different accounts: both random (spread), or
// account 0 and a random one, in a random direction (hot).
func pickAccounts(rng *rand.Rand, mode string, accounts int) (from, to int64) {
	if mode == modeHot {
		other := int64(1 + rng.IntN(accounts-1))
		if rng.IntN(2) == 0 {
			return 0, other
		}
		return other, 0
	}
	from = int64(rng.IntN(accounts))
	to = int64(rng.IntN(accounts - 1))
	if to >= from {
		to++
	}
	return from, to
}

// transfer moves amount from one account to another in one READ COMMITTED
// transaction: the transfer, its two postings, the two balances (locked
// in id order, so transfers never deadlock). It returns how often it was
// retried.
func transfer(ctx context.Context, pool *pgxpool.Pool, id uuid.UUID, from, to, amount int64) (int, error) {
	var err error
	for attempt := range maxBaselineAttempts {
		err = transferOnce(ctx, pool, id, from, to, amount)
		var pgErr *pgconn.PgError
		if err == nil || !errors.As(err, &pgErr) || (pgErr.Code != "40001" && pgErr.Code != "40P01") {
			return attempt, err
		}
	}
	return maxBaselineAttempts - 1, err
}

func transferOnce(ctx context.Context, pool *pgxpool.Pool, id uuid.UUID, from, to, amount int64) error {
	tx, err := pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx) //nolint:errcheck // after Commit it does nothing
	if _, err := tx.Exec(ctx, `INSERT INTO bench_transfers (id, created_at) VALUES ($1, now())`, id); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO bench_postings (transfer_id, seq, account_id, amount)
		VALUES ($1, 0, $2, $3), ($1, 1, $4, $5)`, id, from, -amount, to, amount); err != nil {
		return err
	}
	first, second := [2]int64{from, -amount}, [2]int64{to, amount}
	if to < from {
		first, second = second, first
	}
	for _, move := range [][2]int64{first, second} {
		tag, err := tx.Exec(ctx, `UPDATE bench_accounts SET balance = balance + $2 WHERE id = $1`, move[0], move[1])
		if err != nil {
			return err
		}
		if tag.RowsAffected() != 1 {
			return fmt.Errorf("account %d does not exist", move[0])
		}
	}
	return tx.Commit(ctx)
}

// sqlCode names an error by its SQLSTATE, or "other".
func sqlCode(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return "sqlstate_" + pgErr.Code
	}
	return "other"
}

// checkBaseline checks the baseline's books: balances sum to zero, every
// transfer has two postings summing to zero, every balance is the sum of
// its postings, and every committed transfer is there.
func checkBaseline(ctx context.Context, pool *pgxpool.Pool, committed int64) ([]string, error) {
	var problems []string
	var sum, transfers, unbalanced, wrongBalances int64
	if err := pool.QueryRow(ctx, `SELECT COALESCE(SUM(balance), 0)::INT8 FROM bench_accounts`).Scan(&sum); err != nil {
		return nil, fmt.Errorf("baseline check: %w", err)
	}
	if sum != 0 {
		problems = append(problems, fmt.Sprintf("the balances sum to %d, not 0", sum))
	}
	if err := pool.QueryRow(ctx, `SELECT COUNT(*) FROM (SELECT transfer_id FROM bench_postings
		GROUP BY transfer_id HAVING SUM(amount) <> 0 OR COUNT(*) <> 2) x`).Scan(&unbalanced); err != nil {
		return nil, fmt.Errorf("baseline check: %w", err)
	}
	if unbalanced != 0 {
		problems = append(problems, fmt.Sprintf("%d transfers whose postings do not sum to 0 (or are not 2)", unbalanced))
	}
	if err := pool.QueryRow(ctx, `SELECT COUNT(*) FROM bench_accounts a
		LEFT JOIN (SELECT account_id, SUM(amount) AS s FROM bench_postings GROUP BY account_id) p ON p.account_id = a.id
		WHERE a.balance <> COALESCE(p.s, 0)`).Scan(&wrongBalances); err != nil {
		return nil, fmt.Errorf("baseline check: %w", err)
	}
	if wrongBalances != 0 {
		problems = append(problems, fmt.Sprintf("%d accounts whose balance is not the sum of their postings", wrongBalances))
	}
	if err := pool.QueryRow(ctx, `SELECT COUNT(*) FROM bench_transfers`).Scan(&transfers); err != nil {
		return nil, fmt.Errorf("baseline check: %w", err)
	}
	if transfers != committed {
		problems = append(problems, fmt.Sprintf("%d transfers stored, %d committed", transfers, committed))
	}
	return problems, nil
}
