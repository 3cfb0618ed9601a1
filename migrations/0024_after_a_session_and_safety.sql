-- After a session, and safety between people: a client's feedback on a closed session, a mitra's private notes,
-- reports of the other side (the control center's review queue) and blocks (a blocked pair is never matched again).
-- Every text here is personal data: erased with the client's data and by the retention of message texts
-- (shared/adapters/postgres/privacy.py `erase_safety_texts_in`), listed in docs/privacy.md.

-- One rating per closed session, by its client (`shared.domain.feedback`): editable for 24 hours after the first.
CREATE TABLE session_feedback (
    session_id  uuid PRIMARY KEY REFERENCES sessions (id),
    client_id   uuid NOT NULL REFERENCES clients (id),
    mitra_id    uuid NOT NULL REFERENCES mitras (id),
    rating      smallint NOT NULL CHECK (rating BETWEEN 1 AND 5),
    -- NULL when none was given, or once erased.
    comment     text CHECK (char_length(comment) <= 1000),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX session_feedback_by_mitra ON session_feedback (mitra_id, created_at DESC, session_id DESC);
CREATE INDEX session_feedback_by_created ON session_feedback (created_at DESC, session_id DESC);

-- A mitra's private notes on a session of theirs: read by that mitra, and by admins with a reason (audited).
CREATE TABLE mitra_notes (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    session_id  uuid NOT NULL REFERENCES sessions (id),
    mitra_id    uuid NOT NULL REFERENCES mitras (id),
    -- NULL once erased.
    text        text CHECK (char_length(text) BETWEEN 1 AND 4000),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX mitra_notes_by_session ON mitra_notes (session_id, mitra_id, created_at, id);

-- One side of a session reports the other: the control center's review queue (`admin_reports`).
CREATE TABLE reports (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    session_id       uuid NOT NULL REFERENCES sessions (id),
    reporter_role    text NOT NULL CHECK (reporter_role IN ('client', 'mitra')),
    client_id        uuid NOT NULL REFERENCES clients (id),
    mitra_id         uuid NOT NULL REFERENCES mitras (id),
    category         text NOT NULL CHECK (category IN ('harassment', 'abusive_language', 'inappropriate_content',
                                                       'spam_or_scam', 'crisis', 'self_harm_risk', 'other')),
    -- NULL once erased.
    text             text CHECK (char_length(text) <= 2000),
    status           text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'resolved', 'dismissed')),
    created_at       timestamptz NOT NULL DEFAULT now(),
    decided_at       timestamptz,
    decided_by       text,
    -- The deciding admin's note: NULL once erased.
    decision_note    text,
    CHECK ((status = 'open') = (decided_at IS NULL))
);
CREATE INDEX reports_by_created ON reports (created_at DESC, id DESC);
CREATE INDEX reports_open ON reports (created_at DESC, id DESC) WHERE status = 'open';
CREATE INDEX reports_by_session ON reports (session_id);

-- A client blocks a mitra, or a mitra a client: either way the pair is never matched again (the exclusion
-- NOT_BLOCKED in shared/adapters/postgres/pairing.py, and pairing_accept refuses with `blocked`). One block per
-- side and pair; unblocking deletes it.
CREATE TABLE blocks (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    client_id   uuid NOT NULL REFERENCES clients (id),
    mitra_id    uuid NOT NULL REFERENCES mitras (id),
    blocked_by  text NOT NULL CHECK (blocked_by IN ('client', 'mitra')),
    -- The session it was made from.
    session_id  uuid NOT NULL REFERENCES sessions (id),
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (client_id, mitra_id, blocked_by)
);
CREATE INDEX blocks_by_mitra ON blocks (mitra_id, client_id);

-- A client's own report of a crisis raises an alert in the control center as a crisis signal in a message does:
-- a flag of a report rather than of a message.
ALTER TABLE safety_flags ALTER COLUMN message_id DROP NOT NULL;
ALTER TABLE safety_flags ADD COLUMN report_id uuid UNIQUE REFERENCES reports (id);
ALTER TABLE safety_flags ADD CONSTRAINT safety_flags_of_a_message_or_a_report
    CHECK ((message_id IS NULL) <> (report_id IS NULL));
