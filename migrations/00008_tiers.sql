-- Tiers: the qualifying activity they are computed from, and their history.
--
-- +goose NO TRANSACTION
-- +goose Up

-- One row per recorded stay, written with the stay's transaction, and one
-- per reversal of a stay, with the stay's figures negated: a member's
-- qualifying activity in a window is a sum. Redemptions, penalties,
-- goodwill and promotions never appear here.
CREATE TABLE IF NOT EXISTS qualifying_stays (
    id             UUID PRIMARY KEY,
    member_number  TEXT NOT NULL,
    stay_ref       TEXT NOT NULL,
    completed_at   TIMESTAMPTZ NOT NULL,
    nights         INTEGER NOT NULL,
    points         BIGINT NOT NULL
);

CREATE INDEX IF NOT EXISTS qualifying_stays_by_member ON qualifying_stays (member_number, completed_at);

-- Every tier change, with the activity behind it. Append-only.
CREATE TABLE IF NOT EXISTS tier_changes (
    id            UUID PRIMARY KEY,
    member_number TEXT NOT NULL,
    from_tier     TEXT NOT NULL,
    to_tier       TEXT NOT NULL,
    reason        TEXT NOT NULL,
    effective_at  TIMESTAMPTZ NOT NULL,
    nights        INTEGER NOT NULL,
    points        BIGINT NOT NULL,
    changed_by    TEXT NOT NULL
);

CREATE INDEX IF NOT EXISTS tier_changes_by_member ON tier_changes (member_number, effective_at);

ALTER TABLE members ADD COLUMN IF NOT EXISTS tier_since TIMESTAMPTZ;

-- +goose Down
ALTER TABLE members DROP COLUMN IF EXISTS tier_since;
DROP TABLE IF EXISTS tier_changes;
DROP TABLE IF EXISTS qualifying_stays;
