-- +goose NO TRANSACTION
-- +goose Up

-- One row per (caller, key): claimed in the same transaction as the write
-- it guards, so a write and its key commit together or not at all.
CREATE TABLE IF NOT EXISTS idempotency_keys (
    caller_id       TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    operation       TEXT NOT NULL,
    request_hash    BYTEA NOT NULL,
    transaction_id  UUID,
    hold_id         UUID,
    -- the first response of operations whose result is not a transaction
    response        JSONB,
    created_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (caller_id, idempotency_key)
);

-- Points on hold (two-phase). A hold is not a posting: it only lowers the
-- account's available balance while it is active and unexpired. Its state
-- moves once, from active to captured or released.
CREATE TABLE IF NOT EXISTS holds (
    id                     UUID PRIMARY KEY,
    account_code           TEXT NOT NULL REFERENCES accounts (code),
    points                 BIGINT NOT NULL CHECK (points > 0),
    caller_id              TEXT NOT NULL,
    created_at             TIMESTAMPTZ NOT NULL,
    expires_at             TIMESTAMPTZ NOT NULL,
    status                 TEXT NOT NULL CHECK (status IN ('active', 'captured', 'released')),
    closed_at              TIMESTAMPTZ,
    -- Set when captured, in the capture's own transaction; the ledger's
    -- verification checks that it matches the capture's postings.
    capture_transaction_id UUID,
    captured_points        BIGINT,
    -- What the hold is for, in the caller's terms (e.g. a stay): at most
    -- one active hold per reference.
    reference              TEXT,
    metadata               JSONB NOT NULL,
    CHECK (expires_at > created_at)
);

CREATE INDEX IF NOT EXISTS holds_by_account ON holds (account_code, expires_at);

CREATE UNIQUE INDEX IF NOT EXISTS holds_active_by_reference ON holds (reference) WHERE status = 'active';

CREATE INDEX IF NOT EXISTS holds_by_reference ON holds (reference, created_at);

-- +goose Down
DROP TABLE IF EXISTS holds;
DROP TABLE IF EXISTS idempotency_keys;
