-- The programme as versioned data, and the hotels it runs at.
--
-- +goose NO TRANSACTION
-- +goose Up

-- A version is never changed: a change is a new version with a later
-- effective time. Every transaction records the version that computed it.
CREATE TABLE IF NOT EXISTS programme_versions (
    version      INTEGER PRIMARY KEY CHECK (version >= 1),
    effective_at TIMESTAMPTZ NOT NULL UNIQUE,
    definition   JSONB NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    created_by   TEXT NOT NULL
);

-- Hotels. Every cut-off of the rules is evaluated in the property's own
-- time zone. owner is 'programme' for the chain's own hotels, or the id of
-- the alliance partner that runs it.
CREATE TABLE IF NOT EXISTS properties (
    property_id TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    time_zone   TEXT NOT NULL,
    owner       TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL,
    updated_by  TEXT NOT NULL
);

-- The stay that was the member's first (it earns the first-stay bonus);
-- claimed once.
ALTER TABLE members ADD COLUMN IF NOT EXISTS first_stay TEXT;

-- +goose Down
ALTER TABLE members DROP COLUMN IF EXISTS first_stay;
DROP TABLE IF EXISTS properties;
DROP TABLE IF EXISTS programme_versions;
