-- The control center: indexes for the dashboard's "today" figures and for finding clients by name, phone or email.

-- Revenue today: the paid transactions of one day, by the moment they were paid.
CREATE INDEX customer_transactions_paid ON customer_transactions (paid_at) WHERE status = 'paid';

-- The clients list, newest first, keyset-paginated on (created_at, id).
CREATE INDEX clients_by_created ON clients (created_at DESC, id DESC);

-- Search by any part of a name, phone number or email (`ILIKE '%…%'`): trigram indexes serve it.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX clients_search ON clients USING gin (display_name gin_trgm_ops, phone gin_trgm_ops, email gin_trgm_ops);
