//! The Tavily backend (search, extract, crawl, map) over Tavily's REST API. It only translates:
//! domain requests into JSON bodies holding exactly the options the caller set, answers into
//! domain results, and HTTP failures into `SearchError` variants. Retries, deadlines, caching
//! and rate limits are core policy (`domain::search::SearchService`).
//!
//! Authentication is `Authorization: Bearer <searchgate's key>` and nothing else: the MCP
//! client's token never reaches this adapter.

mod wire;

use std::time::Duration;

use async_trait::async_trait;
use reqwest::{
    Client, StatusCode,
    header::{ACCEPT, AUTHORIZATION, HeaderMap, HeaderValue, InvalidHeaderValue},
};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use url::Url;

use super::upstream;
use crate::{
    adapters::http_client::read_limited,
    domain::search::{
        CrawlProvider, CrawlRequest, CrawlResults, Deadlines, ExtractProvider, ExtractRequest,
        ExtractResults, MapProvider, MapRequest, MapResults, SearchError, SearchProvider,
        SearchRequest, SearchResults,
    },
};

/// Largest search answer accepted (raw content of 20 pages fits comfortably).
const SEARCH_BODY_LIMIT: usize = 8 * 1024 * 1024;
/// Largest extract or crawl answer accepted (whole pages).
const PAGES_BODY_LIMIT: usize = 32 * 1024 * 1024;
/// Largest map or usage answer accepted (URLs only).
const SMALL_BODY_LIMIT: usize = 4 * 1024 * 1024;

/// Tavily's search, extract, crawl and map endpoints.
pub struct TavilySearchProvider {
    http: Client,
    base_url: String,
    /// `Bearer <key>`, marked sensitive so reqwest never prints it.
    authorization: HeaderValue,
    /// Per-endpoint request timeouts (the shared client's default is too short for crawls).
    timeouts: Deadlines,
}

impl std::fmt::Debug for TavilySearchProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TavilySearchProvider")
            .field("base_url", &self.base_url)
            .field("authorization", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl TavilySearchProvider {
    /// A provider calling `base_url` (normally `https://api.tavily.com`) with `api_key`, each
    /// request bounded by the matching timeout.
    ///
    /// # Errors
    /// When `api_key` cannot be sent in an `Authorization` header (control characters, non-ASCII).
    pub fn new(
        base_url: &Url,
        api_key: &str,
        timeouts: Deadlines,
        http: Client,
    ) -> Result<Self, InvalidHeaderValue> {
        let mut authorization = HeaderValue::from_str(&format!("Bearer {api_key}"))?;
        authorization.set_sensitive(true);
        Ok(Self {
            http,
            base_url: base_url.as_str().trim_end_matches('/').to_owned(),
            authorization,
            timeouts,
        })
    }

    fn url(&self, endpoint: &str) -> String {
        format!("{}/{endpoint}", self.base_url)
    }

    /// Checks the key with `GET /usage` and describes what Tavily reports.
    ///
    /// # Errors
    /// A sentence for the operator when the key is refused or Tavily cannot be reached.
    #[tracing::instrument(skip_all)]
    pub async fn usage(&self) -> Result<String, String> {
        let url = self.url("usage");
        let response = self
            .http
            .get(&url)
            .header(AUTHORIZATION, self.authorization.clone())
            .header(ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| format!("cannot reach {url}: {}", e.without_url()))?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = read_limited(response, &url, SMALL_BODY_LIMIT)
            .await
            .map_err(|e| e.to_string())?;
        if !status.is_success() {
            let problem = match status_error(status, &headers, &body) {
                SearchError::BackendUnauthorized => format!(
                    "Tavily refused the API key (HTTP {}); set a valid key in \
                     SEARCHGATE_SEARCH__TAVILY__API_KEY or TAVILY_API_KEY",
                    status.as_u16()
                ),
                other => format!("{url} answered HTTP {}: {other}", status.as_u16()),
            };
            return Err(problem);
        }
        let usage: wire::UsageBody = serde_json::from_slice(&body)
            .map_err(|e| format!("{url} sent an unexpected body: {e}"))?;
        Ok(usage.describe())
    }

    /// POSTs `body` to `endpoint` and parses the answer, mapping every failure.
    #[tracing::instrument(skip_all, fields(endpoint = endpoint))]
    async fn post<T: DeserializeOwned>(
        &self,
        endpoint: &'static str,
        body: Map<String, Value>,
        timeout: Duration,
        limit: usize,
    ) -> Result<T, SearchError> {
        let request = self
            .http
            .post(self.url(endpoint))
            .header(AUTHORIZATION, self.authorization.clone())
            .header(ACCEPT, "application/json")
            .timeout(timeout)
            .json(&Value::Object(body));
        upstream::send(request, "Tavily", limit, status_error)
            .await?
            .json("Tavily", endpoint)
    }
}

/// Maps an HTTP failure to the domain error the reference prescribes.
fn status_error(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> SearchError {
    match status.as_u16() {
        400 | 422 => SearchError::Rejected {
            reason: upstream_reason(body)
                .unwrap_or_else(|| upstream::status_reason("Tavily", status)),
        },
        401 | 403 => SearchError::BackendUnauthorized,
        429 => SearchError::RateLimited {
            retry_after: upstream::retry_after(headers),
        },
        // 432: the plan's (or the key's) limit; 433: the pay-as-you-go limit.
        432 | 433 => SearchError::QuotaExhausted,
        500..=599 => SearchError::Unavailable {
            reason: upstream::status_reason("Tavily", status),
        },
        _ => SearchError::Unexpected(anyhow::anyhow!(upstream::status_reason("Tavily", status))),
    }
}

/// Tavily's explanation: `detail.error` (both SDKs read it), else `detail` as text, else the
/// keyless envelope's `error.message`; one line, bounded.
fn upstream_reason(body: &[u8]) -> Option<String> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let reason = value
        .pointer("/detail/error")
        .or_else(|| value.get("detail").filter(|d| d.is_string()))
        .or_else(|| value.pointer("/error/message"))
        .or_else(|| value.get("error").filter(|e| e.is_string()))?
        .as_str()?;
    upstream::one_line(reason)
}

#[async_trait]
impl SearchProvider for TavilySearchProvider {
    fn name(&self) -> &'static str {
        "tavily"
    }

    async fn search(&self, request: &SearchRequest) -> Result<SearchResults, SearchError> {
        let body: wire::SearchBody = self
            .post(
                "search",
                wire::search_body(request),
                self.timeouts.search,
                SEARCH_BODY_LIMIT,
            )
            .await?;
        Ok(body.into_domain(request))
    }
}

#[async_trait]
impl ExtractProvider for TavilySearchProvider {
    async fn extract(&self, request: &ExtractRequest) -> Result<ExtractResults, SearchError> {
        let body: wire::ExtractBody = self
            .post(
                "extract",
                wire::extract_body(request),
                self.timeouts.extract,
                PAGES_BODY_LIMIT,
            )
            .await?;
        Ok(body.into_domain())
    }
}

#[async_trait]
impl CrawlProvider for TavilySearchProvider {
    async fn crawl(&self, request: &CrawlRequest) -> Result<CrawlResults, SearchError> {
        let body: wire::CrawlBody = self
            .post(
                "crawl",
                wire::crawl_body(request),
                self.timeouts.crawl,
                PAGES_BODY_LIMIT,
            )
            .await?;
        Ok(body.into_domain(request.scope().limit()))
    }
}

#[async_trait]
impl MapProvider for TavilySearchProvider {
    async fn map(&self, request: &MapRequest) -> Result<MapResults, SearchError> {
        let body: wire::MapBody = self
            .post(
                "map",
                wire::map_body(request),
                self.timeouts.map,
                SMALL_BODY_LIMIT,
            )
            .await?;
        Ok(body.into_domain(request.scope().limit()))
    }
}

#[cfg(test)]
mod tests {
    use reqwest::header::RETRY_AFTER;

    use super::*;

    fn headers(retry: Option<&str>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Some(value) = retry {
            headers.insert(RETRY_AFTER, HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    #[test]
    fn statuses_map_to_the_documented_errors() {
        let detail = br#"{"detail":{"error":"Query is too long.\n Max 400."}}"#;
        let cases: &[(u16, Option<&str>, &[u8], &str)] = &[
            (400, None, detail, "upstream_rejected"),
            (401, None, b"", "upstream_unauthorized"),
            (403, None, b"", "upstream_unauthorized"),
            (429, Some("7"), b"", "upstream_rate_limited"),
            (432, None, b"", "upstream_quota_exhausted"),
            (433, None, b"", "upstream_quota_exhausted"),
            (500, None, b"", "upstream_unavailable"),
            (503, None, b"oops", "upstream_unavailable"),
            (404, None, b"", "internal_error"),
        ];
        for (status, retry, body, code) in cases {
            let error = status_error(
                StatusCode::from_u16(*status).unwrap(),
                &headers(*retry),
                body,
            );
            assert_eq!(error.code(), *code, "HTTP {status}");
        }
        match status_error(StatusCode::BAD_REQUEST, &headers(None), detail) {
            SearchError::Rejected { reason } => {
                assert_eq!(reason, "Query is too long. Max 400.", "one line")
            }
            other => panic!("{other:?}"),
        }
        match status_error(StatusCode::TOO_MANY_REQUESTS, &headers(Some("1.5")), b"") {
            SearchError::RateLimited { retry_after } => {
                assert_eq!(retry_after, Some(Duration::from_millis(1500)))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn reasons_come_from_any_documented_envelope() {
        assert_eq!(
            upstream_reason(br#"{"detail":"Invalid topic"}"#).as_deref(),
            Some("Invalid topic")
        );
        assert_eq!(
            upstream_reason(br#"{"error":{"code":"x","message":"Keyless limit"}}"#).as_deref(),
            Some("Keyless limit")
        );
        assert_eq!(upstream_reason(b"<html>"), None, "not JSON");
        let long = format!(r#"{{"detail":{{"error":"{}"}}}}"#, "a".repeat(1000));
        assert_eq!(
            upstream_reason(long.as_bytes()).map(|r| r.chars().count()),
            Some(upstream::MAX_REASON_CHARS)
        );
    }

    #[test]
    fn the_key_never_shows_in_debug_output() {
        let provider = TavilySearchProvider::new(
            &Url::parse("https://api.tavily.com/").unwrap(),
            "tvly-secret",
            Deadlines::default(),
            Client::new(),
        )
        .unwrap();
        let printed = format!("{provider:?} {:?}", provider.authorization);
        assert!(!printed.contains("tvly-secret"), "{printed}");
        assert_eq!(provider.url("search"), "https://api.tavily.com/search");
    }
}
