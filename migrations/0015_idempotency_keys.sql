-- Every state-changing app call may carry an Idempotency-Key: the first answer to (caller, function, key) is kept
-- here with the hash of the request it answered, written in the same transaction as the change it reports, so a
-- retry gets that answer again and changes nothing, and the same key with another request is refused
-- (`idempotency_key_reused`). Only answers of calls that succeeded are kept; a refusal changed nothing, and its
-- retry is decided afresh. Kept for 24 hours (shared.domain.idempotency.KEY_LIFETIME), then swept.
CREATE TABLE idempotency_keys (
    caller_uid    text NOT NULL,
    function      text NOT NULL,
    key           text NOT NULL CHECK (length(key) BETWEEN 1 AND 200),
    request_hash  text NOT NULL,
    status        smallint NOT NULL CHECK (status BETWEEN 200 AND 299),
    body          jsonb NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (caller_uid, function, key)
);
CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_at);

-- pairing_request kept its key on the request row; the general store above now answers its retries. The old
-- unique index would refuse a key reused after its 24 hours, so the column is no longer written.
DROP INDEX pairing_requests_idempotency;
