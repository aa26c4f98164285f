-- Events out (package events). A business fact writes one row of
-- event_outbox in its own database transaction, so the event commits with
-- the fact or not at all. The sequencer, off the write path, moves rows
-- from the outbox to events in recording order, giving each a global
-- position (a consumer's cursor: gap-free, in the order positions became
-- visible) and a sequence number per subject (a member: a consumer orders
-- one member's events and sees a gap). Deliveries and streams read events.
--
-- The outbox's index on recording time is hash-sharded on CockroachDB
-- (Go migration 22): every write inserts at its end.
--
-- +goose NO TRANSACTION
-- +goose Up
CREATE TABLE IF NOT EXISTS event_outbox (
    id             UUID PRIMARY KEY,
    type           TEXT NOT NULL,
    -- A member number, "partner:<id>" or "programme".
    subject        TEXT NOT NULL,
    -- The fact's business time; recorded_at is when it was written.
    occurred_at    TIMESTAMPTZ NOT NULL,
    recorded_at    TIMESTAMPTZ NOT NULL,
    -- Orders rows of one recording time: the writing process's count of
    -- the rows it wrote (events.Row), so that a group of transactions
    -- written at one instant keeps its order.
    ordinal        INT8 NOT NULL,
    -- The partner whose hotel the fact concerns: a partner's endpoints
    -- receive only these.
    partner_id     TEXT,
    property_id    TEXT,
    transaction_id UUID,
    data           JSONB NOT NULL
);

CREATE TABLE IF NOT EXISTS events (
    position       INT8 PRIMARY KEY,
    id             UUID NOT NULL UNIQUE,
    type           TEXT NOT NULL,
    subject        TEXT NOT NULL,
    seq            INT8 NOT NULL,
    occurred_at    TIMESTAMPTZ NOT NULL,
    recorded_at    TIMESTAMPTZ NOT NULL,
    sequenced_at   TIMESTAMPTZ NOT NULL,
    partner_id     TEXT,
    property_id    TEXT,
    transaction_id UUID,
    data           JSONB NOT NULL,
    UNIQUE (subject, seq)
);

-- The last sequence number of each subject.
CREATE TABLE IF NOT EXISTS event_subjects (
    subject  TEXT PRIMARY KEY,
    last_seq INT8 NOT NULL
);

-- One row: the last position given, and the lease of the process that
-- sequences (one at a time, whichever loyaltyd holds it).
CREATE TABLE IF NOT EXISTS event_sequencer (
    id            INT4 PRIMARY KEY CHECK (id = 1),
    last_position INT8 NOT NULL,
    holder        TEXT,
    lease_until   TIMESTAMPTZ
);

INSERT INTO event_sequencer (id, last_position) VALUES (1, 0) ON CONFLICT (id) DO NOTHING;

-- +goose Down
DROP TABLE IF EXISTS event_sequencer;
DROP TABLE IF EXISTS event_subjects;
DROP TABLE IF EXISTS events;
DROP TABLE IF EXISTS event_outbox;
