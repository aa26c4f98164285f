-- Webhooks stream from a cursor (package webhooks). A dispatcher that
-- holds an endpoint's stream lease (stream_holder, stream_until) sends the
-- events after its cursor (fanned_out) straight from events, in messages
-- of up to batch_size events, and moves the cursor once per window of
-- events, writing the window's delivery log in the same transaction. Only
-- a failed attempt, and the events of its subject after it, become pending
-- deliveries that the dispatchers retry one by one. A paused endpoint's
-- queue is the events after its cursor: nothing is written for it.
--
-- batch_size 1 sends one event per request (a CloudEvent in JSON, the
-- Standard Webhooks way); more sends the CloudEvents JSON batch format.
--
-- One schema change per statement (CockroachDB).
--
-- +goose NO TRANSACTION
-- +goose Up
ALTER TABLE webhook_endpoints ADD COLUMN IF NOT EXISTS batch_size INT4 NOT NULL DEFAULT 1;
ALTER TABLE webhook_endpoints ADD COLUMN IF NOT EXISTS stream_holder TEXT;
ALTER TABLE webhook_endpoints ADD COLUMN IF NOT EXISTS stream_until TIMESTAMPTZ;

-- +goose Down
ALTER TABLE webhook_endpoints DROP COLUMN IF EXISTS stream_until;
ALTER TABLE webhook_endpoints DROP COLUMN IF EXISTS stream_holder;
ALTER TABLE webhook_endpoints DROP COLUMN IF EXISTS batch_size;
