-- Held points never go below zero: a release of more than is held would be
-- a bug that makes points available twice, so the database refuses it.
--
-- A constraint of its own, not part of migration 16's column, so that
-- databases which ran migration 16 get it too. It runs in a transaction:
-- the constraint and goose's record of it commit together, so an
-- interrupted run leaves neither.
--
-- +goose Up
ALTER TABLE account_balances ADD CONSTRAINT held_points_not_negative CHECK (held_points >= 0);

-- +goose Down
ALTER TABLE account_balances DROP CONSTRAINT IF EXISTS held_points_not_negative;
