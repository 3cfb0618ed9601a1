-- Configuration, prices, the audit trail and the outbox every later change writes through.

CREATE TABLE app_config (
    key         text PRIMARY KEY,
    value       jsonb NOT NULL,
    version     integer NOT NULL DEFAULT 1,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    updated_by  text
);

INSERT INTO app_config (key, value) VALUES
    ('free_trial_enabled', 'true'),
    ('free_trial_minutes', '15'),
    ('extension_timeout_s', '60'),
    ('early_end_client', 'true'),
    ('early_end_mitra', 'false'),
    ('max_concurrent_clients', '3'),
    ('pairing_search_window_s', '90'),
    ('heartbeat_grace_s', '90'),
    ('goodbye_window_s', '60'),
    ('anonymity_mode', '"alias"'),
    ('payment_expiry_s', '900');

CREATE TABLE pricing_tiers (
    id          text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9_-]{1,39}$'),
    duration_s  integer NOT NULL CHECK (duration_s > 0),
    price       integer NOT NULL CHECK (price >= 0),
    active      boolean NOT NULL DEFAULT true,
    sort_order  integer NOT NULL DEFAULT 0,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

INSERT INTO pricing_tiers (id, duration_s, price, sort_order) VALUES
    ('sesi-30', 1800, 35000, 1),
    ('sesi-60', 3600, 60000, 2),
    ('sesi-90', 5400, 85000, 3);

CREATE TABLE audit_log (
    id          bigserial PRIMARY KEY,
    actor_uid   text NOT NULL,
    actor_role  text NOT NULL,
    action      text NOT NULL,
    target      text,
    old_value   jsonb,
    new_value   jsonb,
    at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_log_at ON audit_log (at DESC);

-- Committed in the same transaction as the change it describes; the projector moves each row to Firestore or
-- Pub/Sub at least once and marks it published.
CREATE TABLE outbox (
    id            bigserial PRIMARY KEY,
    kind          text NOT NULL CHECK (kind IN ('firestore', 'pubsub')),
    destination   text NOT NULL,
    payload       jsonb NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    published_at  timestamptz,
    attempts      integer NOT NULL DEFAULT 0,
    last_error    text,
    next_attempt_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX outbox_pending ON outbox (id) WHERE published_at IS NULL;
