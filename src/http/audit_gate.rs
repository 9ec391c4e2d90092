//! The audit gate of the JSON API's audited routes (registration, the admin API): a request
//! takes its audit queue slot before it is served, waiting at most the enqueue timeout, and is
//! answered `503` with `Retry-After` when none frees up, so no action is taken unaudited and no
//! request hangs on a full queue. The handler's `AuditSink::record` then queues in that slot.

use poem::{Endpoint, IntoResponse, Middleware, Request, Response, Result, http::Method};
use poem_openapi::payload::Json;

use super::{ApiError, ErrorBody, Layered};
use crate::domain::audit::AuditSink;

/// See the module documentation.
#[derive(Clone)]
pub struct AuditGate {
    /// The audit writer's queue.
    pub sink: AuditSink,
}

impl<E: Endpoint> Middleware<E> for AuditGate {
    type Output = Layered<Self, E>;

    fn transform(&self, inner: E) -> Self::Output {
        Layered::new(self.clone(), inner)
    }
}

impl<E: Endpoint> Endpoint for Layered<AuditGate, E> {
    type Output = Response;

    async fn call(&self, req: Request) -> Result<Self::Output> {
        // CORS preflights are answered without an audit row.
        if req.method() == Method::OPTIONS {
            return self.inner.call(req).await.map(IntoResponse::into_response);
        }
        let slot = match self.layer.sink.reserve().await {
            Ok(slot) => slot,
            Err(full) => {
                let body = ErrorBody::new(
                    "temporarily_unavailable",
                    format!(
                        "the server cannot record this request in its audit trail now; retry \
                         after {} seconds",
                        full.retry_after_secs
                    ),
                );
                return Ok(
                    ApiError::Unavailable(Json(body), Some(full.retry_after_secs)).into_response(),
                );
            }
        };
        slot.serve(self.inner.call(req))
            .await
            .map(IntoResponse::into_response)
    }
}
