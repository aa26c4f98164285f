-- Tier reviews: the manual tier an admin may set, and the progress of the
-- review job, so that a crashed run resumes where it stopped.
--
-- +goose NO TRANSACTION
-- +goose Up
ALTER TABLE members ADD COLUMN IF NOT EXISTS manual_tier TEXT;

ALTER TABLE members ADD COLUMN IF NOT EXISTS manual_until TIMESTAMPTZ;

ALTER TABLE members ADD COLUMN IF NOT EXISTS manual_reason TEXT;

-- When the member was last reviewed: the next review is the first
-- anniversary of the last tier change after it.
ALTER TABLE members ADD COLUMN IF NOT EXISTS reviewed_at TIMESTAMPTZ;

CREATE TABLE IF NOT EXISTS job_checkpoints (
    job        TEXT PRIMARY KEY,
    cursor     TEXT NOT NULL,
    done       BOOLEAN NOT NULL,
    processed  BIGINT NOT NULL,
    changed    BIGINT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

-- +goose Down
DROP TABLE IF EXISTS job_checkpoints;
ALTER TABLE members DROP COLUMN IF EXISTS reviewed_at;
ALTER TABLE members DROP COLUMN IF EXISTS manual_reason;
ALTER TABLE members DROP COLUMN IF EXISTS manual_until;
ALTER TABLE members DROP COLUMN IF EXISTS manual_tier;
