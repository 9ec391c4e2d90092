-- One row per MCP request (and, later, per authentication failure, registration and admin
-- action). Identity columns stay NULL until authentication is configured.
CREATE TABLE audit_events (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    occurred_at_ms INTEGER NOT NULL,  -- milliseconds since the Unix epoch, UTC
    request_id     TEXT    NOT NULL,
    method         TEXT,              -- JSON-RPC method
    tool           TEXT,              -- tool name for tools/call
    outcome        TEXT    NOT NULL,  -- success | tool_error | protocol_error | rejected | unauthenticated | forbidden | failed
    http_status    INTEGER NOT NULL,
    error_code     TEXT,
    latency_us     INTEGER NOT NULL,
    subject        TEXT,
    client_id      TEXT,
    issuer         TEXT,
    source_addr    TEXT
);

CREATE INDEX audit_events_occurred_at ON audit_events (occurred_at_ms);
