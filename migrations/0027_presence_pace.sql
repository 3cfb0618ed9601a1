-- Presence paced to the number of online mitras (shared.domain.presence.pace): each heartbeat's reply tells the app
-- when to beat next (`next_heartbeat_s`), longer as more mitras are online, so the fleet's heartbeats stay within
-- `heartbeats_per_s_max` (app_config) whatever the population. A mitra counts as heard from until `heard_until`:
-- the lease its own last heartbeat (or going online) gave it, so a mitra told a long interval is never swept early
-- when the pace shortens. The pace is worked out in each heartbeat's statement from the settings as they are and the
-- number of mitras online that the sweep (`presence_sweep`, every minute) left, kept in `presence_pace`'s one row.
ALTER TABLE mitras ADD COLUMN heard_until timestamptz;

UPDATE mitras m SET heard_until = m.last_heartbeat_at + make_interval(secs => (c.value #>> '{}')::int)
FROM app_config c
WHERE c.key = 'heartbeat_grace_s' AND m.last_heartbeat_at IS NOT NULL;

-- Who is heard from (offers, the control center, the sweep) is read by the lease now.
DROP INDEX mitras_online;
CREATE INDEX mitras_heard ON mitras (heard_until) WHERE presence = 'online';

CREATE TABLE presence_pace (
    one         boolean PRIMARY KEY DEFAULT true CHECK (one),
    online      integer NOT NULL CHECK (online >= 0),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO presence_pace (online) SELECT count(*) FROM mitras WHERE presence = 'online';

INSERT INTO app_config (key, value) VALUES ('heartbeats_per_s_max', '30') ON CONFLICT (key) DO NOTHING;
