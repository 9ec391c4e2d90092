//! Request bodies bounded before anything reads them. A `Content-Length` over the route's limit
//! is answered 413 at once: the body is never polled, so hyper sends no `100 Continue`, and the
//! connection's lingering close lets a client still uploading read the answer. A body that has
//! not fully arrived `server.body_timeout_secs` after the route starts reading it is answered
//! 408.
//!
//! The MCP endpoint bounds its body itself (to `server.max_body_bytes`, with JSON-RPC answers
//! and an audit row), and registration keeps its RFC 7591 answers (`RegistrationLimit`); every
//! other route reads at most [`SMALL_BODY_BYTES`].

use std::{
    io,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use futures::StreamExt;
use poem::{
    Body, Endpoint, IntoResponse, Middleware, Request, Response, Result,
    http::{HeaderValue, StatusCode, header},
};

use super::{ErrorBody, Layered, mcp_endpoint::jsonrpc_error};

/// The largest body of a route other than the MCP endpoint: forms of the embedded authorization
/// server, registration, the admin API.
const SMALL_BODY_BYTES: u64 = 16 * 1024;

/// See the module documentation.
#[derive(Clone)]
pub(super) struct BodyGuard {
    /// The MCP endpoint's path.
    pub(super) mcp_path: String,
    /// How long a body may take to arrive after its headers.
    pub(super) body_timeout: Duration,
}

impl<E: Endpoint> Middleware<E> for BodyGuard {
    type Output = Layered<Self, E>;

    fn transform(&self, inner: E) -> Self::Output {
        Layered::new(self.clone(), inner)
    }
}

impl<E: Endpoint> Endpoint for Layered<BodyGuard, E> {
    type Output = Response;

    async fn call(&self, mut req: Request) -> Result<Self::Output> {
        let path = req.uri().path();
        let mcp = path == self.layer.mcp_path;
        let bounded_elsewhere = mcp || path == "/oauth/register";
        if !bounded_elsewhere && content_length(&req).is_some_and(|n| n > SMALL_BODY_BYTES) {
            return Ok(closing(
                ErrorBody::new(
                    "invalid_request",
                    format!("the request body exceeds {} KiB", SMALL_BODY_BYTES / 1024),
                )
                .response(StatusCode::PAYLOAD_TOO_LARGE),
            ));
        }
        let timed_out = Arc::new(AtomicBool::new(false));
        if has_body(&req) {
            let body = req.take_body();
            req.set_body(with_deadline(
                body,
                self.layer.body_timeout,
                timed_out.clone(),
            ));
        }
        let response = match self.inner.call(req).await {
            Ok(response) => response.into_response(),
            Err(error) => error.into_response(),
        };
        if !timed_out.load(Ordering::Acquire) {
            return Ok(response);
        }
        // Whatever the route made of the cut body, the answer is that it came too slowly.
        let description = format!(
            "the request body did not arrive within {} s",
            self.layer.body_timeout.as_secs()
        );
        Ok(closing(if mcp {
            jsonrpc_error(StatusCode::REQUEST_TIMEOUT, -32600, &description)
        } else {
            ErrorBody::new("request_timeout", description).response(StatusCode::REQUEST_TIMEOUT)
        }))
    }
}

/// The declared body length; `None` when absent (hyper has refused a malformed one).
pub(super) fn content_length(req: &Request) -> Option<u64> {
    req.headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

/// Whether the request declares a body (a length above zero, or chunks).
fn has_body(req: &Request) -> bool {
    content_length(req).is_some_and(|n| n > 0)
        || req.headers().contains_key(header::TRANSFER_ENCODING)
}

/// `response`, telling the client that the connection closes (its body is left unread).
fn closing(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// The error a body read gets once its time is up; readers can tell it by its kind.
pub(super) fn is_timeout(error: &io::Error) -> bool {
    error.kind() == io::ErrorKind::TimedOut
}

/// `body`, ending in a [`io::ErrorKind::TimedOut`] error (and setting `timed_out`) when it has
/// not ended `timeout` after it is first read. The clock starts then, not at the headers: until
/// a route asks for the body (after a slow token check, say) the client is not the one waiting,
/// and with `Expect: 100-continue` it has not even been asked to send it.
fn with_deadline(body: Body, timeout: Duration, timed_out: Arc<AtomicBool>) -> Body {
    let chunks = Box::pin(body.into_bytes_stream());
    let stream = futures::stream::unfold(Some((chunks, None)), move |state| {
        let timed_out = timed_out.clone();
        async move {
            let (mut chunks, deadline) = state?;
            let deadline = deadline.unwrap_or_else(|| tokio::time::Instant::now() + timeout);
            match tokio::time::timeout_at(deadline, chunks.next()).await {
                Ok(Some(chunk)) => Some((chunk, Some((chunks, Some(deadline))))),
                Ok(None) => None,
                Err(_) => {
                    timed_out.store(true, Ordering::Release);
                    let error = io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the request body did not arrive in time",
                    );
                    Some((Err(error), None))
                }
            }
        }
    });
    Body::from_bytes_stream(stream)
}
