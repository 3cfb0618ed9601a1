-- Published outbox rows are purged after a week by the retention sweep (docs/privacy.md). Rows are appended in
-- created_at order, so a BRIN index finds the old ones at almost no cost to the inserts on the hot paths.
CREATE INDEX outbox_created_brin ON outbox USING brin (created_at);
