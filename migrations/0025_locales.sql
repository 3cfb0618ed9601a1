-- The language each person reads what the backend writes for them in (pushes, a session's system messages,
-- receipts): shared/domain/texts/<locale>.json. A client chooses in `client_profile`, a mitra at `mitra_login`;
-- Indonesian until they do. The column checks the form of a language tag only: which languages exist is the set of
-- text files (adding one is adding a file, not a migration), and a locale whose file is gone reads as the default.
ALTER TABLE clients ADD COLUMN locale text NOT NULL DEFAULT 'id' CHECK (locale ~ '^[a-z]{2,3}$');
ALTER TABLE mitras ADD COLUMN locale text NOT NULL DEFAULT 'id' CHECK (locale ~ '^[a-z]{2,3}$');
