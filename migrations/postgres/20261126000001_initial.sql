-- searchgate's schema on PostgreSQL: the same tables as the SQLite migrations, in one step
-- (PostgreSQL support starts at this schema). Times are Unix seconds unless named `_ms`;
-- codes, refresh tokens and client secrets are stored as SHA-256 hex only.

-- One row per MCP request, authentication failure, registration and admin action.
CREATE TABLE audit_events (
    id                  BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    occurred_at_ms      BIGINT  NOT NULL,  -- milliseconds since the Unix epoch, UTC
    request_id          TEXT    NOT NULL,
    method              TEXT,              -- JSON-RPC method, or the action (oauth/register, admin/…)
    tool                TEXT,              -- tool name for tools/call
    outcome             TEXT    NOT NULL,  -- success | tool_error | protocol_error | rejected | unauthenticated | forbidden | failed
    http_status         BIGINT  NOT NULL,
    error_code          TEXT,
    latency_us          BIGINT  NOT NULL,
    subject             TEXT,
    client_id           TEXT,
    issuer              TEXT,
    token_hash_prefix   TEXT,              -- first hex digits of the token's SHA-256, never the token
    source_addr         TEXT,
    provider            TEXT,              -- search backend, for tool calls that reached it
    cache_hit           BOOLEAN,
    upstream_attempts   BIGINT,
    upstream_request_id TEXT,
    query_summary       TEXT               -- at most 200 characters; NULL when audit.record_queries is off
);

CREATE INDEX audit_events_occurred_at ON audit_events (occurred_at_ms);
CREATE INDEX audit_events_subject ON audit_events (subject, id);
CREATE INDEX audit_events_client_id ON audit_events (client_id, id);
CREATE INDEX audit_events_tool ON audit_events (tool, id);

-- The registered-client cache: every client registered through searchgate, never its secret.
CREATE TABLE clients (
    client_id                  TEXT   PRIMARY KEY,
    client_name                TEXT,
    redirect_uris              TEXT   NOT NULL,  -- JSON array
    grant_types                TEXT   NOT NULL,  -- JSON array
    token_endpoint_auth_method TEXT   NOT NULL,
    source                     TEXT   NOT NULL,  -- upstream | static | embedded
    created_at                 BIGINT NOT NULL,
    last_seen_at               BIGINT,
    denied_at                  BIGINT
);

CREATE INDEX clients_created_at ON clients (created_at, client_id);

-- The embedded development authorization server: signing keys (in the order they were made),
-- registered clients, and the single-use credentials it issues.
CREATE TABLE idp_keys (
    seq              BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
    kid              TEXT   PRIMARY KEY,
    private_pem      TEXT   NOT NULL,
    created_at       BIGINT NOT NULL,
    rotated_at       BIGINT,
    tokens_expire_at BIGINT NOT NULL,
    retired_at       BIGINT
);

CREATE TABLE idp_clients (
    client_id                  TEXT   PRIMARY KEY,
    client_name                TEXT,
    redirect_uris              TEXT   NOT NULL,  -- JSON array
    grant_types                TEXT   NOT NULL,  -- JSON array
    token_endpoint_auth_method TEXT   NOT NULL,
    secret_hash                TEXT,
    created_at                 BIGINT NOT NULL
);

CREATE TABLE idp_codes (
    code_hash      TEXT   PRIMARY KEY,
    client_id      TEXT   NOT NULL,
    redirect_uri   TEXT   NOT NULL,
    code_challenge TEXT   NOT NULL,
    scope          TEXT   NOT NULL,
    resource       TEXT   NOT NULL,
    subject        TEXT   NOT NULL,
    expires_at     BIGINT NOT NULL,
    used_at        BIGINT
);

CREATE INDEX idp_codes_expires_at ON idp_codes (expires_at);

CREATE TABLE idp_refresh_tokens (
    token_hash TEXT   PRIMARY KEY,
    family     TEXT   NOT NULL,
    client_id  TEXT   NOT NULL,
    subject    TEXT   NOT NULL,
    scope      TEXT   NOT NULL,
    resource   TEXT   NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT,
    revoked_at BIGINT
);

CREATE INDEX idp_refresh_tokens_family ON idp_refresh_tokens (family);
CREATE INDEX idp_refresh_tokens_expires_at ON idp_refresh_tokens (expires_at);
