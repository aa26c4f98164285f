-- The alliance's partners: their records, their rates versioned by
-- effective time, and the index of the ledger transactions at their hotels
-- that settlement and partner activity read.
--
-- +goose NO TRANSACTION
-- +goose Up

-- A partner hotel group. status is who may write: a suspended partner's
-- keys may read but not write; the last change says who, when and why.
CREATE TABLE IF NOT EXISTS partners (
    partner_id          TEXT PRIMARY KEY,
    name                TEXT NOT NULL,
    settlement_currency TEXT NOT NULL,
    status              TEXT NOT NULL CHECK (status IN ('active', 'suspended')),
    status_changed_at   TIMESTAMPTZ NOT NULL,
    status_changed_by   TEXT NOT NULL,
    status_reason       TEXT NOT NULL,
    created_at          TIMESTAMPTZ NOT NULL,
    created_by          TEXT NOT NULL
);

-- Append-only: a rate change is a new version from a later effective time;
-- the version in force at a transaction's effective time prices it. Rates
-- are money per point in the partner's settlement currency, exact decimals.
CREATE TABLE IF NOT EXISTS partner_rates (
    partner_id         TEXT NOT NULL REFERENCES partners (partner_id),
    version            INTEGER NOT NULL CHECK (version >= 1),
    effective_at       TIMESTAMPTZ NOT NULL,
    issue_rate         DECIMAL NOT NULL CHECK (issue_rate >= 0),
    reimbursement_rate DECIMAL NOT NULL CHECK (reimbursement_rate >= 0),
    rate_card          JSONB NOT NULL,
    created_at         TIMESTAMPTZ NOT NULL,
    created_by         TEXT NOT NULL,
    PRIMARY KEY (partner_id, version),
    UNIQUE (partner_id, effective_at)
);

-- One row per ledger transaction at a partner's hotel (award, redemption,
-- or a reversal of one), written in the transaction's own database
-- transaction. points_issued / points_redeemed are signed (a reversal's are
-- negative) and rate_version is the version that priced it (a reversal
-- keeps its original's), so a settlement is one grouped read. amount is
-- points x rate, exact. No foreign keys, on purpose: a check on partners
-- would lock the partner's row for every transaction at its hotels, a hot
-- row for a busy partner (see postings).
CREATE TABLE IF NOT EXISTS partner_transactions (
    transaction_id  UUID PRIMARY KEY,
    partner_id      TEXT NOT NULL,
    property_id     TEXT NOT NULL,
    kind            TEXT NOT NULL CHECK (kind IN ('award', 'redemption', 'reversal')),
    member_number   TEXT NOT NULL,
    stay_id         TEXT NOT NULL,
    rate_version    INTEGER NOT NULL,
    points_issued   BIGINT NOT NULL,
    points_redeemed BIGINT NOT NULL,
    amount          DECIMAL NOT NULL,
    reverses_id     UUID,
    effective_at    TIMESTAMPTZ NOT NULL,
    recorded_at     TIMESTAMPTZ NOT NULL
);

-- Its index by partner and time is migration 13 (migrations.go): it is
-- hash-sharded on CockroachDB.

-- +goose Down
DROP TABLE IF EXISTS partner_transactions;
DROP TABLE IF EXISTS partner_rates;
DROP TABLE IF EXISTS partners;
