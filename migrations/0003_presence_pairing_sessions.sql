-- Presence, pairing ("Mulai Curhat"), the sessions it creates, devices for push, and the free trial.

-- The issue settles the default search window at 60 s.
UPDATE app_config SET value = '60' WHERE key = 'pairing_search_window_s' AND value = '90';

CREATE TABLE mitra_status_logs (
    id          bigserial PRIMARY KEY,
    mitra_id    uuid NOT NULL REFERENCES mitras (id),
    from_status text NOT NULL,
    to_status   text NOT NULL,
    reason      text NOT NULL,
    at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX mitra_status_logs_by_mitra ON mitra_status_logs (mitra_id, at);
CREATE INDEX mitras_online ON mitras (last_heartbeat_at) WHERE presence = 'online';

CREATE TABLE pairing_requests (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    client_id        uuid NOT NULL REFERENCES clients (id),
    status           text NOT NULL CHECK (status IN ('searching', 'matched', 'no_mitra', 'cancelled')),
    kind             text NOT NULL CHECK (kind IN ('paid', 'free_trial')),
    tier_id          text REFERENCES pricing_tiers (id),
    duration_s       integer NOT NULL CHECK (duration_s > 0),
    idempotency_key  text,
    search_deadline  timestamptz NOT NULL,
    mitra_id         uuid REFERENCES mitras (id),
    created_at       timestamptz NOT NULL DEFAULT now(),
    ended_at         timestamptz,
    CHECK ((kind = 'paid') = (tier_id IS NOT NULL))
);
-- At most one open request per client, enforced by the database.
CREATE UNIQUE INDEX pairing_requests_one_open ON pairing_requests (client_id) WHERE status = 'searching';
CREATE UNIQUE INDEX pairing_requests_idempotency ON pairing_requests (client_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX pairing_requests_searching ON pairing_requests (created_at) WHERE status = 'searching';
CREATE INDEX pairing_requests_by_day ON pairing_requests (created_at);

CREATE TABLE pairing_offers (
    request_id    uuid NOT NULL REFERENCES pairing_requests (id),
    mitra_id      uuid NOT NULL REFERENCES mitras (id),
    status        text NOT NULL DEFAULT 'offered'
                  CHECK (status IN ('offered', 'accepted', 'declined', 'withdrawn')),
    offered_at    timestamptz NOT NULL DEFAULT now(),
    responded_at  timestamptz,
    PRIMARY KEY (request_id, mitra_id)
);
CREATE INDEX pairing_offers_open_by_mitra ON pairing_offers (mitra_id) WHERE status = 'offered';

CREATE TABLE sessions (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    request_id   uuid NOT NULL UNIQUE REFERENCES pairing_requests (id),
    client_id    uuid NOT NULL REFERENCES clients (id),
    mitra_id     uuid NOT NULL REFERENCES mitras (id),
    kind         text NOT NULL CHECK (kind IN ('paid', 'free_trial')),
    status       text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'closing', 'closed')),
    started_at   timestamptz NOT NULL DEFAULT now(),
    ends_at      timestamptz NOT NULL,
    -- Bumped by every change of the timer; task names carry it so stale tasks know they are stale.
    version      integer NOT NULL DEFAULT 1,
    closed_at    timestamptz
);
CREATE INDEX sessions_open_by_mitra ON sessions (mitra_id) WHERE status IN ('active', 'closing');
CREATE INDEX sessions_by_client ON sessions (client_id, started_at DESC);
CREATE INDEX sessions_by_mitra ON sessions (mitra_id, started_at DESC);
CREATE INDEX sessions_by_start ON sessions (started_at);
CREATE INDEX sessions_open ON sessions (status) WHERE status IN ('active', 'closing');

-- Once per client, ever: the primary key is the rule. Written only when a session actually starts.
CREATE TABLE free_trials (
    client_id   uuid PRIMARY KEY REFERENCES clients (id),
    session_id  uuid NOT NULL UNIQUE REFERENCES sessions (id),
    used_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE devices (
    token          text PRIMARY KEY,
    firebase_uid   text NOT NULL,
    platform       text NOT NULL CHECK (platform IN ('android', 'ios', 'web')),
    registered_at  timestamptz NOT NULL DEFAULT now(),
    last_seen_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX devices_by_uid ON devices (firebase_uid);

-- One row per (notification, recipient) sent: a redelivered notify message pushes nothing twice.
CREATE TABLE push_log (
    dedup_key     text NOT NULL,
    firebase_uid  text NOT NULL,
    sent_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (dedup_key, firebase_uid)
);
