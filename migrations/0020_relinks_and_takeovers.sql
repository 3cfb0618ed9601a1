-- A phone number is not a key to someone's past.

-- A mitra's phone signing in from another Firebase user than the one linked (a new account, a number the carrier gave
-- to someone else) does not take the mitra's profile (and every past transcript) over: it asks, and an admin approves
-- or refuses in the control center (`admin_mitra_relinks`). One pending request per mitra and sign-in; a refusal is
-- final for that sign-in.
CREATE TABLE mitra_relinks (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    mitra_id      uuid NOT NULL REFERENCES mitras (id),
    -- The sign-in asking to become the mitra's, and the one linked when it asked.
    firebase_uid  text NOT NULL,
    previous_uid  text,
    status        text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'approved', 'refused')),
    requested_at  timestamptz NOT NULL DEFAULT now(),
    decided_at    timestamptz,
    decided_by    text,
    note          text,
    CHECK ((status = 'pending') = (decided_at IS NULL))
);
CREATE UNIQUE INDEX mitra_relinks_one_pending ON mitra_relinks (mitra_id, firebase_uid) WHERE status = 'pending';
CREATE INDEX mitra_relinks_by_sign_in ON mitra_relinks (firebase_uid, mitra_id, requested_at DESC);
CREATE INDEX mitra_relinks_by_requested ON mitra_relinks (requested_at DESC, id DESC);

-- A client's profile taken over by another sign-in with the same phone number or email (`client_register` with
-- force) keeps its credits and its free-trial record, but the conversations from before the takeover are not the new
-- login's: `clients.history_from` hides the sessions started before it from the client's reads, until the previous
-- login confirms with another of its sign-in methods (`client_history_confirm`).
ALTER TABLE clients ADD COLUMN history_from timestamptz;

CREATE TABLE client_takeovers (
    id                   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    client_id            uuid NOT NULL REFERENCES clients (id),
    from_uid             text NOT NULL,
    to_uid               text NOT NULL,
    -- How the new login proved the phone number or email.
    sign_in_provider     text NOT NULL,
    -- clients.history_from before this takeover: what a confirmation gives back.
    history_from_before  timestamptz,
    taken_at             timestamptz NOT NULL DEFAULT now(),
    confirmed_at         timestamptz,
    -- The previous login's sign-in method that confirmed.
    confirmed_with       text,
    CHECK ((confirmed_at IS NULL) = (confirmed_with IS NULL))
);
CREATE INDEX client_takeovers_by_client ON client_takeovers (client_id, taken_at DESC);
CREATE INDEX client_takeovers_by_from_uid ON client_takeovers (from_uid);
