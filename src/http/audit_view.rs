//! An audit event as it leaves searchgate: in the admin API's pages, in its NDJSON export, and
//! in the lines of `searchgate audit query` and `audit tail`. One type, so every reader sees the
//! same fields under the same names and the same ones left out when empty.

use chrono::{DateTime, SecondsFormat, Utc};
use poem_openapi::{Object, types::ToJSON};
use serde::{Serialize, Serializer};

use crate::domain::{audit::StoredEvent, time::Timestamp};

/// One audit event as the admin API shows it.
#[derive(Debug, Clone, Object)]
pub struct AuditEventView {
    /// Its position in the log; pages continue after it.
    pub id: i64,
    /// When (RFC 3339, UTC).
    pub occurred_at: String,
    /// The request id (`x-request-id`).
    pub request_id: String,
    /// The JSON-RPC method, or the action (`oauth/register`, `admin/…`).
    #[oai(skip_serializing_if_is_none)]
    pub method: Option<String>,
    /// The tool called.
    #[oai(skip_serializing_if_is_none)]
    pub tool: Option<String>,
    /// `success`, `tool_error`, `protocol_error`, `rejected`, `unauthenticated`, `forbidden`
    /// or `failed`.
    pub outcome: String,
    /// The HTTP status answered.
    pub http_status: u16,
    /// Why it did not succeed.
    #[oai(skip_serializing_if_is_none)]
    pub error_code: Option<String>,
    /// How long it took, in milliseconds.
    pub latency_ms: f64,
    /// Who (the token's subject).
    #[oai(skip_serializing_if_is_none)]
    pub subject: Option<String>,
    /// Through which client.
    #[oai(skip_serializing_if_is_none)]
    pub client_id: Option<String>,
    /// The token's issuer.
    #[oai(skip_serializing_if_is_none)]
    pub issuer: Option<String>,
    /// The first hex digits of the token's SHA-256 (never the token).
    #[oai(skip_serializing_if_is_none)]
    pub token_hash_prefix: Option<String>,
    /// From where: the client's address (behind trusted proxies, the one they name).
    #[oai(skip_serializing_if_is_none)]
    pub source_addr: Option<String>,
    /// The TCP peer (`address:port`) that delivered the request; a trusted proxy when its
    /// address differs from `source_addr`.
    #[oai(skip_serializing_if_is_none)]
    pub peer_addr: Option<String>,
    /// The search backend used.
    #[oai(skip_serializing_if_is_none)]
    pub provider: Option<String>,
    /// Whether the result cache answered.
    #[oai(skip_serializing_if_is_none)]
    pub cache_hit: Option<bool>,
    /// Upstream requests made (retries included).
    #[oai(skip_serializing_if_is_none)]
    pub upstream_attempts: Option<u32>,
    /// The backend's request id.
    #[oai(skip_serializing_if_is_none)]
    pub upstream_request_id: Option<String>,
    /// Backend credits the call cost, when the backend reported them (not for cached answers).
    #[oai(skip_serializing_if_is_none)]
    pub credits: Option<f64>,
    /// US dollars the call cost, when the backend reported them.
    #[oai(skip_serializing_if_is_none)]
    pub cost_usd: Option<f64>,
    /// The backends that failed before `provider` answered, each with its error code
    /// (`tavily:upstream_quota_exhausted,brave:upstream_unavailable`).
    #[oai(skip_serializing_if_is_none)]
    pub fallback_from: Option<String>,
    /// The W3C trace id (32 hex digits) of the request's trace, to find it in the tracing
    /// backend.
    #[oai(skip_serializing_if_is_none)]
    pub trace_id: Option<String>,
    /// What was searched for (200 characters at most), unless `audit.record_queries` is off.
    #[oai(skip_serializing_if_is_none)]
    pub query_summary: Option<String>,
}

impl From<StoredEvent> for AuditEventView {
    fn from(stored: StoredEvent) -> Self {
        let e = stored.event;
        Self {
            id: stored.id,
            occurred_at: rfc3339(e.occurred_at),
            request_id: e.request_id,
            method: e.method,
            tool: e.tool,
            outcome: e.outcome.as_str().to_owned(),
            http_status: e.http_status,
            error_code: e.error_code,
            latency_ms: e.latency.as_secs_f64() * 1000.0,
            subject: e.subject,
            client_id: e.client_id,
            issuer: e.issuer,
            token_hash_prefix: e.token_hash_prefix,
            source_addr: e.source_addr,
            peer_addr: e.peer_addr,
            provider: e.provider,
            cache_hit: e.cache_hit,
            upstream_attempts: e.upstream_attempts,
            upstream_request_id: e.upstream_request_id,
            fallback_from: e.fallback_from,
            credits: e.credits,
            cost_usd: e.cost_usd,
            trace_id: e.trace_id,
            query_summary: e.query_summary,
        }
    }
}

/// serde sees exactly the admin API's JSON: the omission rules are written once, in the `oai`
/// attributes above, and both writers follow them.
impl Serialize for AuditEventView {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

/// A time as the admin API writes it: RFC 3339, UTC, milliseconds.
pub fn rfc3339(at: Timestamp) -> String {
    DateTime::<Utc>::from_timestamp_millis(at.unix_millis())
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Events as NDJSON lines (one JSON object and a newline each).
pub fn ndjson(events: impl IntoIterator<Item = StoredEvent>) -> Vec<u8> {
    let mut chunk = Vec::new();
    for event in events {
        if let Ok(line) = serde_json::to_vec(&AuditEventView::from(event)) {
            chunk.extend_from_slice(&line);
            chunk.push(b'\n');
        }
    }
    chunk
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::audit::{AuditEvent, Outcome};

    #[test]
    fn empty_fields_are_left_out_not_written_as_null() {
        let mut event = AuditEvent::action("r-1".into(), "admin/stats", Outcome::Success, 200);
        event.occurred_at = Timestamp::from_unix_seconds(1_764_000_000);
        event.subject = Some("alice".into());
        let line = ndjson([StoredEvent { id: 7, event }]);
        let text = String::from_utf8(line).unwrap();
        assert!(text.ends_with('\n'), "one line per event");
        let json: serde_json::Value = serde_json::from_str(text.trim_end()).unwrap();
        assert_eq!(json["id"], 7);
        assert_eq!(json["subject"], "alice");
        assert_eq!(json["occurred_at"], "2025-11-24T16:00:00.000Z");
        for absent in ["tool", "client_id", "cache_hit", "query_summary"] {
            assert!(json.get(absent).is_none(), "{absent} is left out: {json}");
        }
        assert!(
            !text.contains("null"),
            "the CLI prints what the API serves: {text}"
        );
    }
}
