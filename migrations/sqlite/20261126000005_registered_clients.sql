-- The registered-client cache: every client registered through searchgate (at the IdP, the
-- static pre-registered one, or the embedded server), never its secret. Times are Unix seconds.
CREATE TABLE clients (
    client_id                  TEXT    PRIMARY KEY,
    client_name                TEXT,
    redirect_uris              TEXT    NOT NULL,  -- JSON array
    grant_types                TEXT    NOT NULL,  -- JSON array
    token_endpoint_auth_method TEXT    NOT NULL,
    source                     TEXT    NOT NULL,  -- upstream | static | embedded
    created_at                 INTEGER NOT NULL,
    last_seen_at               INTEGER,
    denied_at                  INTEGER
);
