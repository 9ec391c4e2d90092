//! Request bodies bounded before anything reads them. A `Content-Length` over the route's limit
//! is answered 413 at once: the body is never polled, so hyper sends no `100 Continue`, and the
//! connection's lingering close lets a client still uploading read the answer. A body that has
//! not fully arrived `server.body_timeout_secs` after the route starts reading it is answered
//! 408, and a body sent without a length (chunked) that outgrows the limit is answered 413 as
//! soon as it does, whatever the route made of the cut body.
//!
//! The MCP endpoint bounds its body itself (to `server.max_body_bytes`, with JSON-RPC answers
//! and an audit row), and registration keeps its RFC 7591 answers (`RegistrationLimit`); every
//! other route reads at most [`SMALL_BODY_BYTES`].

use std::{
    io,
    sync::{
        Arc,
        atomic::{AtomicU8, Ordering},
    },
    time::Duration,
};

use futures::StreamExt;
use poem::{
    Body, Endpoint, IntoResponse, Middleware, Request, Response, Result,
    http::{HeaderValue, StatusCode, Version, header},
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
            return Ok(closing(too_large()));
        }
        let cut = Arc::new(AtomicU8::new(Cut::NONE));
        // HTTP/1 closes a connection whose request body was left unread; on HTTP/2 only that
        // stream ends (and `Connection` is not a header there).
        let http1 = req.version() < Version::HTTP_2;
        // Any body whose stream has not ended: a declared length above zero, chunks, or an
        // HTTP/2 stream not ended with its headers (which need no length, and whose declared
        // length, even 0, is no promise that the stream ends).
        let body: http_body_util::combinators::BoxBody<bytes::Bytes, io::Error> =
            req.take_body().into();
        let had_body = !http_body::Body::is_end_stream(&body);
        let body = Body::from(body);
        if !had_body {
            req.set_body(body);
        } else {
            let expected = content_length(&req);
            let limit = (!bounded_elsewhere).then_some(SMALL_BODY_BYTES);
            req.set_body(guarded(
                body,
                self.layer.body_timeout,
                limit,
                expected,
                cut.clone(),
            ));
        }
        let response = match self.inner.call(req).await {
            Ok(response) => response.into_response(),
            Err(error) => error.into_response(),
        };
        // Whatever the route made of a cut body, the answer is why it was cut.
        match cut.load(Ordering::Acquire) {
            Cut::TIMED_OUT => {
                let description = format!(
                    "the request body did not arrive within {} s",
                    self.layer.body_timeout.as_secs()
                );
                Ok(closing(if mcp {
                    jsonrpc_error(StatusCode::REQUEST_TIMEOUT, -32600, &description)
                } else {
                    ErrorBody::new("request_timeout", description)
                        .response(StatusCode::REQUEST_TIMEOUT)
                }))
            }
            Cut::TOO_LARGE => Ok(closing(too_large())),
            // Answered without reading the body (a 401 before the token check lets it in):
            // hyper then closes the connection, and a client that pooled it would send its next
            // request into a closed socket ("server disconnected"). Saying so lets it open a
            // new one instead.
            Cut::NONE if had_body && http1 => Ok(closing(response)),
            _ => Ok(response),
        }
    }
}

/// Why a body was cut short, kept in an `AtomicU8` the body stream sets.
struct Cut;

impl Cut {
    const NONE: u8 = 0;
    const TIMED_OUT: u8 = 1;
    const TOO_LARGE: u8 = 2;
    /// Read to its end: the connection can serve another request.
    const ENDED: u8 = 3;
}

/// The answer to a body over [`SMALL_BODY_BYTES`].
fn too_large() -> Response {
    ErrorBody::new(
        "invalid_request",
        format!("the request body exceeds {} KiB", SMALL_BODY_BYTES / 1024),
    )
    .response(StatusCode::PAYLOAD_TOO_LARGE)
}

/// The declared body length; `None` when absent (hyper has refused a malformed one).
pub(super) fn content_length(req: &Request) -> Option<u64> {
    req.headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
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

/// `body`, ending in an error (and setting `cut`) when it has not ended `timeout` after it is
/// first read, or when it outgrows `limit`. The clock starts at the first read, not at the
/// headers: until a route asks for the body (after a slow token check, say) the client is not
/// the one waiting, and with `Expect: 100-continue` it has not even been asked to send it.
fn guarded(
    body: Body,
    timeout: Duration,
    limit: Option<u64>,
    expected: Option<u64>,
    cut: Arc<AtomicU8>,
) -> Body {
    let chunks = Box::pin(body.into_bytes_stream());
    let stream = futures::stream::unfold(Some((chunks, None, 0u64)), move |state| {
        let cut = cut.clone();
        async move {
            let (mut chunks, deadline, read) = state?;
            let deadline = deadline.unwrap_or_else(|| tokio::time::Instant::now() + timeout);
            let (kind, why, message) = match tokio::time::timeout_at(deadline, chunks.next()).await
            {
                Ok(Some(Ok(chunk))) => {
                    let read = read + chunk.len() as u64;
                    if expected == Some(read) {
                        // All the declared bytes: a reader that stops here has read it all.
                        cut.store(Cut::ENDED, Ordering::Release);
                    }
                    if limit.is_none_or(|limit| read <= limit) {
                        return Some((Ok(chunk), Some((chunks, Some(deadline), read))));
                    }
                    (
                        io::ErrorKind::InvalidData,
                        Cut::TOO_LARGE,
                        "the request body is too large",
                    )
                }
                Ok(Some(Err(error))) => return Some((Err(error), None)),
                Ok(None) => {
                    cut.store(Cut::ENDED, Ordering::Release);
                    return None;
                }
                Err(_) => (
                    io::ErrorKind::TimedOut,
                    Cut::TIMED_OUT,
                    "the request body did not arrive in time",
                ),
            };
            cut.store(why, Ordering::Release);
            Some((Err(io::Error::new(kind, message)), None))
        }
    });
    Body::from_bytes_stream(stream)
}
