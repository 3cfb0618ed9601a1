-- Billing: what a client pays for through Xendit, every callback Xendit sends, the session credits a payment
-- becomes, and an append-only ledger of every money movement.

-- One checkout: pending until Xendit reports it paid or it expires; exactly one of the two, once.
CREATE TABLE customer_transactions (
    id                 uuid PRIMARY KEY,
    client_id          uuid NOT NULL REFERENCES clients (id),
    purpose            text NOT NULL CHECK (purpose IN ('session', 'extension')),
    tier_id            text NOT NULL REFERENCES pricing_tiers (id),
    -- What was bought, fixed at checkout: a later change of the tier's price or length does not touch this order.
    duration_s         integer NOT NULL CHECK (duration_s > 0),
    amount             integer NOT NULL CHECK (amount > 0),
    currency           text NOT NULL DEFAULT 'IDR' CHECK (currency = 'IDR'),
    status             text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'paid', 'expired')),
    -- No foreign key yet: session_extensions arrives with the extension flow.
    extension_id       uuid,
    idempotency_key    text,
    xendit_invoice_id  text UNIQUE,
    invoice_url        text,
    expires_at         timestamptz NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    paid_at            timestamptz,
    paid_amount        integer,
    payment_method     text,
    payment_channel    text,
    expired_at         timestamptz,
    CHECK ((purpose = 'extension') = (extension_id IS NOT NULL)),
    CHECK ((xendit_invoice_id IS NULL) = (invoice_url IS NULL)),
    CHECK ((status = 'paid') = (paid_at IS NOT NULL)),
    CHECK ((status = 'expired') = (expired_at IS NOT NULL)),
    CHECK (status <> 'paid' OR paid_amount = amount)
);
CREATE UNIQUE INDEX customer_transactions_idempotency ON customer_transactions (client_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX customer_transactions_by_client ON customer_transactions (client_id, created_at DESC);
CREATE INDEX customer_transactions_pending ON customer_transactions (expires_at) WHERE status = 'pending';

-- The statements already guard their moves (`WHERE status = 'pending'`); this makes a wrong statement fail loudly
-- instead of quietly rewriting money: what was ordered never changes, and the status moves once, forward.
CREATE FUNCTION customer_transactions_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (NEW.client_id, NEW.purpose, NEW.tier_id, NEW.duration_s, NEW.amount, NEW.currency, NEW.extension_id)
       IS DISTINCT FROM
       (OLD.client_id, OLD.purpose, OLD.tier_id, OLD.duration_s, OLD.amount, OLD.currency, OLD.extension_id) THEN
        RAISE EXCEPTION 'customer_transactions %: what was ordered cannot change', OLD.id;
    END IF;
    IF NEW.status IS DISTINCT FROM OLD.status AND OLD.status <> 'pending' THEN
        RAISE EXCEPTION 'customer_transactions %: % is final', OLD.id, OLD.status;
    END IF;
    IF OLD.xendit_invoice_id IS NOT NULL AND NEW.xendit_invoice_id IS DISTINCT FROM OLD.xendit_invoice_id THEN
        RAISE EXCEPTION 'customer_transactions %: the invoice cannot change', OLD.id;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER customer_transactions_guard BEFORE UPDATE ON customer_transactions
    FOR EACH ROW EXECUTE FUNCTION customer_transactions_guard();
CREATE FUNCTION refuse_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% rows are never deleted', TG_TABLE_NAME;
END $$;
CREATE TRIGGER customer_transactions_keep BEFORE DELETE ON customer_transactions
    FOR EACH ROW EXECUTE FUNCTION refuse_delete();

-- A paid `session` transaction is one credit for its tier (so is a paid extension that could no longer be applied).
-- It is reserved by a pairing request, goes back to `available` when that request ends without a session, and is
-- consumed when its session starts; or an admin refunds it (`refunding` while Xendit is asked, so no request can
-- take it meanwhile).
CREATE TABLE session_credits (
    transaction_id  uuid PRIMARY KEY REFERENCES customer_transactions (id),
    client_id       uuid NOT NULL REFERENCES clients (id),
    tier_id         text NOT NULL REFERENCES pricing_tiers (id),
    duration_s      integer NOT NULL CHECK (duration_s > 0),
    status          text NOT NULL DEFAULT 'available'
                    CHECK (status IN ('available', 'reserved', 'consumed', 'refunding', 'refunded')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX session_credits_available ON session_credits (client_id, tier_id, created_at) WHERE status = 'available';

-- The request that holds (or used) a credit. At most one live request per credit, whatever the code does.
ALTER TABLE pairing_requests ADD COLUMN transaction_id uuid REFERENCES customer_transactions (id);
ALTER TABLE pairing_requests ADD CHECK ((kind = 'paid') = (transaction_id IS NOT NULL));
CREATE UNIQUE INDEX pairing_requests_one_live_per_credit ON pairing_requests (transaction_id)
    WHERE status IN ('searching', 'matched');

-- Every money movement is a row, never an update in place. `amount` is the value moved (always positive); `kind`
-- says which way: payment_received and refund move money between the client and us, the credit_* rows move a
-- paid credit between the client's balance, a pairing request and a session.
CREATE TABLE ledger_entries (
    id              bigserial PRIMARY KEY,
    transaction_id  uuid NOT NULL REFERENCES customer_transactions (id),
    client_id       uuid NOT NULL REFERENCES clients (id),
    kind            text NOT NULL CHECK (kind IN ('payment_received', 'credit_reserved', 'credit_released',
                                                  'credit_consumed', 'refund')),
    amount          integer NOT NULL CHECK (amount > 0),
    currency        text NOT NULL DEFAULT 'IDR' CHECK (currency = 'IDR'),
    -- Deferred: a credit is reserved in the same transaction that then inserts the request holding it.
    request_id      uuid REFERENCES pairing_requests (id) DEFERRABLE INITIALLY DEFERRED,
    -- Xendit's invoice id (payments) or refund id (refunds).
    external_ref    text,
    note            text,
    created_by      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CHECK ((kind LIKE 'credit_%') = (request_id IS NOT NULL))
);
CREATE INDEX ledger_entries_by_transaction ON ledger_entries (transaction_id, id);
CREATE INDEX ledger_entries_by_client ON ledger_entries (client_id, id);
-- Money comes in once and goes back at most once per transaction; a credit is consumed at most once.
CREATE UNIQUE INDEX ledger_one_payment ON ledger_entries (transaction_id) WHERE kind = 'payment_received';
CREATE UNIQUE INDEX ledger_one_refund ON ledger_entries (transaction_id) WHERE kind = 'refund';
CREATE UNIQUE INDEX ledger_one_consumption ON ledger_entries (transaction_id) WHERE kind = 'credit_consumed';

CREATE FUNCTION refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
END $$;
CREATE TRIGGER ledger_entries_append_only BEFORE UPDATE OR DELETE ON ledger_entries
    FOR EACH ROW EXECUTE FUNCTION refuse_change();

-- Every callback Xendit delivers (replays included), with what it did: `applied` (moved a transaction),
-- `duplicate` (it had already happened), `quarantined` (money we cannot match as ordered: an admin reviews it),
-- `ignored` (nothing to do, and no money at stake).
CREATE TABLE payment_events (
    id                 bigserial PRIMARY KEY,
    received_at        timestamptz NOT NULL DEFAULT now(),
    webhook_id         text,
    xendit_invoice_id  text,
    external_id        text,
    transaction_id     uuid REFERENCES customer_transactions (id),
    provider_status    text,
    amount             numeric,
    paid_amount        numeric,
    currency           text,
    outcome            text NOT NULL CHECK (outcome IN ('applied', 'duplicate', 'quarantined', 'ignored')),
    reason             text,
    payload            jsonb NOT NULL,
    reviewed_at        timestamptz,
    reviewed_by        text,
    CHECK ((outcome IN ('quarantined', 'ignored')) = (reason IS NOT NULL)),
    CHECK (outcome <> 'applied' OR transaction_id IS NOT NULL)
);
-- A transaction moves once, so at most one callback can have moved it.
CREATE UNIQUE INDEX payment_events_one_applied ON payment_events (transaction_id) WHERE outcome = 'applied';
CREATE INDEX payment_events_by_transaction ON payment_events (transaction_id, id);
CREATE INDEX payment_events_to_review ON payment_events (received_at) WHERE outcome = 'quarantined' AND reviewed_at IS NULL;
CREATE TRIGGER payment_events_keep BEFORE DELETE ON payment_events FOR EACH ROW EXECUTE FUNCTION refuse_delete();
