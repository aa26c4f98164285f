-- The outcomes recorded before bookings had an identity: each booking's
-- oldest unreversed stay (the chain's or a partner's award), no-show or
-- charged cancellation, and its oldest unreversed late check-out, so that
-- a booking recorded before this migration cannot be recorded again. Where
-- earlier double recordings exist, the first keeps the booking; the others
-- stay in the ledger, to be reversed by hand. Free cancellations and
-- exempt no-shows posted nothing and left nothing to find.
--
-- Data only, so it keeps its transaction with goose's record of it: with
-- no DDL in it, the transaction is atomic on CockroachDB too, and an
-- interrupted run leaves neither. Should it run again all the same (the
-- record lost, a schema taken down and up), the NOT EXISTS finds the rows
-- of the first run and adds nothing.
--
-- +goose Up
INSERT INTO booking_outcomes (id, property_id, stay_id, slot, outcome, member_number, caller_id, idempotency_key,
    transaction_id, effective_at, recorded_at)
SELECT DISTINCT ON (property_id, stay_id, slot)
    id, property_id, stay_id, slot, outcome, member_number, caller_id, idempotency_key, id, effective_at, recorded_at
FROM (
    SELECT t.id, t.metadata->>'property_id' AS property_id, t.metadata->>'stay_id' AS stay_id,
        CASE WHEN t.metadata->>'kind' = 'late_checkout' THEN 'late_checkout' ELSE 'outcome' END AS slot,
        CASE t.metadata->>'kind'
            WHEN 'stay' THEN 'stayed' WHEN 'partner_stay' THEN 'stayed'
            WHEN 'no_show' THEN 'no_show' WHEN 'cancellation' THEN 'cancelled_charged'
            ELSE 'late_checkout' END AS outcome,
        COALESCE(t.metadata->>'member_number', '') AS member_number, t.caller_id, t.idempotency_key,
        t.effective_at, t.recorded_at
    FROM transactions AS t
    WHERE t.metadata->>'kind' IN ('stay', 'partner_stay', 'no_show', 'cancellation', 'late_checkout')
        AND COALESCE(t.metadata->>'property_id', '') <> '' AND COALESCE(t.metadata->>'stay_id', '') <> ''
        AND NOT EXISTS (SELECT 1 FROM transactions AS r WHERE r.reverses_id = t.id)
) AS recorded
WHERE NOT EXISTS (SELECT 1 FROM booking_outcomes AS b
    WHERE b.property_id = recorded.property_id AND b.stay_id = recorded.stay_id AND b.slot = recorded.slot
        AND b.released_by IS NULL)
ORDER BY property_id, stay_id, slot, recorded_at, id;

-- +goose Down
SELECT 1;
