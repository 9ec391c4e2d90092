//! The one outbound HTTP client (IdP discovery, keys, introspection; later the search backend):
//! short timeouts, no redirects, and bounded response bodies.

use std::time::Duration;

use reqwest::{Client, Response, StatusCode, header::HeaderMap};
use serde::de::DeserializeOwned;

/// Why an outbound request did not produce a usable answer.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// Connection refused, DNS failure, TLS failure or timeout.
    #[error("cannot reach {url}: {reason}")]
    Unreachable {
        /// Where.
        url: String,
        /// What happened.
        reason: String,
    },
    /// An HTTP status other than 2xx.
    #[error("{url} answered HTTP {status}")]
    Status {
        /// Where.
        url: String,
        /// The status.
        status: StatusCode,
    },
    /// A body larger than allowed.
    #[error("{url} sent more than {limit} bytes")]
    TooLarge {
        /// Where.
        url: String,
        /// The limit.
        limit: usize,
    },
    /// A body that is not the expected JSON.
    #[error("{url} sent a body that is not the expected JSON: {reason}")]
    Invalid {
        /// Where.
        url: String,
        /// Why.
        reason: String,
    },
}

/// The shared client: 5 s to connect, 10 s in all, redirects refused (an IdP that redirects
/// its keys elsewhere is misconfigured or compromised).
pub fn outbound() -> Client {
    Client::builder()
        .user_agent(concat!("searchgate/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("a static client configuration is valid")
}

/// GETs `url` and parses at most `limit` bytes of JSON, returning it with the response headers.
///
/// # Errors
/// [`FetchError`] for every way this can fail.
pub async fn get_json<T: DeserializeOwned>(
    client: &Client,
    url: &str,
    limit: usize,
) -> Result<(T, HeaderMap), FetchError> {
    let response = client
        .get(url)
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| unreachable(url, e))?;
    let status = response.status();
    if !status.is_success() {
        return Err(FetchError::Status {
            url: url.to_owned(),
            status,
        });
    }
    let headers = response.headers().clone();
    let body = read_limited(response, url, limit).await?;
    let value = serde_json::from_slice(&body).map_err(|e| FetchError::Invalid {
        url: url.to_owned(),
        reason: e.to_string(),
    })?;
    Ok((value, headers))
}

/// Reads a response body, refusing more than `limit` bytes.
///
/// # Errors
/// [`FetchError::TooLarge`] or [`FetchError::Unreachable`] when the body breaks off.
pub async fn read_limited(
    mut response: Response,
    url: &str,
    limit: usize,
) -> Result<Vec<u8>, FetchError> {
    if response
        .content_length()
        .is_some_and(|len| len > limit as u64)
    {
        return Err(FetchError::TooLarge {
            url: url.to_owned(),
            limit,
        });
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| unreachable(url, e))? {
        if body.len() + chunk.len() > limit {
            return Err(FetchError::TooLarge {
                url: url.to_owned(),
                limit,
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn unreachable(url: &str, error: reqwest::Error) -> FetchError {
    let reason = if error.is_timeout() {
        "timed out".to_owned()
    } else {
        error.without_url().to_string()
    };
    FetchError::Unreachable {
        url: url.to_owned(),
        reason,
    }
}
