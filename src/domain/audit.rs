//! The audit trail: one event per MCP request (later also per authentication failure,
//! registration and admin action), the `AuditLog` port that stores them, and the batched
//! writer that sits between the hot path and the store.

mod writer;

use std::time::{Duration, SystemTime};

use async_trait::async_trait;

pub use writer::{AuditSink, AuditWriter, AuditWriterConfig, WriterReport};

/// Durable storage for audit events (SQLite by default; a library user may supply their own).
///
/// Contract:
/// - `append` MUST store all of `events` or none of them (one transaction) and MUST return
///   [`AuditError::Unavailable`] when the store cannot be written; the writer then retries the
///   same batch, so an `Err` must mean nothing was stored.
/// - `check` MUST return `Ok` only when a write would succeed now; `/readyz` reports it.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait AuditLog: Send + Sync + 'static {
    /// Stores a batch of events atomically.
    ///
    /// # Errors
    /// [`AuditError::Unavailable`] when the store cannot be written.
    async fn append(&self, events: &[AuditEvent]) -> Result<(), AuditError>;

    /// Checks that the store is reachable and writable.
    ///
    /// # Errors
    /// [`AuditError::Unavailable`] when it is not.
    async fn check(&self) -> Result<(), AuditError>;
}

/// Why the audit store could not be used.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The store cannot be reached or written; retrying later may succeed.
    #[error("the audit store is unavailable: {0}")]
    Unavailable(String),
    /// Anything else.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// How a request ended, from the caller's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Served as asked.
    Success,
    /// The tool ran and reported an error (`isError: true`): bad arguments or an upstream fault.
    ToolError,
    /// A JSON-RPC error: unknown method or tool, malformed parameters.
    ProtocolError,
    /// Turned away by the transport before dispatch (bad `Host`, oversized or malformed body, …).
    Rejected,
    /// No valid credentials (HTTP 401).
    Unauthenticated,
    /// Valid credentials without the rights asked for (HTTP 403).
    Forbidden,
    /// searchgate failed (HTTP 5xx).
    Failed,
}

impl Outcome {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::ToolError => "tool_error",
            Self::ProtocolError => "protocol_error",
            Self::Rejected => "rejected",
            Self::Unauthenticated => "unauthenticated",
            Self::Forbidden => "forbidden",
            Self::Failed => "failed",
        }
    }
}

/// What happened to one request: who/what/when/where/outcome (NIST SP 800-53 AU-3).
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEvent {
    /// When the request arrived.
    pub occurred_at: SystemTime,
    /// The request id also sent back in `x-request-id` and logged on every line.
    pub request_id: String,
    /// The JSON-RPC method, when the body could be read.
    pub method: Option<String>,
    /// The tool name for `tools/call`.
    pub tool: Option<String>,
    /// How it ended.
    pub outcome: Outcome,
    /// The HTTP status sent.
    pub http_status: u16,
    /// A machine-readable reason for anything but success (tool error code, JSON-RPC code, …).
    pub error_code: Option<String>,
    /// Time from arrival to response.
    pub latency: Duration,
    /// The token's subject, once authentication is in place.
    pub subject: Option<String>,
    /// The token's client id.
    pub client_id: Option<String>,
    /// The token's issuer.
    pub issuer: Option<String>,
    /// The first hex digits of the token's SHA-256 (never the token).
    pub token_hash_prefix: Option<String>,
    /// The peer address the request came from.
    pub source_addr: Option<String>,
    /// The search backend a tool used (`tavily`, `mock`), when it used one.
    pub provider: Option<String>,
    /// Whether the tool's answer came from the result cache (no upstream request).
    pub cache_hit: Option<bool>,
    /// How many upstream requests the tool made (retries included).
    pub upstream_attempts: Option<u32>,
    /// The backend's own id for the call, for support requests.
    pub upstream_request_id: Option<String>,
}

impl AuditEvent {
    /// An event for something other than an MCP request (a registration, an admin action):
    /// `method` names it, the outcome and status are filled in by the caller.
    pub fn action(request_id: String, method: &str, outcome: Outcome, http_status: u16) -> Self {
        Self {
            occurred_at: SystemTime::now(),
            request_id,
            method: Some(method.to_owned()),
            tool: None,
            outcome,
            http_status,
            error_code: None,
            latency: Duration::ZERO,
            subject: None,
            client_id: None,
            issuer: None,
            token_hash_prefix: None,
            source_addr: None,
            provider: None,
            cache_hit: None,
            upstream_attempts: None,
            upstream_request_id: None,
        }
    }
}
