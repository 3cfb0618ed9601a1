-- Clients, mitras and admins, each linked to a Firebase uid.

CREATE TABLE clients (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    firebase_uid    text NOT NULL UNIQUE,
    display_name    text NOT NULL,
    phone           text UNIQUE,
    email           text UNIQUE,
    anonymous       boolean NOT NULL DEFAULT false,
    -- "Bestie #4821": a stable alias mitras see when anonymity applies.
    alias_number    integer NOT NULL UNIQUE,
    suspended_at    timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE mitras (
    id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    firebase_uid       text UNIQUE,
    phone              text NOT NULL UNIQUE CHECK (phone ~ '^\+[1-9][0-9]{6,14}$'),
    display_name       text NOT NULL,
    active             boolean NOT NULL DEFAULT true,
    presence           text NOT NULL DEFAULT 'offline' CHECK (presence IN ('online', 'offline')),
    last_heartbeat_at  timestamptz,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE admins (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    firebase_uid  text NOT NULL UNIQUE,
    email         text NOT NULL UNIQUE,
    created_at    timestamptz NOT NULL DEFAULT now(),
    created_by    text
);
