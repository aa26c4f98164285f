-- Finance: per-day rollups of the journal, the book value of a point, and
-- the tamper-evident seals of closed days. All three are written off the
-- write path, by jobs (package finance); no ledger write waits for them.
--
-- +goose NO TRANSACTION
-- +goose Up

-- One row per (day, account, kind, partner, touches_member): the sum and
-- count of that day's postings. A day D holds the transactions
-- recorded in (D 00:00 UTC, D+1 00:00 UTC], the same "recorded_at <= as of"
-- basis as ledger.BalanceAt. Members are collapsed into one account code,
-- 'member:*' (the liability in aggregate). touches_member says whether the
-- posting's transaction moved a member's points: the roll-forward reads
-- only those. partner_id is '' when the transaction's metadata names none;
-- property_id is always '' here (see finance_daily_property_totals). Rows of a day are written once, in one transaction,
-- after the day has closed.
CREATE TABLE IF NOT EXISTS finance_daily_totals (
    day            DATE NOT NULL,
    account_code   TEXT NOT NULL,
    kind           TEXT NOT NULL,
    property_id    TEXT NOT NULL,
    partner_id     TEXT NOT NULL,
    touches_member BOOLEAN NOT NULL,
    points         BIGINT NOT NULL,
    postings       BIGINT NOT NULL,
    PRIMARY KEY (day, account_code, kind, property_id, partner_id, touches_member)
);

-- The same by property as well: what the roll-forward by property reads.
-- Kept apart because it has a thousand times the rows (one set per hotel),
-- which every other report would otherwise scan.
CREATE TABLE IF NOT EXISTS finance_daily_property_totals (
    day            DATE NOT NULL,
    account_code   TEXT NOT NULL,
    kind           TEXT NOT NULL,
    property_id    TEXT NOT NULL,
    partner_id     TEXT NOT NULL,
    touches_member BOOLEAN NOT NULL,
    points         BIGINT NOT NULL,
    postings       BIGINT NOT NULL,
    PRIMARY KEY (day, account_code, kind, property_id, partner_id, touches_member)
);

-- The same two grains summed by calendar month (month is its first day),
-- written when a month's last day is rolled up: a report over a year reads
-- twelve months of rows instead of 365 days of them.
CREATE TABLE IF NOT EXISTS finance_monthly_totals (
    month          DATE NOT NULL,
    account_code   TEXT NOT NULL,
    kind           TEXT NOT NULL,
    property_id    TEXT NOT NULL,
    partner_id     TEXT NOT NULL,
    touches_member BOOLEAN NOT NULL,
    points         BIGINT NOT NULL,
    postings       BIGINT NOT NULL,
    PRIMARY KEY (month, account_code, kind, property_id, partner_id, touches_member)
);

CREATE TABLE IF NOT EXISTS finance_monthly_property_totals (
    month          DATE NOT NULL,
    account_code   TEXT NOT NULL,
    kind           TEXT NOT NULL,
    property_id    TEXT NOT NULL,
    partner_id     TEXT NOT NULL,
    touches_member BOOLEAN NOT NULL,
    points         BIGINT NOT NULL,
    postings       BIGINT NOT NULL,
    PRIMARY KEY (month, account_code, kind, property_id, partner_id, touches_member)
);

-- The book value of one point, versioned by the UTC date it takes effect
-- on. Append-only: a version is never changed. Without any row the value
-- is 0.01 CNY from the beginning of time (package finance).
CREATE TABLE IF NOT EXISTS finance_point_values (
    effective_on    DATE PRIMARY KEY,
    value_per_point DECIMAL(20, 8) NOT NULL CHECK (value_per_point >= 0),
    currency        TEXT NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    created_by      TEXT NOT NULL
);

-- One seal per closed day, chained: seal = SHA-256(previous seal || day ||
-- content_hash || transaction count). See package finance for the
-- canonical encoding content_hash is computed over.
CREATE TABLE IF NOT EXISTS finance_seals (
    day          DATE PRIMARY KEY,
    transactions BIGINT NOT NULL,
    content_hash BYTEA NOT NULL,
    seal         BYTEA NOT NULL,
    sealed_at    TIMESTAMPTZ NOT NULL
);

-- +goose Down
DROP TABLE IF EXISTS finance_seals;
DROP TABLE IF EXISTS finance_point_values;
DROP TABLE IF EXISTS finance_monthly_property_totals;
DROP TABLE IF EXISTS finance_monthly_totals;
DROP TABLE IF EXISTS finance_daily_property_totals;
DROP TABLE IF EXISTS finance_daily_totals;
