-- Who is signed out, and whose pushes may show a message's words.

-- Every revocation we make of a Firebase user's sign-ins (a client suspended or taken over, a mitra deactivated or
-- relinked, an admin's role revoked): ID tokens signed in before `tokens_valid_after` are refused by every function
-- (through the identity lookup every call makes, which an instance caches a few seconds) and by firestore.rules
-- (through the projection `revocations/{uid}`), without waiting for the token to expire. `blocked` keeps the uid out
-- of every Firestore document however it signs in again, until the account is reinstated. The row is also the lock
-- every change to one uid's revocation takes, so its document's versions follow the order of those changes.
CREATE TABLE sign_in_revocations (
    firebase_uid        text PRIMARY KEY,
    tokens_valid_after  timestamptz NOT NULL,
    blocked             boolean NOT NULL DEFAULT false,
    updated_at          timestamptz NOT NULL DEFAULT now()
);

-- A client may choose to see the beginning of a message in its pushes; by default a push only says one came (a lock
-- screen is public).
ALTER TABLE clients ADD COLUMN push_previews boolean NOT NULL DEFAULT false;
