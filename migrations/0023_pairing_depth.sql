-- Pairing that never leaves a client waiting for nothing (issue 24): a mitra's own maximum of concurrent clients,
-- a request's preferred mitra ("same mitra again") and how long it is offered to them alone, the settings, and the
-- index the estimated wait reads recent matches through.

-- NULL: the global setting `max_concurrent_clients` (shared.domain.pairing.capacity_of).
ALTER TABLE mitras ADD COLUMN max_concurrent_clients integer
    CHECK (max_concurrent_clients BETWEEN 1 AND 20);

-- The mitra the client asked for again; offered the request alone until preferred_until (NULL: offered to everyone
-- from the start, shared.domain.pairing.preference).
ALTER TABLE pairing_requests
    ADD COLUMN preferred_mitra_id uuid REFERENCES mitras (id),
    ADD COLUMN preferred_until timestamptz;

INSERT INTO app_config (key, value) VALUES
    ('wait_when_nobody_online', 'true'),
    ('preferred_mitra_first_s', '60')
ON CONFLICT (key) DO NOTHING;

-- The estimated wait (PairingRepository.recent_waits) reads the latest matches.
CREATE INDEX pairing_requests_recent_matches ON pairing_requests (ended_at) WHERE status = 'matched';
