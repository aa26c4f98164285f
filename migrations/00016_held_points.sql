-- Points on hold, kept on the account's balance row (shard 0; holds are
-- only placed on single-row accounts). Every write that needs an account's
-- available points locks that row anyway; reading the held points from it
-- instead of summing the account's holds keeps writers from reading the
-- holds table, whose index pages PostgreSQL's serializable isolation
-- locks whole: concurrent holds of unrelated members then failed to
-- serialize, and a release could lose all its retries.
--
-- held_points is the sum of the account's holds in status 'active',
-- expired by time or not. holds_expire_from is never later than the
-- earliest expires_at among them (NULL when there are none): until it
-- passes, no active hold has expired, and the held points are
-- held_points with no look at the holds table.
--
-- Outside a transaction: each statement commits on its own, and each can
-- run again after a partial apply. The columns are added only when
-- missing, and the UPDATE sets absolute values from the holds, the same
-- however often it runs.
--
-- +goose NO TRANSACTION
-- +goose Up
ALTER TABLE account_balances ADD COLUMN IF NOT EXISTS held_points BIGINT NOT NULL DEFAULT 0;

ALTER TABLE account_balances ADD COLUMN IF NOT EXISTS holds_expire_from TIMESTAMPTZ;

UPDATE account_balances AS b
SET held_points = h.points, holds_expire_from = h.first_expiry
FROM (SELECT account_code, SUM(points)::INT8 AS points, MIN(expires_at) AS first_expiry
      FROM holds WHERE status = 'active' GROUP BY account_code) AS h
WHERE b.account_code = h.account_code AND b.shard = 0;

-- +goose Down
ALTER TABLE account_balances DROP COLUMN IF EXISTS holds_expire_from;
ALTER TABLE account_balances DROP COLUMN IF EXISTS held_points;
