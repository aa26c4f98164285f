-- The service's own records next to the ledger: members' profiles and the
-- API keys callers authenticate with.
--
-- +goose NO TRANSACTION
-- +goose Up

-- Personal data is kept to what the ledger needs: a name and a contact for
-- statements. A member may correct it; every change is attributed in
-- member_changes.
CREATE TABLE IF NOT EXISTS members (
    member_number      TEXT PRIMARY KEY,
    full_name          TEXT NOT NULL,
    email              TEXT,
    phone              TEXT,
    tier               TEXT NOT NULL,
    enrolment_channel  TEXT NOT NULL,
    enrolment_property TEXT,
    enrolled_at        TIMESTAMPTZ NOT NULL,
    enrolled_by        TEXT NOT NULL,
    updated_at         TIMESTAMPTZ NOT NULL,
    updated_by         TEXT NOT NULL
);

-- Append-only: who changed which fields of a member, and when.
CREATE TABLE IF NOT EXISTS member_changes (
    id            UUID PRIMARY KEY,
    member_number TEXT NOT NULL REFERENCES members (member_number),
    changed_at    TIMESTAMPTZ NOT NULL,
    changed_by    TEXT NOT NULL,
    changes       JSONB NOT NULL
);

CREATE INDEX IF NOT EXISTS member_changes_by_member ON member_changes (member_number, changed_at);

-- Only a hash of each secret is kept: a secret is shown once, at creation.
CREATE TABLE IF NOT EXISTS api_keys (
    key_id      TEXT PRIMARY KEY,
    secret_hash BYTEA NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    role        TEXT NOT NULL CHECK (role IN ('booking_channel', 'partner', 'finance', 'admin')),
    partner_id  TEXT,
    created_at  TIMESTAMPTZ NOT NULL,
    created_by  TEXT NOT NULL,
    expires_at  TIMESTAMPTZ,
    revoked_at  TIMESTAMPTZ,
    revoked_by  TEXT,
    CHECK ((role = 'partner') = (partner_id IS NOT NULL))
);

-- +goose Down
DROP TABLE IF EXISTS api_keys;
DROP TABLE IF EXISTS member_changes;
DROP TABLE IF EXISTS members;
