//! The MCP endpoint's audit layer: one audit row per request (CORS preflights excepted),
//! written when the response is complete, with the outcome classified from the status, the
//! JSON-RPC error and the tool's result.

use std::{sync::Arc, time::Instant};

use futures::StreamExt;
use poem::{
    Body, Endpoint, IntoResponse, Middleware, Request, Response, Result,
    http::{Method, StatusCode, header},
};
use serde::Deserialize;

use super::jsonrpc_error;
use crate::{
    domain::{
        audit::{AuditEvent, AuditSink, AuditSlot, NAME_CHARS, Outcome, QueueFull},
        time::Timestamp,
    },
    http::{
        ClientAddr, Layered, Metrics, RequestId,
        request_id::{TraceId, record_route},
    },
    mcp::{CallInfo, CallRecord},
};

/// Longest method or tool name served (and kept in an audit row).
pub(super) const MAX_NAME_CHARS: usize = NAME_CHARS;

/// JSON-RPC's implementation-defined server error: the request was not served.
const SERVER_BUSY: i64 = -32000;

/// Writes one audit row per MCP request.
#[derive(Clone)]
pub(super) struct AuditLayer {
    /// The audit writer's queue.
    pub(super) sink: AuditSink,
    /// Whether rows keep what was searched for (`audit.record_queries`).
    pub(super) record_queries: bool,
    /// Where calls are counted.
    pub(super) metrics: Arc<Metrics>,
}

impl<E: Endpoint> Middleware<E> for AuditLayer {
    type Output = Layered<Self, E>;

    fn transform(&self, inner: E) -> Self::Output {
        Layered::new(self.clone(), inner)
    }
}

/// What is known about a request before it is served, and the queue slot its row goes in.
struct Pending {
    slot: AuditSlot,
    record: CallRecord,
    request_id: String,
    from: Option<ClientAddr>,
    occurred_at: Timestamp,
    started: Instant,
    record_queries: bool,
    metrics: Arc<Metrics>,
    /// The HTTP request's trace id, for a row whose MCP request did not get its own.
    trace_id: Option<String>,
}

impl Pending {
    /// Queues the request's audit row in its slot.
    fn finish(self, status: StatusCode, rpc_error: Option<i64>) {
        let info = self.record.take();
        let (outcome, error_code) = classify(status, &info, rpc_error);
        let (subject, client_id, issuer, token_hash_prefix) = match info.principal {
            Some(p) => (
                Some(p.subject),
                p.client_id,
                Some(p.issuer),
                Some(p.token_hash_prefix).filter(|h| !h.is_empty()),
            ),
            None => (None, None, None, None),
        };
        let event = AuditEvent {
            occurred_at: self.occurred_at,
            request_id: self.request_id,
            method: info.method,
            tool: info.tool,
            outcome,
            http_status: status.as_u16(),
            error_code,
            latency: self.started.elapsed(),
            subject,
            client_id,
            issuer,
            token_hash_prefix,
            source_addr: self.from.map(|a| a.client.to_string()),
            peer_addr: self.from.map(|a| a.peer.to_string()),
            provider: info.upstream.as_ref().map(|u| u.provider.to_owned()),
            cache_hit: info.upstream.as_ref().map(|u| u.cache_hit),
            upstream_attempts: info.upstream.as_ref().map(|u| u.attempts),
            upstream_request_id: info.upstream_request_id,
            credits: info.cost.credits,
            cost_usd: info.cost.usd,
            fallback_from: info
                .upstream
                .as_ref()
                .filter(|u| !u.fallback_from.is_empty())
                .map(|u| {
                    u.fallback_from
                        .iter()
                        .map(|f| [f.provider, f.code].join(":"))
                        .collect::<Vec<_>>()
                        .join(",")
                }),
            trace_id: info.trace_id.or(self.trace_id),
            query_summary: info.query_summary.filter(|_| self.record_queries),
        };
        if let (Some(code), Some(span)) = (&event.error_code, &info.span) {
            span.record("error.type", code.as_str());
            span.record("otel.status_code", "ERROR");
        }
        self.metrics.observe_call(&event);
        self.slot.record(event);
    }
}

impl<E: Endpoint> Endpoint for Layered<AuditLayer, E> {
    type Output = Response;

    async fn call(&self, mut req: Request) -> Result<Self::Output> {
        if req.method() == Method::OPTIONS {
            return self.inner.call(req).await.map(IntoResponse::into_response);
        }
        let request_id = req
            .extensions()
            .get::<RequestId>()
            .map(|id| id.0.clone())
            .unwrap_or_default();
        // A slot first: a request that could not be audited is not served (fail closed).
        let slot = match self.layer.sink.reserve().await {
            Ok(slot) => slot,
            Err(full) => return Ok(queue_full(full)),
        };
        let record = CallRecord::new(&request_id);
        req.extensions_mut().insert(record.clone());
        let pending = Pending {
            slot,
            record,
            request_id,
            from: ClientAddr::of(&req),
            occurred_at: Timestamp::now(),
            started: Instant::now(),
            record_queries: self.layer.record_queries,
            metrics: self.layer.metrics.clone(),
            trace_id: req.extensions().get::<TraceId>().map(|t| t.0.clone()),
        };
        // The endpoint is mounted at one fixed path: the path is the route.
        record_route(&req, req.uri().path());
        let mut response = self.inner.get_response(req).await;
        let status = response.status();
        let content_type = response
            .content_type()
            .unwrap_or_default()
            .to_ascii_lowercase();
        if content_type.starts_with("text/event-stream") {
            // The outcome is known only when the stream ends (or the client goes away).
            let guard = AuditOnDrop {
                pending: Some(pending),
                status,
            };
            let stream = response.take_body().into_bytes_stream().map(move |chunk| {
                let _ = &guard;
                chunk
            });
            response.set_body(Body::from_bytes_stream(stream));
            return Ok(response);
        }
        let mut rpc_error = None;
        // A tool that ran has said how it went, and its result is the answer; any other JSON
        // answer is read for a JSON-RPC error.
        let tool_ran = pending.record.read(|info| info.tool_result.is_some());
        if content_type.starts_with("application/json") && !tool_ran {
            // rmcp's JSON responses are already in memory; this takes the bytes, not a copy.
            let bytes = response.take_body().into_bytes().await.unwrap_or_default();
            rpc_error = jsonrpc_error_code(&bytes);
            response.set_body(bytes);
        }
        pending.finish(status, rpc_error);
        Ok(response)
    }
}

/// The 503 of a request for which no audit slot freed up in time.
fn queue_full(full: QueueFull) -> Response {
    let message = format!(
        "the server cannot record this request in its audit trail now; retry after {} seconds",
        full.retry_after_secs
    );
    let mut response = jsonrpc_error(StatusCode::SERVICE_UNAVAILABLE, SERVER_BUSY, &message);
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, full.retry_after_secs.into());
    response
}

/// Records the audit row of a streamed response when its body is dropped.
struct AuditOnDrop {
    pending: Option<Pending>,
    status: StatusCode,
}

impl Drop for AuditOnDrop {
    fn drop(&mut self) {
        // The slot was reserved when the request arrived: queuing in it never waits.
        if let Some(pending) = self.pending.take() {
            pending.finish(self.status, None);
        }
    }
}

/// The `error.code` of a JSON-RPC error response.
fn jsonrpc_error_code(body: &[u8]) -> Option<i64> {
    #[derive(Deserialize)]
    struct Reply {
        error: Option<ErrorObject>,
    }
    #[derive(Deserialize)]
    struct ErrorObject {
        code: i64,
    }
    serde_json::from_slice::<Reply>(body)
        .ok()?
        .error
        .map(|e| e.code)
}

/// The audit outcome and reason code of a finished request.
fn classify(
    status: StatusCode,
    info: &CallInfo,
    rpc_error: Option<i64>,
) -> (Outcome, Option<String>) {
    let rpc = |code: i64| Some(format!("jsonrpc_{code}"));
    let http = || Some(format!("http_{}", status.as_u16()));
    if let Some(reason) = info.auth_failure {
        let outcome = match status.as_u16() {
            403 => Outcome::Forbidden,
            500.. => Outcome::Failed,
            _ => Outcome::Unauthenticated,
        };
        return (outcome, Some(reason.to_owned()));
    }
    match status.as_u16() {
        401 => (Outcome::Unauthenticated, http()),
        // A 403 after authentication is a scope decision; before it, a transport refusal.
        403 if info.principal.is_some() => (Outcome::Forbidden, http()),
        // rmcp answers malformed or unroutable JSON-RPC with 400/404 and an error body.
        400 | 404 if rpc_error.is_some() => (Outcome::ProtocolError, rpc_error.and_then(rpc)),
        400..=499 => (Outcome::Rejected, http()),
        500.. => (Outcome::Failed, http()),
        _ => match (info.tool_result, rpc_error) {
            (Some(Some(code)), _) => (Outcome::ToolError, Some(code.to_owned())),
            (_, Some(code)) => (Outcome::ProtocolError, rpc(code)),
            _ => (Outcome::Success, None),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::auth::{Principal, ScopeSet};

    #[test]
    fn outcomes_are_classified_from_status_body_and_tool() {
        let plain = CallInfo::default();
        let tool_failed = CallInfo {
            tool_result: Some(Some("invalid_argument")),
            ..CallInfo::default()
        };
        let tool_ok = CallInfo {
            tool_result: Some(None),
            ..CallInfo::default()
        };
        let signed_in = CallInfo {
            principal: Some(Principal {
                subject: "u".into(),
                client_id: None,
                issuer: "i".into(),
                scopes: ScopeSet::default(),
                ..Principal::default()
            }),
            ..CallInfo::default()
        };
        let failed = |code| CallInfo {
            auth_failure: Some(code),
            ..CallInfo::default()
        };
        let (expired, malformed) = (failed("token_expired"), failed("malformed_authorization"));
        let (no_scope, idp_down) = (failed("insufficient_scope"), failed("idp_unavailable"));
        let cases = [
            (200, &tool_ok, None, Outcome::Success, None),
            (
                200,
                &tool_failed,
                None,
                Outcome::ToolError,
                Some("invalid_argument"),
            ),
            (
                200,
                &plain,
                Some(-32602),
                Outcome::ProtocolError,
                Some("jsonrpc_-32602"),
            ),
            (202, &plain, None, Outcome::Success, None),
            (
                404,
                &plain,
                Some(-32601),
                Outcome::ProtocolError,
                Some("jsonrpc_-32601"),
            ),
            (
                400,
                &plain,
                Some(-32020),
                Outcome::ProtocolError,
                Some("jsonrpc_-32020"),
            ),
            (
                413,
                &plain,
                Some(-32600),
                Outcome::Rejected,
                Some("http_413"),
            ),
            (406, &plain, None, Outcome::Rejected, Some("http_406")),
            (
                403,
                &plain,
                Some(-32600),
                Outcome::Rejected,
                Some("http_403"),
            ),
            (403, &signed_in, None, Outcome::Forbidden, Some("http_403")),
            (
                401,
                &plain,
                None,
                Outcome::Unauthenticated,
                Some("http_401"),
            ),
            (503, &plain, None, Outcome::Failed, Some("http_503")),
            (
                401,
                &expired,
                None,
                Outcome::Unauthenticated,
                Some("token_expired"),
            ),
            (
                400,
                &malformed,
                None,
                Outcome::Unauthenticated,
                Some("malformed_authorization"),
            ),
            (
                403,
                &no_scope,
                None,
                Outcome::Forbidden,
                Some("insufficient_scope"),
            ),
            (
                503,
                &idp_down,
                None,
                Outcome::Failed,
                Some("idp_unavailable"),
            ),
        ];
        for (status, info, rpc, outcome, code) in cases {
            let got = classify(StatusCode::from_u16(status).unwrap(), info, rpc);
            assert_eq!(
                got,
                (outcome, code.map(str::to_owned)),
                "status {status} rpc {rpc:?}"
            );
        }
    }

    #[test]
    fn error_codes_are_read_from_json_rpc_errors_only() {
        assert_eq!(
            jsonrpc_error_code(
                br#"{"jsonrpc":"2.0","id":1,"error":{"code":-32601,"message":"x"}}"#
            ),
            Some(-32601)
        );
        assert_eq!(
            jsonrpc_error_code(br#"{"jsonrpc":"2.0","id":1,"result":{"error":{"code":1}}}"#),
            None
        );
    }
}
