//! What every HTTP search backend adapter shares: sending one request with a bounded answer,
//! mapping transport failures, reading `Retry-After`, and cutting an upstream explanation down
//! to one bounded line. Each adapter keeps its own status mapping (the backends disagree on
//! what a status means).

use std::time::Duration;

use reqwest::{Client, Request, RequestBuilder, StatusCode, header::HeaderMap};
use serde::{Deserialize, Deserializer, de::DeserializeOwned};
use tracing::{Instrument, field::Empty};

use crate::{
    adapters::http_client::{FetchError, read_limited},
    domain::{TRACE_TARGET, search::SearchError},
};

/// Longest upstream explanation passed on to a model.
pub(super) const MAX_REASON_CHARS: usize = 300;

/// Maps a non-2xx answer (status, headers, body) to the domain error it means.
pub(super) type StatusMap = fn(StatusCode, &HeaderMap, &[u8]) -> SearchError;

/// A successful (or accepted) answer: its status, headers and body (at most the limit's bytes).
pub(super) struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    /// The HTTP status: 2xx, or one the caller chose to accept.
    pub(super) fn status(&self) -> StatusCode {
        self.status
    }

    /// The answer's headers (Brave reports its plan's rate limits there).
    pub(super) fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The body as `T`, or `Unexpected` naming the backend and endpoint.
    pub(super) fn json<T: DeserializeOwned>(
        &self,
        backend: &str,
        endpoint: &str,
    ) -> Result<T, SearchError> {
        serde_json::from_slice(&self.body).map_err(|e| {
            SearchError::Unexpected(anyhow::anyhow!(
                "{backend}'s {endpoint} answer is not the documented JSON: {e}"
            ))
        })
    }
}

/// Sends `request` (already carrying its URL, headers, timeout and body), reads at most
/// `limit` bytes of answer, and maps every failure: transport errors, an oversized answer (the
/// caller can ask for less), and a non-2xx status through `status_map`.
pub(super) async fn send(
    request: RequestBuilder,
    backend: &'static str,
    limit: usize,
    status_map: StatusMap,
) -> Result<Answer, SearchError> {
    send_accepting(request, backend, limit, status_map, |_| false).await
}

/// As [`send`], but a non-2xx status for which `accept` is true is returned as an answer (Exa
/// reports URLs it could not read with a 422 whose body still names the failure).
pub(super) async fn send_accepting(
    request: RequestBuilder,
    backend: &'static str,
    limit: usize,
    status_map: StatusMap,
    accept: fn(StatusCode) -> bool,
) -> Result<Answer, SearchError> {
    let (client, request) = request.build_split();
    let request = request.map_err(transport_error)?;
    let span = client_span(&request, backend);
    let answer = exchange(&client, request, backend, limit, status_map, accept, &span)
        .instrument(span.clone())
        .await;
    if let Err(error) = &answer
        && !span.is_disabled()
    {
        span.record("error.type", error.code());
        span.record("otel.status_code", "ERROR");
    }
    answer
}

/// The trace span of one request to a backend, with the HTTP client semantic-convention
/// attributes; its URL without query string, fragment or credentials (SearXNG takes the query
/// there, other backends may take keys). Disabled, and nothing computed, when traces are off.
fn client_span(request: &Request, backend: &'static str) -> tracing::Span {
    let url = request.url();
    let method = request.method().as_str();
    tracing::info_span!(
        target: TRACE_TARGET,
        "http client",
        otel.name = method,
        otel.kind = "client",
        otel.status_code = Empty,
        http.request.method = method,
        server.address = url.host_str().unwrap_or_default(),
        server.port = url.port_or_known_default(),
        url.full = bare_url(url),
        searchgate.provider = backend,
        http.response.status_code = Empty,
        error.type = Empty,
    )
}

/// `scheme://host[:port]/path` of `url`: no credentials, query or fragment.
fn bare_url(url: &url::Url) -> String {
    let mut bare = url.clone();
    let _ = bare.set_username("");
    let _ = bare.set_password(None);
    bare.set_query(None);
    bare.set_fragment(None);
    bare.into()
}

/// Sends `request` and reads its answer, as [`send_accepting`] describes.
async fn exchange(
    client: &Client,
    request: Request,
    backend: &'static str,
    limit: usize,
    status_map: StatusMap,
    accept: fn(StatusCode) -> bool,
    span: &tracing::Span,
) -> Result<Answer, SearchError> {
    let response = client.execute(request).await.map_err(transport_error)?;
    span.record("http.response.status_code", response.status().as_u16());
    let url = response.url().clone();
    let status = response.status();
    let headers = response.headers().clone();
    let body = read_limited(response, url.as_str(), limit)
        .await
        .map_err(|error| match error {
            FetchError::TooLarge { .. } => SearchError::Rejected {
                reason: format!(
                    "the answer is larger than searchgate accepts ({} MiB); ask for fewer \
                     results or pages, or leave out full page text",
                    limit / (1024 * 1024)
                ),
            },
            // The reason without the URL: a backend's address (a private SearXNG host, say)
            // is the operator's business, not the model's.
            FetchError::Unreachable { reason, .. } => SearchError::Unavailable {
                reason: format!("{backend}'s answer broke off: {reason}"),
            },
            _ => SearchError::Unavailable {
                reason: format!("{backend}'s answer could not be read"),
            },
        })?;
    if !status.is_success() && !accept(status) {
        let error = status_map(status, &headers, &body);
        tracing::debug!(
            backend,
            status = status.as_u16(),
            error_code = error.code(),
            "a search backend refused a request"
        );
        return Err(error);
    }
    Ok(Answer {
        status,
        headers,
        body,
    })
}

/// A request that did not get an answer: a timeout, or a connection that failed.
pub(super) fn transport_error(error: reqwest::Error) -> SearchError {
    if error.is_timeout() {
        SearchError::Timeout
    } else {
        SearchError::Unavailable {
            reason: error.without_url().to_string(),
        }
    }
}

/// `retry-after` in seconds (RFC 9110 also allows a date; the backends send seconds).
pub(super) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    seconds(headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?)
}

/// A non-negative number of seconds, capped at a day.
pub(super) fn seconds(text: &str) -> Option<Duration> {
    let secs: f64 = text.trim().parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(86_400.0)))
}

/// `reason` on one line, at most [`MAX_REASON_CHARS`] characters; `None` when blank.
pub(super) fn one_line(reason: &str) -> Option<String> {
    let line: String = reason
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(MAX_REASON_CHARS)
        .collect();
    (!line.is_empty()).then_some(line)
}

/// `null` (or absence, with `#[serde(default)]`) as the type's default: backends send `null`
/// for lists and text they have nothing for.
pub(super) fn nullable<'de, D: Deserializer<'de>, T: Default + Deserialize<'de>>(
    deserializer: D,
) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// A 0–1 score for the hit at `rank` (0 for the first) of a backend that ranks without
/// scoring: 1, 1/2, 1/3, … It keeps the backend's order and nothing more.
pub(super) fn rank_score(rank: usize) -> f64 {
    1.0 / (1.0 + rank as f64)
}

/// A JSON number, or a number written as a string (backends send both).
pub(super) fn number(value: Option<&serde_json::Value>) -> Option<f64> {
    match value? {
        serde_json::Value::Number(n) => n.as_f64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// `HTTP <status>` from `backend`, for failures without an explanation.
pub(super) fn status_reason(backend: &str, status: StatusCode) -> String {
    format!("{backend} answered HTTP {}", status.as_u16())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_traced_url_keeps_no_query_fragment_or_credentials() {
        let url = url::Url::parse("https://user:secret@search.example:8443/search?q=x&key=k#top")
            .expect("a valid URL");
        assert_eq!(
            bare_url(&url),
            "https://search.example:8443/search",
            "queries and keys stay out of traces"
        );
    }

    #[test]
    fn reasons_are_one_bounded_line() {
        assert_eq!(one_line(" a\n  b\t").as_deref(), Some("a b"));
        assert_eq!(one_line("  "), None);
        assert_eq!(
            one_line(&"x".repeat(1000)).map(|r| r.chars().count()),
            Some(MAX_REASON_CHARS)
        );
    }

    #[test]
    fn seconds_are_bounded_and_never_negative() {
        assert_eq!(seconds("1.5"), Some(Duration::from_millis(1500)));
        assert_eq!(seconds("-1"), None);
        assert_eq!(seconds("NaN"), None);
        assert_eq!(seconds("1e12"), Some(Duration::from_secs(86_400)));
    }
}
