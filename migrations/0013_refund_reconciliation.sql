-- A refund whose callback never reached us is settled by asking Xendit where it stands (refund_sweep, or an admin
-- asking again). `checked_at` is when the sweep last asked: a refund some channel takes days to settle is asked
-- again only after a while, so it never keeps the refunds behind it out of a run's bounded batch.
ALTER TABLE credit_refunds ADD COLUMN checked_at timestamptz;
-- The sweep's question, answered from the few pending refunds only.
CREATE INDEX credit_refunds_pending ON credit_refunds ((coalesce(checked_at, updated_at))) WHERE status = 'pending';
