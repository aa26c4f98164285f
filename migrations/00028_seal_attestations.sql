-- Attestations of days sealed with encoding 1 (finance/seal.go). Such a
-- seal hashed the metadata's text itself, so erasing a closed member's
-- personal data from it would break the seal. Before the erasure rewrites
-- a transaction of such a day, it checks that the day still matches its
-- encoding-1 seal and records here the day's content under encoding 2,
-- which survives the erasure. The seal itself is kept as it was.
--
-- +goose NO TRANSACTION
-- +goose Up
CREATE TABLE IF NOT EXISTS finance_seal_attestations (
    day          DATE PRIMARY KEY REFERENCES finance_seals (day),
    -- The encoding-1 seal the attestation vouches for: a seal rewritten
    -- since no longer has this attestation.
    seal         BYTEA NOT NULL,
    encoding     INT2 NOT NULL,
    transactions BIGINT NOT NULL,
    content_hash BYTEA NOT NULL,
    attested_at  TIMESTAMPTZ NOT NULL
);

-- +goose Down
DROP TABLE IF EXISTS finance_seal_attestations;
