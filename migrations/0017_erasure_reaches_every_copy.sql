-- Erasure reaches every copy of what a client said (docs/privacy.md).
--
-- The crisis-list entry a client's message matched is a piece of that message: it is erased with the message's
-- text (a client's deletion, or retention), as is the admin's note on the alert, which may quote or describe it.
-- The flag itself (category, session, when, who acknowledged it) stays: it is the record that a signal was raised
-- and answered.
ALTER TABLE safety_flags ALTER COLUMN phrase DROP NOT NULL;
COMMENT ON COLUMN safety_flags.phrase IS 'The crisis-list entry matched; NULL once the message''s text is erased';
COMMENT ON COLUMN safety_flags.note IS 'The acknowledging admin''s note; NULL once the message''s text is erased';

-- Outbox rows keep no words once published: a message document's `text` and a push's `body` are removed by the
-- statement that marks the row published (shared/adapters/postgres/outbox.py); published rows are purged by the
-- retention sweep after 7 days, and at once when the client they concern is deleted.
COMMENT ON COLUMN outbox.payload IS 'The event; once published, without any document text or push body';
