-- Webhooks (package webhooks): endpoints that receive events as signed
-- HTTP POSTs, and one delivery row per event and endpoint.
--
-- A dispatcher fans new events out to deliveries: each endpoint has a
-- cursor (fanned_out, the last event position it has been given), moved
-- in the same transaction as the deliveries it creates, so no event is
-- skipped or given twice. Deliveries of one endpoint and one subject (a
-- member) are sent in position order: every pending delivery but the
-- earliest of its subject waits (blocked). A delivery that is done
-- (delivered or dead) is marked not yet released; the next fan-out of its
-- endpoint, which holds the endpoint's row, releases (unblocks) the
-- subject's next pending delivery and marks it released. Dispatchers lease
-- due deliveries (leased_by, lease_until; next_attempt_at moves to the
-- lease's end, so a lease that runs out makes the delivery due again).
--
-- The indexes whose second column only grows within an endpoint are
-- hash-sharded on CockroachDB (Go migration 24).
--
-- +goose NO TRANSACTION
-- +goose Up
CREATE TABLE IF NOT EXISTS webhook_endpoints (
    -- "wh_" and 16 hex digits.
    id                    TEXT PRIMARY KEY,
    url                   TEXT NOT NULL,
    -- Empty: every event type.
    event_types           TEXT[] NOT NULL,
    -- A partner's endpoint receives only the events at its hotels; NULL:
    -- the programme's, every event.
    partner_id            TEXT,
    description           TEXT NOT NULL,
    paused                BOOL NOT NULL,
    -- Signing secrets ("whsec_" and base64). They sign, so they are kept as
    -- they are, not hashed. During a rotation's overlap the previous one
    -- signs too, until previous_secret_until.
    secret                TEXT NOT NULL,
    previous_secret       TEXT,
    previous_secret_until TIMESTAMPTZ,
    secret_rotated_at     TIMESTAMPTZ,
    -- The last event position fanned out to this endpoint's deliveries.
    fanned_out            INT8 NOT NULL,
    created_at            TIMESTAMPTZ NOT NULL,
    created_by            TEXT NOT NULL,
    updated_at            TIMESTAMPTZ NOT NULL,
    -- A deleted endpoint receives nothing more; its rows go with the
    -- events they concern (events.Prune).
    deleted_at            TIMESTAMPTZ
);

CREATE TABLE IF NOT EXISTS webhook_deliveries (
    endpoint_id      TEXT NOT NULL REFERENCES webhook_endpoints (id),
    -- The event: its id is the webhook-id of every attempt.
    event_id         UUID NOT NULL,
    position         INT8 NOT NULL,
    event_type       TEXT NOT NULL,
    subject          TEXT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'dead')),
    -- Waits for an earlier pending delivery of the same endpoint and subject.
    blocked          BOOL NOT NULL,
    -- False while a delivery that is done has not yet let its subject's
    -- next delivery go.
    released         BOOL NOT NULL,
    -- Attempts started (counted when leased).
    attempts         INT4 NOT NULL,
    next_attempt_at  TIMESTAMPTZ NOT NULL,
    -- Retries stop (dead) three days after the first attempt.
    first_attempt_at TIMESTAMPTZ,
    last_attempt_at  TIMESTAMPTZ,
    -- The last attempt's HTTP status (0: no answer), error and latency.
    last_status_code INT4 NOT NULL,
    last_error       TEXT NOT NULL,
    last_latency_us  INT8 NOT NULL,
    delivered_at     TIMESTAMPTZ,
    created_at       TIMESTAMPTZ NOT NULL,
    leased_by        TEXT,
    lease_until      TIMESTAMPTZ,
    PRIMARY KEY (endpoint_id, event_id)
);

-- A subject's pending deliveries in order: which one is next.
CREATE INDEX IF NOT EXISTS webhook_deliveries_pending_by_subject
    ON webhook_deliveries (endpoint_id, subject, position) WHERE status = 'pending';

-- The done deliveries whose subjects' next deliveries are to be released.
CREATE INDEX IF NOT EXISTS webhook_deliveries_unreleased
    ON webhook_deliveries (endpoint_id) WHERE status <> 'pending' AND NOT released;

-- The dead letters, listed apart from the many delivered.
CREATE INDEX IF NOT EXISTS webhook_deliveries_dead
    ON webhook_deliveries (endpoint_id, position) WHERE status = 'dead';

-- +goose Down
DROP TABLE IF EXISTS webhook_deliveries;
DROP TABLE IF EXISTS webhook_endpoints;
