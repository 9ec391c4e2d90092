//! The audit trail: one event per MCP request (later also per authentication failure,
//! registration and admin action), the `AuditLog` port that stores them, and the batched
//! writer that sits between the hot path and the store.

mod writer;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

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

    /// Events matching `query`, oldest first, one page at a time.
    ///
    /// # Errors
    /// [`AuditError::Unavailable`] when the store cannot be read or cannot be queried.
    async fn query(&self, query: &AuditQuery) -> Result<AuditPage, AuditError> {
        let _ = query;
        Err(AuditError::Unavailable(
            "this audit log cannot be queried".into(),
        ))
    }

    /// Counts of events per hour, tool and outcome between `since` and `until`.
    ///
    /// # Errors
    /// As [`AuditLog::query`].
    async fn stats(
        &self,
        since: SystemTime,
        until: SystemTime,
    ) -> Result<Vec<HourlyCount>, AuditError> {
        let _ = (since, until);
        Err(AuditError::Unavailable(
            "this audit log has no statistics".into(),
        ))
    }

    /// Deletes events older than `before`; returns how many.
    ///
    /// # Errors
    /// As [`AuditLog::query`].
    async fn prune(&self, before: SystemTime) -> Result<u64, AuditError> {
        let _ = before;
        Ok(0)
    }
}

/// 9999-12-31T23:59:59Z: the latest time accepted in filters, so neither time arithmetic nor
/// formatting can overflow.
const MAX_UNIX_SECONDS: u64 = 253_402_300_799;

/// A filter time: RFC 3339 (`2026-11-26T19:00:00Z`) or Unix seconds, from 1970 to year 9999;
/// `None` when it is neither.
pub fn parse_filter_time(value: &str) -> Option<SystemTime> {
    if let Ok(seconds) = value.parse::<u64>() {
        return (seconds <= MAX_UNIX_SECONDS).then(|| UNIX_EPOCH + Duration::from_secs(seconds));
    }
    chrono::DateTime::parse_from_rfc3339(value)
        .ok()
        .filter(|t| t.timestamp() >= 0 && t.timestamp() as u64 <= MAX_UNIX_SECONDS)
        .map(SystemTime::from)
}

/// Which events to return. Every filter is optional; `after` is the previous page's cursor.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// At or after this time.
    pub since: Option<SystemTime>,
    /// Before this time.
    pub until: Option<SystemTime>,
    /// The caller's subject.
    pub subject: Option<String>,
    /// The caller's client id.
    pub client_id: Option<String>,
    /// The tool called.
    pub tool: Option<String>,
    /// The outcome (`success`, `tool_error`, …).
    pub outcome: Option<String>,
    /// Only events stored after this cursor.
    pub after: Option<i64>,
    /// At most this many.
    pub limit: u32,
}

/// A stored event with its position.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    /// Its position in the log (increasing).
    pub id: i64,
    /// The event.
    pub event: AuditEvent,
}

/// One page of events.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditPage {
    /// Oldest first.
    pub events: Vec<StoredEvent>,
    /// Pass as `after` for the next page; `None` on the last.
    pub next: Option<i64>,
}

/// How many events one tool had with one outcome in one hour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HourlyCount {
    /// The hour's start.
    pub hour: SystemTime,
    /// The tool (`None` for requests that called none).
    pub tool: Option<String>,
    /// The outcome.
    pub outcome: String,
    /// How many.
    pub count: u64,
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
    /// The outcome stored as `text`.
    pub fn parse(text: &str) -> Option<Self> {
        [
            Self::Success,
            Self::ToolError,
            Self::ProtocolError,
            Self::Rejected,
            Self::Unauthenticated,
            Self::Forbidden,
            Self::Failed,
        ]
        .into_iter()
        .find(|o| o.as_str() == text)
    }

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
    /// What was searched for (a query, URLs), at most 200 characters; `None` when
    /// `audit.record_queries` is off.
    pub query_summary: Option<String>,
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
            query_summary: None,
        }
    }
}

#[cfg(test)]
mod filter_time_tests {
    use super::*;

    #[test]
    fn filter_times_are_rfc_3339_or_unix_seconds_within_year_9999() {
        let at = UNIX_EPOCH + Duration::from_secs(1_764_183_600);
        assert_eq!(parse_filter_time("1764183600"), Some(at));
        assert_eq!(parse_filter_time("2025-11-26T19:00:00Z"), Some(at));
        assert_eq!(parse_filter_time("2025-11-26T20:00:00+01:00"), Some(at));
        for bad in [
            "soon",
            "",
            "-5",
            "1969-12-31T23:59:59Z",
            "253402300800",
            "99999999999999",
        ] {
            assert_eq!(parse_filter_time(bad), None, "{bad}");
        }
    }
}
