-- Xendit may answer a refund PENDING and settle it later with a refund callback (`refund.succeeded` or
-- `refund.failed`), so a credit stays `refunding` until the money is confirmed back, and an admin may try again
-- after a refund failed.

-- Each attempt at giving one credit's money back: `requested` while Xendit is asked (or its answer was lost),
-- `pending` once Xendit accepted it, then `succeeded` (the money is back), `failed` (Xendit accepted it and could not
-- pay it out) or `refused` (Xendit refused it outright, so no refund exists). The reference is Xendit's reference_id
-- and idempotency key: asking again within one attempt never refunds twice, and a new attempt needs a new one.
CREATE TABLE credit_refunds (
    transaction_id    uuid NOT NULL REFERENCES session_credits (transaction_id),
    attempt           integer NOT NULL CHECK (attempt > 0),
    reference_id      text NOT NULL UNIQUE,
    status            text NOT NULL DEFAULT 'requested'
                      CHECK (status IN ('requested', 'pending', 'succeeded', 'failed', 'refused')),
    xendit_refund_id  text UNIQUE,
    failure_code      text,
    -- The admin's words and uid, for the ledger row of the refund whenever Xendit confirms it.
    reason            text NOT NULL,
    requested_by      text NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (transaction_id, attempt),
    CHECK ((status IN ('requested', 'refused')) = (xendit_refund_id IS NULL))
);
-- One attempt at a time per credit, and the money goes back at most once.
CREATE UNIQUE INDEX credit_refunds_one_open ON credit_refunds (transaction_id)
    WHERE status IN ('requested', 'pending');
CREATE UNIQUE INDEX credit_refunds_one_succeeded ON credit_refunds (transaction_id) WHERE status = 'succeeded';

-- As for transactions: what was asked never changes, the status only moves forward out of an open state, and the
-- refund Xendit named is kept.
CREATE FUNCTION credit_refunds_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (NEW.transaction_id, NEW.attempt, NEW.reference_id, NEW.reason, NEW.requested_by)
       IS DISTINCT FROM (OLD.transaction_id, OLD.attempt, OLD.reference_id, OLD.reason, OLD.requested_by) THEN
        RAISE EXCEPTION 'credit_refunds %/%: what was asked cannot change', OLD.transaction_id, OLD.attempt;
    END IF;
    IF NEW.status IS DISTINCT FROM OLD.status
       AND (OLD.status NOT IN ('requested', 'pending') OR NEW.status = 'requested') THEN
        RAISE EXCEPTION 'credit_refunds %/%: % cannot become %', OLD.transaction_id, OLD.attempt, OLD.status,
            NEW.status;
    END IF;
    IF OLD.xendit_refund_id IS NOT NULL AND NEW.xendit_refund_id IS DISTINCT FROM OLD.xendit_refund_id THEN
        RAISE EXCEPTION 'credit_refunds %/%: the refund cannot change', OLD.transaction_id, OLD.attempt;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER credit_refunds_guard BEFORE UPDATE ON credit_refunds
    FOR EACH ROW EXECUTE FUNCTION credit_refunds_guard();
CREATE TRIGGER credit_refunds_keep BEFORE DELETE ON credit_refunds FOR EACH ROW EXECUTE FUNCTION refuse_delete();

-- Refunds made before this migration were confirmed by Xendit's first answer, with the reference
-- `refund-<transaction id>`: they are attempt 1, succeeded, so a late callback about one is still matched. The ledger
-- row always carried the reason and the admin; the fallbacks only keep a row written otherwise from blocking this.
INSERT INTO credit_refunds (transaction_id, attempt, reference_id, status, xendit_refund_id, reason, requested_by,
                            created_at, updated_at)
SELECT transaction_id, 1, 'refund-' || transaction_id, 'succeeded', external_ref,
       coalesce(note, 'refunded before refund callbacks'), coalesce(created_by, 'unknown'), created_at, created_at
FROM ledger_entries WHERE kind = 'refund';

-- `refund_failed`: a refund Xendit accepted and then could not pay out. It moves no money back; it keeps in the
-- append-only record that the credit, held while the refund was pending, became the client's again.
ALTER TABLE ledger_entries DROP CONSTRAINT ledger_entries_kind_check;
ALTER TABLE ledger_entries ADD CONSTRAINT ledger_entries_kind_check
    CHECK (kind IN ('payment_received', 'credit_reserved', 'credit_released', 'credit_consumed', 'refund',
                    'refund_failed'));

-- Refund callbacks are recorded with invoice callbacks. `external_id` holds the id we gave Xendit for either: the
-- transaction id of an invoice, the reference_id of a refund.
ALTER TABLE payment_events
    ADD COLUMN kind text NOT NULL DEFAULT 'invoice' CHECK (kind IN ('invoice', 'refund')),
    ADD COLUMN xendit_refund_id text,
    ADD CHECK (kind = 'invoice' OR xendit_refund_id IS NOT NULL);
-- A transaction is paid or expired once, and each refund settles once; one transaction may see both, and several
-- refunds when earlier attempts failed.
DROP INDEX payment_events_one_applied;
CREATE UNIQUE INDEX payment_events_one_applied ON payment_events (transaction_id)
    WHERE outcome = 'applied' AND kind = 'invoice';
CREATE UNIQUE INDEX payment_events_one_applied_refund ON payment_events (xendit_refund_id)
    WHERE outcome = 'applied' AND kind = 'refund';
