//! The audit trail: one event per MCP request, authentication failure, registration and admin
//! action, the `AuditLog` port that stores them, and the batched writer that sits between the
//! hot path and the store.

mod bounded;
mod writer;

use std::{fmt, str::FromStr, time::Duration};

use async_trait::async_trait;

pub use bounded::{BoundedEvent, CUT_MARK, IDENTITY_CHARS, NAME_CHARS, SUMMARY_CHARS, bound};
pub use writer::{
    AuditSink, AuditSlot, AuditWriter, AuditWriterConfig, QueueFull, WriterHealth, WriterReport,
    WriterStats,
};

use crate::domain::time::Timestamp;

/// Durable storage for audit events (SQLite by default; a library user may supply their own).
///
/// Contract:
/// - `append` MUST store all of `events` or none of them (one transaction); an `Err` must mean
///   nothing was stored.
/// - It MUST return [`AuditError::Refused`] when the store refuses the rows themselves (a
///   constraint or a value it cannot hold): the same rows would fail again, so the writer
///   splits the batch, stores the good rows and sets the bad one aside.
/// - It MUST return [`AuditError::Unavailable`] when the store cannot be written now (no
///   connection, a timeout, a read-only server): the writer retries the same rows later.
/// - `check` MUST return `Ok` only when a write would succeed now; `/readyz` reports it.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait AuditLog: Send + Sync + 'static {
    /// Stores a batch of events atomically.
    ///
    /// # Errors
    /// [`AuditError::Refused`] when the rows themselves are refused, [`AuditError::Unavailable`]
    /// when the store cannot be written.
    async fn append(&self, events: &[BoundedEvent]) -> Result<(), AuditError>;

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
        since: Timestamp,
        until: Timestamp,
    ) -> Result<Vec<HourlyCount>, AuditError> {
        let _ = (since, until);
        Err(AuditError::Unavailable(
            "this audit log has no statistics".into(),
        ))
    }

    /// Tool calls, errors and cost per `group` between `since` and `until`, most calls first.
    ///
    /// # Errors
    /// As [`AuditLog::query`].
    async fn usage(
        &self,
        since: Timestamp,
        until: Timestamp,
        group: UsageGroup,
    ) -> Result<Vec<UsageRow>, AuditError> {
        let _ = (since, until, group);
        Err(AuditError::Unavailable(
            "this audit log has no usage figures".into(),
        ))
    }

    /// Deletes events older than `before`; returns how many.
    ///
    /// # Errors
    /// As [`AuditLog::query`].
    async fn prune(&self, before: Timestamp) -> Result<u64, AuditError> {
        let _ = before;
        Ok(0)
    }
}

/// 9999-12-31T23:59:59Z: the latest time accepted in filters, so neither time arithmetic nor
/// formatting can overflow.
const MAX_UNIX_SECONDS: i64 = 253_402_300_799;

/// A filter time: RFC 3339 (`2026-11-26T19:00:00Z`) or Unix seconds, from 1970 to year 9999;
/// `None` when it is neither. Finer than a millisecond is dropped, as the store drops it.
pub fn parse_filter_time(value: &str) -> Option<Timestamp> {
    if let Ok(seconds) = value.parse::<u64>() {
        return i64::try_from(seconds)
            .ok()
            .filter(|&seconds| seconds <= MAX_UNIX_SECONDS)
            .map(Timestamp::from_unix_seconds);
    }
    chrono::DateTime::parse_from_rfc3339(value)
        .ok()
        .filter(|t| (0..=MAX_UNIX_SECONDS).contains(&t.timestamp()))
        .map(|t| Timestamp::from_unix_millis(t.timestamp_millis()))
}

/// Which events to return. Every filter is optional; `after` is the previous page's cursor.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// At or after this time.
    pub since: Option<Timestamp>,
    /// Before this time.
    pub until: Option<Timestamp>,
    /// The caller's subject.
    pub subject: Option<String>,
    /// The caller's client id.
    pub client_id: Option<String>,
    /// The tool called.
    pub tool: Option<String>,
    /// How the request ended.
    pub outcome: Option<Outcome>,
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
    pub hour: Timestamp,
    /// The tool (`None` for requests that called none).
    pub tool: Option<String>,
    /// The outcome.
    pub outcome: String,
    /// How many.
    pub count: u64,
}

/// What usage figures are grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsageGroup {
    /// The token's subject.
    Subject,
    /// The token's client.
    Client,
    /// The search backend that answered.
    Provider,
    /// The tool.
    Tool,
}

impl UsageGroup {
    /// Every grouping, as callers spell it.
    pub const NAMES: [&'static str; 4] = ["subject", "client", "provider", "tool"];

    /// The grouping called `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "subject" => Self::Subject,
            "client" => Self::Client,
            "provider" => Self::Provider,
            "tool" => Self::Tool,
            _ => return None,
        })
    }

    /// Its name, as callers spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Subject => "subject",
            Self::Client => "client",
            Self::Provider => "provider",
            Self::Tool => "tool",
        }
    }
}

/// The tool calls of one group in a window.
#[derive(Debug, Clone, PartialEq)]
pub struct UsageRow {
    /// The subject, client, backend or tool (`None`: calls without one, such as refused or
    /// anonymous calls).
    pub group: Option<String>,
    /// Tool calls.
    pub calls: u64,
    /// Those that did not succeed.
    pub errors: u64,
    /// Backend credits spent, as reported.
    pub credits: f64,
    /// US dollars spent, as reported.
    pub cost_usd: f64,
}

/// Why the audit store could not be used.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The store cannot be reached or written; retrying later may succeed.
    #[error("the audit store is unavailable: {0}")]
    Unavailable(Unavailable),
    /// The store refused the rows themselves (a constraint, a value it cannot hold); writing
    /// the same rows again fails again. Shown with its whole chain.
    #[error("the audit store refused the events: {0:#}")]
    Refused(anyhow::Error),
    /// Anything else.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// What an unavailable store was doing when it failed, with the driver's error kept underneath
/// (reachable with [`Unavailable::cause`] for a caller that needs to tell failures apart).
/// Shown as the whole chain, `cannot store 3 audit events: database is locked`, because the
/// writer's retry log and `/readyz` show nothing else. A store without a driver error
/// underneath makes one from its message: `AuditError::Unavailable("disk full".into())`.
#[derive(Debug)]
pub struct Unavailable(anyhow::Error);

impl Unavailable {
    /// `error`, which happened while `doing` (`"cannot store 3 audit events"`).
    pub fn new(
        doing: impl fmt::Display + Send + Sync + 'static,
        error: impl Into<anyhow::Error>,
    ) -> Self {
        Self(error.into().context(doing))
    }

    /// The failure with its context, for logging the chain or downcasting the driver's error.
    pub fn cause(&self) -> &anyhow::Error {
        &self.0
    }
}

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#}", self.0)
    }
}

impl From<String> for Unavailable {
    fn from(message: String) -> Self {
        Self(anyhow::Error::msg(message))
    }
}

impl From<&str> for Unavailable {
    fn from(message: &str) -> Self {
        Self::from(message.to_owned())
    }
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
    /// Every outcome, in the order they are documented.
    pub const ALL: [Self; 7] = [
        Self::Success,
        Self::ToolError,
        Self::ProtocolError,
        Self::Rejected,
        Self::Unauthenticated,
        Self::Forbidden,
        Self::Failed,
    ];

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

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Outcome {
    type Err = UnknownOutcome;

    /// Reads the stored spelling (`success`, `tool_error`, …).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|o| o.as_str() == text)
            .ok_or_else(|| UnknownOutcome(text.to_owned()))
    }
}

/// A text that names no [`Outcome`]; the message lists the ones that exist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct UnknownOutcome(pub String);

impl fmt::Display for UnknownOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` is not an outcome: use one of ", self.0)?;
        for (n, outcome) in Outcome::ALL.into_iter().enumerate() {
            let separator = if n == 0 { "" } else { ", " };
            write!(f, "{separator}{outcome}")?;
        }
        Ok(())
    }
}

/// What happened to one request: who/what/when/where/outcome (NIST SP 800-53 AU-3).
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEvent {
    /// When the request arrived.
    pub occurred_at: Timestamp,
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
    /// The client's address: the TCP peer's, or behind trusted proxies the one they name.
    pub source_addr: Option<String>,
    /// The TCP peer (`address:port`) that delivered the request: a trusted proxy when it
    /// differs from `source_addr`'s address.
    pub peer_addr: Option<String>,
    /// The search backend a tool used (`tavily`, `mock`), when it used one.
    pub provider: Option<String>,
    /// Whether the tool's answer came from the result cache (no upstream request).
    pub cache_hit: Option<bool>,
    /// How many upstream requests the tool made (retries included).
    pub upstream_attempts: Option<u32>,
    /// The backend's own id for the call, for support requests.
    pub upstream_request_id: Option<String>,
    /// Backend credits the call cost (Tavily's report); `None` when not reported or cached.
    pub credits: Option<f64>,
    /// US dollars the call cost (Exa's report); `None` when not reported or cached.
    pub cost_usd: Option<f64>,
    /// The backends that failed before `provider` answered, with their error codes:
    /// `tavily:upstream_quota_exhausted,brave:upstream_unavailable`.
    pub fallback_from: Option<String>,
    /// The W3C trace id (32 hex digits) of the request's trace, so the row leads to it.
    pub trace_id: Option<String>,
    /// What was searched for (a query, URLs), at most 200 characters; `None` when
    /// `audit.record_queries` is off.
    pub query_summary: Option<String>,
}

impl AuditEvent {
    /// An event for something other than an MCP request (a registration, an admin action):
    /// `method` names it, the outcome and status are filled in by the caller.
    pub fn action(request_id: String, method: &str, outcome: Outcome, http_status: u16) -> Self {
        Self {
            occurred_at: Timestamp::now(),
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
            peer_addr: None,
            provider: None,
            cache_hit: None,
            upstream_attempts: None,
            upstream_request_id: None,
            credits: None,
            cost_usd: None,
            fallback_from: None,
            trace_id: None,
            query_summary: None,
        }
    }

    /// The event as one JSON object with the stored column names, for an operator who must
    /// find a row that could not be stored (it is logged instead).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "occurred_at_ms": self.occurred_at.unix_millis(),
            "request_id": self.request_id,
            "method": self.method,
            "tool": self.tool,
            "outcome": self.outcome.as_str(),
            "http_status": self.http_status,
            "error_code": self.error_code,
            "latency_us": u64::try_from(self.latency.as_micros()).unwrap_or(u64::MAX),
            "subject": self.subject,
            "client_id": self.client_id,
            "issuer": self.issuer,
            "token_hash_prefix": self.token_hash_prefix,
            "source_addr": self.source_addr,
            "provider": self.provider,
            "cache_hit": self.cache_hit,
            "upstream_attempts": self.upstream_attempts,
            "upstream_request_id": self.upstream_request_id,
            "fallback_from": self.fallback_from,
            "credits": self.credits,
            "cost_usd": self.cost_usd,
            "trace_id": self.trace_id,
            "peer_addr": self.peer_addr,
            "query_summary": self.query_summary,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_times_are_rfc_3339_or_unix_seconds_within_year_9999() {
        let at = Timestamp::from_unix_seconds(1_764_183_600);
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

    #[test]
    fn outcomes_read_their_stored_spelling_and_refusals_list_the_choices() {
        for outcome in Outcome::ALL {
            assert_eq!(
                outcome.as_str().parse::<Outcome>(),
                Ok(outcome),
                "{outcome}"
            );
        }
        let refused = "sucess".parse::<Outcome>().unwrap_err().to_string();
        assert_eq!(
            refused,
            "`sucess` is not an outcome: use one of success, tool_error, protocol_error, \
             rejected, unauthenticated, forbidden, failed"
        );
    }

    #[test]
    fn an_unavailable_store_shows_what_it_was_doing_and_keeps_the_cause() {
        let io = std::io::Error::other("database is locked");
        let error = AuditError::Unavailable(Unavailable::new("cannot store 3 audit events", io));
        assert_eq!(
            error.to_string(),
            "the audit store is unavailable: cannot store 3 audit events: database is locked"
        );
        let AuditError::Unavailable(unavailable) = &error else {
            unreachable!("built above")
        };
        assert!(
            unavailable
                .cause()
                .downcast_ref::<std::io::Error>()
                .is_some(),
            "the driver's error stays reachable"
        );
        let plain = AuditError::Unavailable("disk full".into());
        assert_eq!(
            plain.to_string(),
            "the audit store is unavailable: disk full"
        );
    }
}
