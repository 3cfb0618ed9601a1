-- Trust and safety: crisis signals raised on client messages, who is on duty for them, a client's data deleted on
-- request, and message texts erased after the retention period.

INSERT INTO app_config (key, value) VALUES
    ('hotline_numbers', '"119 ext 8 (SEJIWA), 112"'),
    ('retention_days', '365')
ON CONFLICT (key) DO NOTHING;

-- On-duty admins are pushed every crisis signal.
ALTER TABLE admins ADD COLUMN on_duty boolean NOT NULL DEFAULT true;

-- A deleted client keeps its row (sessions and the financial ledger point at it) but nothing that identifies them:
-- the name is "Deleted", phone and email are gone, and the Firebase user is unlinked.
ALTER TABLE clients
    ALTER COLUMN firebase_uid DROP NOT NULL,
    ADD COLUMN deleted_at timestamptz,
    ADD CONSTRAINT clients_deleted_is_anonymous
        CHECK (deleted_at IS NULL OR (firebase_uid IS NULL AND phone IS NULL AND email IS NULL));

-- When the retention sweep erased the session's message texts (or found none left to erase).
ALTER TABLE sessions ADD COLUMN texts_erased_at timestamptz;
CREATE INDEX sessions_awaiting_retention ON sessions (closed_at) WHERE status = 'closed' AND texts_erased_at IS NULL;

-- One flag per client message that matched the crisis list (so a redelivered check raises nothing twice); it is the
-- control center's alert `admin_alerts/{id}` until an admin acknowledges it. Only the category and the list entry
-- that matched are kept, never the message's words.
CREATE TABLE safety_flags (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    message_id        uuid NOT NULL UNIQUE REFERENCES chat_messages (id),
    session_id        uuid NOT NULL REFERENCES sessions (id),
    client_id         uuid NOT NULL REFERENCES clients (id),
    category          text NOT NULL CHECK (category IN ('suicidal_ideation', 'self_harm', 'acute_distress')),
    phrase            text NOT NULL,
    -- The hotline card this flag put in the session (the first flag of a session only).
    hotline_message_id uuid REFERENCES chat_messages (id),
    created_at        timestamptz NOT NULL DEFAULT now(),
    acknowledged_at   timestamptz,
    acknowledged_by   text,
    note              text,
    CHECK ((acknowledged_at IS NULL) = (acknowledged_by IS NULL))
);
CREATE INDEX safety_flags_by_created ON safety_flags (created_at DESC, id DESC);
CREATE INDEX safety_flags_open ON safety_flags (created_at DESC, id DESC) WHERE acknowledged_at IS NULL;
CREATE INDEX safety_flags_by_session ON safety_flags (session_id);
CREATE INDEX safety_flags_by_client ON safety_flags (client_id);
