-- Point lots: the points one transaction earned, which expire together.
-- They are kept in the balance row of the account they belong to (a
-- member's points), changed in the same UPDATE as the balance, and each
-- transaction records which lots it opened, drew or gave back.
--
-- +goose NO TRANSACTION
-- +goose Up
ALTER TABLE accounts ADD COLUMN IF NOT EXISTS tracks_lots BOOLEAN NOT NULL DEFAULT false;

-- The open lots, nearest expiry first: [{"lot", "expires_at", "open"}].
ALTER TABLE account_balances ADD COLUMN IF NOT EXISTS lots JSONB;

-- The earliest expiry among the lots. Not indexed on purpose: an index
-- would make every balance update that moves it a non-HOT update on
-- PostgreSQL. The expiry job scans the rows in key order instead.
ALTER TABLE account_balances ADD COLUMN IF NOT EXISTS next_lot_expiry TIMESTAMPTZ;

-- Which lots the transaction opened, drew or gave back.
ALTER TABLE transactions ADD COLUMN IF NOT EXISTS lots JSONB;

-- A job's running total besides its counts (the expiry job: points expired).
ALTER TABLE job_checkpoints ADD COLUMN IF NOT EXISTS amount BIGINT NOT NULL DEFAULT 0;

-- Members' points accounts track lots from now on.
UPDATE accounts SET tracks_lots = true WHERE code LIKE 'member:%:points' AND NOT tracks_lots;

-- Points members hold from before lots existed form one opening lot each
-- (the nil lot id), expiring 24 months from now, the shipped programme's
-- inactivity period.
UPDATE account_balances b
SET lots = jsonb_build_array(jsonb_build_object(
        'lot', '00000000-0000-0000-0000-000000000000',
        'expires_at', date_trunc('second', now() + INTERVAL '24 months'),
        'open', b.balance)),
    next_lot_expiry = date_trunc('second', now() + INTERVAL '24 months')
WHERE b.shard = 0 AND b.balance > 0 AND b.lots IS NULL
  AND b.account_code IN (SELECT code FROM accounts WHERE tracks_lots);

-- +goose Down
ALTER TABLE job_checkpoints DROP COLUMN IF EXISTS amount;
ALTER TABLE transactions DROP COLUMN IF EXISTS lots;
ALTER TABLE account_balances DROP COLUMN IF EXISTS next_lot_expiry;
ALTER TABLE account_balances DROP COLUMN IF EXISTS lots;
ALTER TABLE accounts DROP COLUMN IF EXISTS tracks_lots;
