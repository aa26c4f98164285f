-- Closing a membership (issue 23): when, and the checkpoint of the steps a
-- closure takes (release the holds, settle the balance, erase the personal
-- data), so that a closure interrupted half-way resumes where it stopped.
-- The seals say which canonical encoding they used (finance/seal.go):
-- those written before are encoding 1.
--
-- +goose NO TRANSACTION
-- +goose Up
ALTER TABLE members ADD COLUMN IF NOT EXISTS closed_at TIMESTAMPTZ;

CREATE TABLE IF NOT EXISTS member_closures (
    member_number      TEXT PRIMARY KEY REFERENCES members (member_number),
    closed_at          TIMESTAMPTZ NOT NULL,
    closed_by          TEXT NOT NULL,
    -- Kept in the member's history too; callers are told to put no
    -- personal data in it.
    reason             TEXT NOT NULL,
    released_points    BIGINT NOT NULL DEFAULT 0,
    -- Set with the transaction that forfeited the balance or wrote off
    -- the debt, in that transaction.
    forfeited_points   BIGINT NOT NULL DEFAULT 0,
    written_off_points BIGINT NOT NULL DEFAULT 0,
    transaction_id     UUID,
    -- When the balance was settled and the personal data erased: NULL
    -- while a step is still to do.
    settled_at         TIMESTAMPTZ,
    erased_at          TIMESTAMPTZ
);

ALTER TABLE finance_seals ADD COLUMN IF NOT EXISTS encoding INT2 NOT NULL DEFAULT 1;

-- +goose Down
ALTER TABLE finance_seals DROP COLUMN IF EXISTS encoding;
DROP TABLE IF EXISTS member_closures;
ALTER TABLE members DROP COLUMN IF EXISTS closed_at;
