-- A closed account takes no more postings or holds (ledger.PostRequest
-- CloseAccounts, ledger.CloseAccount): a member's closure settles the
-- balance to zero and closes the account in one transaction, under the
-- balance row's lock, so that a write already in flight is either settled
-- with it or refused after it.
--
-- +goose NO TRANSACTION
-- +goose Up
ALTER TABLE account_balances ADD COLUMN IF NOT EXISTS closed BOOL NOT NULL DEFAULT false;

-- +goose Down
ALTER TABLE account_balances DROP COLUMN IF EXISTS closed;
