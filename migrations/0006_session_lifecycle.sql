-- The session's life after it starts: warning, expiry, goodbyes, closure, extensions.

ALTER TABLE sessions
    ADD COLUMN closing_at timestamptz,
    -- Goodbye notes are accepted until then; the session closes at that moment.
    ADD COLUMN goodbye_until timestamptz,
    ADD COLUMN warned_version integer;

INSERT INTO app_config (key, value) VALUES ('session_warning_s', '300') ON CONFLICT (key) DO NOTHING;

-- Who or what closed a session (or took it from a mitra), and why. A rerouted session keeps running: the row
-- records the end of that mitra's assignment.
CREATE TABLE session_closures (
    id           bigserial PRIMARY KEY,
    session_id   uuid NOT NULL REFERENCES sessions (id),
    mitra_id     uuid NOT NULL REFERENCES mitras (id),
    reason       text NOT NULL CHECK (reason IN ('expired', 'ended_by_client', 'ended_by_mitra', 'admin', 'rerouted')),
    closed_by    text NOT NULL,
    at           timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX session_closures_one_ending ON session_closures (session_id) WHERE reason <> 'rerouted';
CREATE INDEX session_closures_by_session ON session_closures (session_id);

-- One goodbye note per side.
CREATE UNIQUE INDEX chat_messages_one_goodbye ON chat_messages (session_id, sender_role) WHERE kind = 'goodbye';

CREATE TABLE session_extensions (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    session_id     uuid NOT NULL REFERENCES sessions (id),
    tier_id        text NOT NULL REFERENCES pricing_tiers (id),
    duration_s     integer NOT NULL CHECK (duration_s > 0),
    price          integer NOT NULL CHECK (price >= 0),
    status         text NOT NULL DEFAULT 'requested'
                   CHECK (status IN ('requested', 'accepted', 'rejected', 'expired', 'applied', 'void')),
    respond_by     timestamptz NOT NULL,
    requested_at   timestamptz NOT NULL DEFAULT now(),
    responded_at   timestamptz,
    applied_at     timestamptz
);
-- One pending extension per session at a time.
CREATE UNIQUE INDEX session_extensions_one_pending ON session_extensions (session_id)
    WHERE status IN ('requested', 'accepted');
