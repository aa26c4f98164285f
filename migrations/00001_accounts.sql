-- Accounts and their balances. An account's balance is spread over
-- `shards` rows so that programme and partner accounts, which nearly every
-- transaction touches, are never one hot row. Accounts that may not go below
-- zero (members) have exactly one shard: the overdraft check needs one row
-- to guard.
--
-- +goose NO TRANSACTION
-- +goose Up
CREATE TABLE IF NOT EXISTS accounts (
    code           TEXT PRIMARY KEY,
    normal_side    TEXT NOT NULL CHECK (normal_side IN ('debit', 'credit')),
    allow_negative BOOLEAN NOT NULL,
    shards         INTEGER NOT NULL CHECK (shards BETWEEN 1 AND 256),
    created_at     TIMESTAMPTZ NOT NULL,
    CONSTRAINT single_shard_unless_negative_allowed CHECK (allow_negative OR shards = 1)
);

-- balance is the raw sum of the account's postings on this shard
-- (credits positive, debits negative).
CREATE TABLE IF NOT EXISTS account_balances (
    account_code TEXT NOT NULL REFERENCES accounts (code),
    shard        INTEGER NOT NULL,
    balance      BIGINT NOT NULL,
    PRIMARY KEY (account_code, shard)
);

-- +goose Down
DROP TABLE IF EXISTS account_balances;
DROP TABLE IF EXISTS accounts;
