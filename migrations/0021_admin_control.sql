-- The control center can act: the audit trail is append-only, admins' reads are counted rather than logged one row
-- per poll, and the unused time of a session an admin ended is credited back to its client.

-- The audit trail refuses UPDATE, DELETE and TRUNCATE, whoever asks. One change is allowed, the one erasure makes
-- (shared/adapters/postgres/privacy.py `erase_copies_in`): an alert acknowledgement's note leaves its row with the
-- words of the session it was about, and nothing else of that row changes.
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.action = 'alert.acknowledge'
       AND NEW.new_value IS NOT DISTINCT FROM OLD.new_value - 'note'
       AND (NEW.id, NEW.actor_uid, NEW.actor_role, NEW.action, NEW.target, NEW.old_value, NEW.at)
           IS NOT DISTINCT FROM
           (OLD.id, OLD.actor_uid, OLD.actor_role, OLD.action, OLD.target, OLD.old_value, OLD.at) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'audit_log is append-only';
END $$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();

-- An admin's reads (every GET of an admin function, functions/_http.py `_audit_read`): one row per admin, function
-- and hour (UTC), counting the reads and keeping the distinct questions asked (a page's cursor left out), up to
-- `shared.domain.admin.READ_QUERIES_KEPT` of them. Its upsert may only count up and add questions; its rows are never
-- deleted (`audit_reads_count_up`).
CREATE TABLE audit_reads (
    id          bigserial PRIMARY KEY,
    actor_uid   text NOT NULL,
    actor_role  text NOT NULL,
    function    text NOT NULL,
    hour        timestamptz NOT NULL,
    reads       integer NOT NULL DEFAULT 1 CHECK (reads > 0),
    queries     jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(queries) = 'array'),
    first_at    timestamptz NOT NULL DEFAULT now(),
    last_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (actor_uid, function, hour)
);
CREATE INDEX audit_reads_by_first ON audit_reads (first_at DESC, id DESC);

CREATE FUNCTION audit_reads_count_up() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE'
       AND (NEW.id, NEW.actor_uid, NEW.actor_role, NEW.function, NEW.hour, NEW.first_at)
           IS NOT DISTINCT FROM (OLD.id, OLD.actor_uid, OLD.actor_role, OLD.function, OLD.hour, OLD.first_at)
       AND NEW.reads > OLD.reads AND NEW.queries @> OLD.queries AND NEW.last_at >= OLD.last_at THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'audit_reads only counts up';
END $$;
CREATE TRIGGER audit_reads_count_up BEFORE UPDATE OR DELETE ON audit_reads
    FOR EACH ROW EXECUTE FUNCTION audit_reads_count_up();
CREATE TRIGGER audit_reads_no_truncate BEFORE TRUNCATE ON audit_reads
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();

-- The unused time of a session an admin ended early with `credit_unused` (`admin_session_end`): once per session,
-- at the price the client paid for the session's time (its credit and the extensions paid for it) pro rata. It is
-- the client's balance: `billing_checkout` spends it before Xendit (credit_back_uses). Append-only, as the ledger is.
CREATE TABLE session_credit_backs (
    session_id   uuid PRIMARY KEY REFERENCES sessions (id),
    client_id    uuid NOT NULL REFERENCES clients (id),
    unused_s     integer NOT NULL CHECK (unused_s > 0),
    amount       integer NOT NULL CHECK (amount >= 0),
    currency     text NOT NULL DEFAULT 'IDR' CHECK (currency = 'IDR'),
    created_by   text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX session_credit_backs_by_client ON session_credit_backs (client_id, created_at DESC);
CREATE TRIGGER session_credit_backs_append_only BEFORE UPDATE OR DELETE ON session_credit_backs
    FOR EACH ROW EXECUTE FUNCTION refuse_change();

-- What checkouts took from the credited-back balance, and what came back to it: a `use` when a checkout is paid
-- from the balance (all of the tier's price, or part of it and the rest through its Xendit invoice), a `return`
-- when that transaction expires unpaid or its credit is refunded. At most one of each per transaction. The
-- balance is sum(session_credit_backs) - sum(use) + sum(return) (shared/adapters/postgres/billing.py
-- `credit_back_balance`), read and spent under the client's row lock (`locked_client_uid`). Append-only.
CREATE TABLE credit_back_uses (
    id              bigserial PRIMARY KEY,
    transaction_id  uuid NOT NULL REFERENCES customer_transactions (id),
    client_id       uuid NOT NULL REFERENCES clients (id),
    kind            text NOT NULL CHECK (kind IN ('use', 'return')),
    amount          integer NOT NULL CHECK (amount > 0),
    currency        text NOT NULL DEFAULT 'IDR' CHECK (currency = 'IDR'),
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (transaction_id, kind)
);
CREATE INDEX credit_back_uses_by_client ON credit_back_uses (client_id);
CREATE TRIGGER credit_back_uses_append_only BEFORE UPDATE OR DELETE ON credit_back_uses
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER credit_back_uses_no_truncate BEFORE TRUNCATE ON credit_back_uses
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();

-- A transaction's `amount` is what Xendit charges: the tier's price less what the balance paid. A transaction the
-- balance paid whole has amount 0, is paid at once (method `credit_back`) and never has an invoice.
ALTER TABLE customer_transactions DROP CONSTRAINT customer_transactions_amount_check;
ALTER TABLE customer_transactions ADD CONSTRAINT customer_transactions_amount_check
    CHECK (amount > 0 OR (amount = 0 AND xendit_invoice_id IS NULL));
