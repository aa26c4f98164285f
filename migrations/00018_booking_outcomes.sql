-- The booking lifecycle's identity: a booking is (property_id, stay_id),
-- across every API, and has at most one final outcome (stayed, no-show,
-- cancelled) and at most one late check-out charge. The partial unique
-- index enforces it: an outcome's row commits with the outcome's ledger
-- transaction (or alone, when nothing is posted), and a second outcome of
-- the same booking fails on the index, inside the database, whatever its
-- idempotency key. A reversal of the outcome's transaction releases the
-- row (released_by), so that the booking can be recorded again.
--
-- +goose NO TRANSACTION
-- +goose Up
CREATE TABLE IF NOT EXISTS booking_outcomes (
    id              UUID PRIMARY KEY,
    property_id     TEXT NOT NULL,
    stay_id         TEXT NOT NULL,
    -- 'outcome' for the final outcome, 'late_checkout' for the charge.
    slot            TEXT NOT NULL CHECK (slot IN ('outcome', 'late_checkout')),
    outcome         TEXT NOT NULL CHECK (outcome IN ('stayed', 'no_show', 'cancelled_free', 'cancelled_charged', 'late_checkout')),
    member_number   TEXT NOT NULL,
    caller_id       TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    -- The outcome's ledger transaction; NULL when nothing was posted (a
    -- free cancellation, an exempt no-show, a stay that earned nothing).
    transaction_id  UUID,
    -- The outcome's business time (check-out, the no-show evening, the
    -- cancellation) and when it was recorded.
    effective_at    TIMESTAMPTZ NOT NULL,
    recorded_at     TIMESTAMPTZ NOT NULL,
    released_by     UUID,
    released_at     TIMESTAMPTZ
);

CREATE UNIQUE INDEX IF NOT EXISTS booking_outcomes_one_per_slot
    ON booking_outcomes (property_id, stay_id, slot) WHERE released_by IS NULL;

CREATE INDEX IF NOT EXISTS booking_outcomes_by_transaction
    ON booking_outcomes (transaction_id) WHERE transaction_id IS NOT NULL;

-- +goose Down
DROP TABLE IF EXISTS booking_outcomes;
