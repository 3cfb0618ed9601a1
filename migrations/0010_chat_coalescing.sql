-- Fewer Firestore writes per message: typing is a lease, and receipts wait a moment to ride along with the
-- reader's next session-document write (see shared/services/chat.py).

-- The outbox row that will publish each side's receipts if nothing carries them sooner (NULL: none pending).
ALTER TABLE sessions
    ADD COLUMN client_receipts_outbox_id bigint,
    ADD COLUMN mitra_receipts_outbox_id bigint;

COMMENT ON COLUMN sessions.client_typing_at IS 'When the live typing lease was written to Firestore; NULL: cleared';
COMMENT ON COLUMN sessions.mitra_typing_at IS 'When the live typing lease was written to Firestore; NULL: cleared';
