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
