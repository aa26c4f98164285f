-- The journal: transactions and their postings. Append-only: the service
-- never updates or deletes a row here; a correction is a new transaction.
--
-- +goose NO TRANSACTION
-- +goose Up
CREATE TABLE IF NOT EXISTS transactions (
    id              UUID PRIMARY KEY,
    kind            TEXT NOT NULL,
    caller_id       TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    effective_at    TIMESTAMPTZ NOT NULL,
    recorded_at     TIMESTAMPTZ NOT NULL,
    posting_count   INTEGER NOT NULL CHECK (posting_count >= 2),
    -- UNIQUE: a transaction is reversed at most once.
    reverses_id     UUID UNIQUE REFERENCES transactions (id),
    metadata        JSONB NOT NULL
);

-- amount is signed: positive credits the account, negative debits it.
--
-- No foreign keys here, on purpose. An FK check on account_code takes a
-- share lock on the account row, which would make the programme accounts a
-- hot row again; the same transaction updates the account's balance row,
-- which fails if the account does not exist. An FK check on transaction_id
-- is a read of the transactions index, which at SERIALIZABLE on PostgreSQL
-- takes a page-level predicate lock that conflicts with every concurrent
-- insert of a transaction on that page. Postings are written only together
-- with their transaction, and the ledger's verification checks that every
-- transaction has exactly posting_count postings.
CREATE TABLE IF NOT EXISTS postings (
    transaction_id UUID NOT NULL,
    seq            INTEGER NOT NULL,
    account_code   TEXT NOT NULL,
    amount         BIGINT NOT NULL CHECK (amount <> 0),
    recorded_at    TIMESTAMPTZ NOT NULL,
    -- For single-row accounts (members): the account's raw balance and its
    -- held points right after this transaction, as statements show them.
    -- NULL for sharded accounts, whose total no transaction reads.
    balance_after  BIGINT,
    held_after     BIGINT,
    PRIMARY KEY (transaction_id, seq)
);

-- +goose Down
DROP TABLE IF EXISTS postings;
DROP TABLE IF EXISTS transactions;
