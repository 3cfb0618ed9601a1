-- Published outbox rows are purged after a week by the retention sweep (docs/privacy.md). Rows are appended in
-- created_at order, so a BRIN index finds the old ones at almost no cost to the inserts on the hot paths.
CREATE INDEX outbox_created_brin ON outbox USING brin (created_at);

-- An alert's acknowledgement note is erased from its audit row with the message's words
-- (shared/adapters/postgres/privacy.py `erase_copies_in`): those few rows are found by the alert's id.
CREATE INDEX audit_log_alert_acknowledgements ON audit_log (target) WHERE action = 'alert.acknowledge';
