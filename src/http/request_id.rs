//! Request ids and the access log: every request gets an id (the caller's `x-request-id` when it
//! is sane, else a fresh UUIDv7), echoed in the response and carried by a tracing span so every
//! log line written while serving the request names it.
//!
//! The HTTP server span of the trace starts here too (when traces are exported), parented to
//! the caller's W3C `traceparent` header; its trace id (or, with export off, the trace id the
//! header names) is put on the log span as `trace_id` and into the request's extensions for the
//! audit row.

use std::time::Instant;

use poem::{Endpoint, IntoResponse, Middleware, Request, Response, Result, http::HeaderValue};
use tracing::{Instrument, field::Empty};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::ClientAddr;
use crate::{
    domain::{
        TRACE_TARGET,
        audit::{AuditEvent, Outcome},
    },
    telemetry::context,
};

const HEADER: &str = "x-request-id";

/// The id of the request being served, in its extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub String);

/// The trace id (32 hex digits) of the request being served, in its extensions when it has one:
/// the exported trace's, or with export off the one the caller's `traceparent` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceId(pub String);

/// The HTTP server span of the request being served, in its extensions when traces are
/// exported, for the layers that learn its route or link their own spans to it.
#[derive(Debug, Clone)]
pub struct HttpSpan(pub tracing::Span);

/// Middleware assigning request ids and logging one line per request.
pub struct RequestIdLayer;

impl<E: Endpoint> Middleware<E> for RequestIdLayer {
    type Output = RequestIdEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        RequestIdEndpoint { inner }
    }
}

/// See [`RequestIdLayer`].
pub struct RequestIdEndpoint<E> {
    inner: E,
}

impl<E: Endpoint> Endpoint for RequestIdEndpoint<E> {
    type Output = Response;

    async fn call(&self, mut req: Request) -> Result<Self::Output> {
        let id = req
            .headers()
            .get(HEADER)
            .and_then(|v| v.to_str().ok())
            .filter(|v| is_sane(v))
            .map_or_else(|| uuid::Uuid::now_v7().to_string(), str::to_owned);
        req.extensions_mut().insert(RequestId(id.clone()));
        let http = server_span(&req);
        let trace_id = if http.is_disabled() {
            header_parent(&req).as_ref().and_then(context::trace_id)
        } else {
            context::span_trace_id(&http)
        };
        let client = ClientAddr::of(&req).map(|a| a.client);
        let span = tracing::info_span!("request", request_id = %id, method = %req.method(), path = %req.uri().path(), client = client.map(tracing::field::display), trace_id = Empty);
        if let Some(trace_id) = trace_id {
            span.record("trace_id", tracing::field::display(&trace_id));
            req.extensions_mut().insert(TraceId(trace_id));
        }
        if !http.is_disabled() {
            req.extensions_mut().insert(HttpSpan(http.clone()));
        }
        let started = Instant::now();
        let traced = http.clone();
        async move {
            let mut response = self.inner.get_response(req).await.into_response();
            let status = response.status().as_u16();
            if !traced.is_disabled() {
                traced.record("http.response.status_code", status);
                // Semantic conventions: only 5xx mark a server span as failed.
                if status >= 500 {
                    traced.record("error.type", status);
                    traced.record("otel.status_code", "ERROR");
                }
            }
            let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
            if status >= 500 {
                tracing::error!(status, latency_ms, "served");
            } else {
                tracing::info!(status, latency_ms, "served");
            }
            if let Ok(value) = HeaderValue::from_str(&id) {
                response.headers_mut().insert(HEADER, value);
            }
            Ok(response)
        }
        .instrument(span)
        .instrument(http)
        .await
    }
}

/// The HTTP server span, with the OpenTelemetry HTTP semantic-convention attributes known on
/// arrival and its parent from `traceparent`; disabled when traces are off.
fn server_span(req: &Request) -> tracing::Span {
    if !context::traces_on() {
        return tracing::Span::none();
    }
    let method = req.method().as_str();
    let host = req
        .uri()
        .host()
        .or_else(|| req.header("host").map(|h| h.split(':').next().unwrap_or(h)));
    let client = ClientAddr::of(req).map(|a| a.client.to_string());
    let span = tracing::info_span!(
        target: TRACE_TARGET,
        "http request",
        otel.name = method,
        otel.kind = "server",
        otel.status_code = Empty,
        http.request.method = method,
        url.path = req.uri().path(),
        http.route = Empty,
        server.address = host,
        client.address = client,
        http.response.status_code = Empty,
        error.type = Empty,
    );
    if let Some(parent) = header_parent(req) {
        let _ = span.set_parent(parent);
    }
    span
}

/// The parent the caller's W3C `traceparent` and `tracestate` headers name, when valid.
fn header_parent(req: &Request) -> Option<opentelemetry::Context> {
    let traceparent = req.header("traceparent")?;
    context::remote_parent(traceparent, req.header("tracestate"))
}

/// Records the route of the request `req` is, on its HTTP server span, and names the span after
/// it (`POST /web-search/mcp`), as the semantic conventions do once the route is known.
pub fn record_route(req: &Request, route: &str) {
    use opentelemetry::trace::TraceContextExt;
    let Some(HttpSpan(span)) = req.extensions().get::<HttpSpan>() else {
        return;
    };
    if span.is_disabled() {
        return;
    }
    span.record("http.route", route);
    span.context()
        .span()
        .update_name(format!("{} {route}", req.method()));
}

/// The audit row of an action served over plain HTTP (registration, the admin API), with the
/// request's id and the caller's address filled in: the one place both are looked up.
pub fn action_event(req: &Request, action: &str, outcome: Outcome, status: u16) -> AuditEvent {
    let request_id = req
        .extensions()
        .get::<RequestId>()
        .map(|r| r.0.clone())
        .unwrap_or_default();
    let mut event = AuditEvent::action(request_id, action, outcome, status);
    let from = ClientAddr::of(req);
    event.source_addr = from.map(|a| a.client.to_string());
    event.peer_addr = from.map(|a| a.peer.to_string());
    event.trace_id = req.extensions().get::<TraceId>().map(|t| t.0.clone());
    event
}

/// A caller-supplied id is kept only when short and plain, so logs cannot be forged or flooded.
fn is_sane(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_short_plain_ids_are_kept() {
        assert!(is_sane("0191b7c2-7d2e-7c3a-9f1e-3f0c2b6a1d4e"));
        assert!(is_sane("trace.abc:1"));
        assert!(!is_sane(""));
        assert!(!is_sane(&"a".repeat(65)));
        assert!(!is_sane("bad id\nINFO forged line"));
    }
}
