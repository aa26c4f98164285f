-- The claim on each member's first stay (it earns the first-stay bonus).
-- The claim commits with the stay's transaction; a second stay's claim
-- fails on the primary key, inside the database, so the ledger can send
-- COMMIT in the same round trip as the claim. members.first_stay keeps the
-- answer for reading.
--
-- +goose NO TRANSACTION
-- +goose Up
CREATE TABLE IF NOT EXISTS first_stay_claims (
    member_number TEXT PRIMARY KEY,
    stay_ref      TEXT NOT NULL
);

-- +goose Down
DROP TABLE IF EXISTS first_stay_claims;
