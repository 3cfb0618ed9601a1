-- Reports (`admin_statistics`, `admin_mitra_statement`): the setting of the mitra's share, and the indexes the
-- reports read through so they stay fast at 100,000 sessions (bench/admin_dashboard.py times them).

INSERT INTO app_config (key, value) VALUES ('mitra_share_percent', '70') ON CONFLICT (key) DO NOTHING;

-- Refunds by the day the money went back.
CREATE INDEX ledger_entries_refunds ON ledger_entries (created_at) WHERE kind = 'refund';
-- A mitra's sessions closed in a month (the statement).
CREATE INDEX sessions_closed_by_mitra ON sessions (mitra_id, closed_at) WHERE status = 'closed';
-- A session's extensions that were applied (the statement's paid minutes and extension payments).
CREATE INDEX session_extensions_applied ON session_extensions (session_id) WHERE status = 'applied';
-- An extension's payment, from the extension (the statement) and back.
CREATE INDEX customer_transactions_by_extension ON customer_transactions (extension_id) WHERE extension_id IS NOT NULL;
-- The session a payment or refund belongs to, through the request that used the credit: a matched request's
-- credit is found by pairing_requests_one_live_per_credit; every request of the range by pairing_requests_by_day.
