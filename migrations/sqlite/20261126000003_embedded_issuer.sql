-- The embedded development authorization server: its signing keys, registered clients, and the
-- single-use credentials it issues. Codes, refresh tokens and client secrets are stored as
-- SHA-256 hex only. Times are seconds since the Unix epoch.
CREATE TABLE idp_keys (
    kid              TEXT    PRIMARY KEY,
    private_pem      TEXT    NOT NULL,
    created_at       INTEGER NOT NULL,
    rotated_at       INTEGER,
    tokens_expire_at INTEGER NOT NULL,
    retired_at       INTEGER
);

CREATE TABLE idp_clients (
    client_id                  TEXT    PRIMARY KEY,
    client_name                TEXT,
    redirect_uris              TEXT    NOT NULL,  -- JSON array
    grant_types                TEXT    NOT NULL,  -- JSON array
    token_endpoint_auth_method TEXT    NOT NULL,
    secret_hash                TEXT,
    created_at                 INTEGER NOT NULL
);

CREATE TABLE idp_codes (
    code_hash      TEXT    PRIMARY KEY,
    client_id      TEXT    NOT NULL,
    redirect_uri   TEXT    NOT NULL,
    code_challenge TEXT    NOT NULL,
    scope          TEXT    NOT NULL,
    resource       TEXT    NOT NULL,
    subject        TEXT    NOT NULL,
    expires_at     INTEGER NOT NULL,
    used_at        INTEGER
);

CREATE TABLE idp_refresh_tokens (
    token_hash TEXT    PRIMARY KEY,
    family     TEXT    NOT NULL,
    client_id  TEXT    NOT NULL,
    subject    TEXT    NOT NULL,
    scope      TEXT    NOT NULL,
    resource   TEXT    NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER,
    revoked_at INTEGER
);

CREATE INDEX idp_refresh_tokens_family ON idp_refresh_tokens (family);
CREATE INDEX idp_refresh_tokens_expires_at ON idp_refresh_tokens (expires_at);
