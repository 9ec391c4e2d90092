//! Request ids and the access log: every request gets an id (the caller's `x-request-id` when it
//! is sane, else a fresh UUIDv7), echoed in the response and carried by a tracing span so every
//! log line written while serving the request names it.

use std::time::Instant;

use poem::{Endpoint, IntoResponse, Middleware, Request, Response, Result, http::HeaderValue};
use tracing::Instrument;

use crate::domain::audit::{AuditEvent, Outcome};

const HEADER: &str = "x-request-id";

/// The id of the request being served, in its extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub String);

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
        let span = tracing::info_span!("request", request_id = %id, method = %req.method(), path = %req.uri().path());
        let started = Instant::now();
        async move {
            let mut response = self.inner.get_response(req).await.into_response();
            let status = response.status().as_u16();
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
        .await
    }
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
    event.source_addr = req
        .remote_addr()
        .as_socket_addr()
        .map(|a| a.ip().to_string());
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
