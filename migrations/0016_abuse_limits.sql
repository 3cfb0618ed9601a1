-- Abuse limits: checkouts per client per hour, free-trial searches the client cancelled per day, and the free
-- trial bound to the verified phone number and email that used it as well as to the account.
INSERT INTO app_config (key, value) VALUES
    ('checkouts_per_hour', '10'),
    ('free_trial_cancels_per_day', '3')
ON CONFLICT (key) DO NOTHING;

-- The phone numbers and emails (as HMAC-SHA-256 under a secret key of 'phone:' or 'email:' and the value, never the
-- value itself) whose account has used its free trial. A new account on the same verified phone or email (after a
-- deletion, or a takeover's old number) finds it here; a deletion erases the account's phone and email, not these
-- rows. The key is a runtime secret (HALO_IDENTITY_HASH_KEY), so trials taken before this migration are bound to
-- their accounts only.
CREATE EXTENSION IF NOT EXISTS pgcrypto;
CREATE TABLE free_trial_identities (
    identity_hash  text PRIMARY KEY,
    used_at        timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX pairing_requests_free_trial_cancels ON pairing_requests (client_id, ended_at)
    WHERE kind = 'free_trial' AND status = 'cancelled';

-- The mitra's answer to an extension request, kept whatever the extension became afterwards (paid, applied, or
-- voided by the session's end), so a repeat of that answer is told what the first was told.
ALTER TABLE session_extensions ADD COLUMN answer text CHECK (answer IN ('accept', 'reject'));
