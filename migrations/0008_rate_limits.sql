-- How fast a client may open requests and a participant may send messages.

INSERT INTO app_config (key, value) VALUES
    ('pairing_requests_per_hour', '20'),
    ('messages_per_minute', '60')
ON CONFLICT (key) DO NOTHING;

CREATE INDEX pairing_requests_by_client ON pairing_requests (client_id, created_at);
CREATE INDEX chat_messages_by_sender ON chat_messages (session_id, sender_id, created_at);
