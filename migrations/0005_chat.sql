-- Chat: messages with a per-session sequence, receipt watermarks and typing throttles on the session.

ALTER TABLE sessions
    ADD COLUMN next_seq bigint NOT NULL DEFAULT 0,
    ADD COLUMN client_delivered_seq bigint NOT NULL DEFAULT 0,
    ADD COLUMN client_read_seq bigint NOT NULL DEFAULT 0,
    ADD COLUMN mitra_delivered_seq bigint NOT NULL DEFAULT 0,
    ADD COLUMN mitra_read_seq bigint NOT NULL DEFAULT 0,
    -- When each side's typing flag was last written to Firestore: at most one write per 3 s per participant.
    ADD COLUMN client_typing_at timestamptz,
    ADD COLUMN mitra_typing_at timestamptz;

CREATE TABLE chat_messages (
    id                 uuid PRIMARY KEY,
    session_id         uuid NOT NULL REFERENCES sessions (id),
    seq                bigint NOT NULL CHECK (seq > 0),
    kind               text NOT NULL DEFAULT 'text' CHECK (kind IN ('text', 'system', 'goodbye')),
    sender_role        text NOT NULL CHECK (sender_role IN ('client', 'mitra', 'system')),
    sender_id          uuid,
    client_message_id  uuid,
    -- NULL once erased under the retention policy; the row (and its seq) stays.
    text               text,
    created_at         timestamptz NOT NULL DEFAULT now(),
    UNIQUE (session_id, seq),
    UNIQUE (session_id, client_message_id)
);
