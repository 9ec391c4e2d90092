//! The Exa backend (search and extract) over `POST /search` and `POST /contents`. It only
//! translates: domain requests into camelCase JSON bodies holding the options the caller set,
//! answers into domain results (with Exa's cost in dollars), and HTTP failures into
//! `SearchError` variants. Retries, deadlines, caching and rate limits are core policy.
//!
//! Authentication is `x-api-key: <searchgate's key>` (what Exa's SDKs send) and nothing else.

mod wire;

use std::time::Duration;

use async_trait::async_trait;
use reqwest::{
    Client, StatusCode,
    header::{ACCEPT, HeaderMap, HeaderValue, InvalidHeaderValue},
};
use serde_json::{Map, Value};
use url::Url;

use super::upstream;
use crate::domain::search::{
    Deadlines, ExtractProvider, ExtractRequest, ExtractResults, SearchArgument, SearchArguments,
    SearchError, SearchOptions, SearchProvider, SearchRequest, SearchResults,
};

/// Largest search answer accepted (full text of 20 pages fits comfortably).
const SEARCH_BODY_LIMIT: usize = 8 * 1024 * 1024;
/// Largest contents answer accepted (whole pages).
const PAGES_BODY_LIMIT: usize = 32 * 1024 * 1024;

/// Exa's key header.
const KEY_HEADER: &str = "x-api-key";

/// Where the operator sets the key, for messages that ask them to fix it.
const KEY_SETTING: &str = "SEARCHGATE_SEARCH__EXA__API_KEY or EXA_API_KEY";

/// Exa's search and contents endpoints.
pub struct ExaSearchProvider {
    http: Client,
    base_url: String,
    /// The key, marked sensitive so reqwest never prints it.
    key: HeaderValue,
    /// Per-tool request timeouts (`search` and `extract` apply).
    timeouts: Deadlines,
}

impl std::fmt::Debug for ExaSearchProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExaSearchProvider")
            .field("base_url", &self.base_url)
            .field("key", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl ExaSearchProvider {
    /// A provider calling `base_url` (normally `https://api.exa.ai`) with `api_key`, each
    /// request bounded by the matching timeout.
    ///
    /// # Errors
    /// When `api_key` cannot be sent in a header (control characters, non-ASCII).
    pub fn new(
        base_url: &Url,
        api_key: &str,
        timeouts: Deadlines,
        http: Client,
    ) -> Result<Self, InvalidHeaderValue> {
        let mut key = HeaderValue::from_str(api_key)?;
        key.set_sensitive(true);
        Ok(Self {
            http,
            base_url: base_url.as_str().trim_end_matches('/').to_owned(),
            key,
            timeouts,
        })
    }

    fn url(&self, endpoint: &str) -> String {
        format!("{}/{endpoint}", self.base_url)
    }

    /// Checks the key for `searchgate check-config` with one real one-result search for
    /// "searchgate": Exa has no free endpoint that checks a key, so this costs one search
    /// (reported in dollars when Exa says).
    ///
    /// # Errors
    /// A sentence for the operator naming what to fix.
    #[tracing::instrument(skip_all)]
    pub async fn probe(&self) -> Result<String, String> {
        let request = SearchRequest::new(SearchOptions {
            max_results: Some(1),
            ..SearchOptions::query("searchgate")
        })
        .expect("the probe's request is valid");
        match self.search(&request).await {
            Ok(results) => Ok(format!(
                "exa answered a one-result search{}",
                results
                    .usage
                    .cost_dollars
                    .map(|cost| format!(" (cost ${cost})"))
                    .unwrap_or_default()
            )),
            Err(SearchError::BackendUnauthorized) => Err(format!(
                "Exa refused the API key; set a valid key in {KEY_SETTING}"
            )),
            Err(error @ (SearchError::NotInPlan { .. } | SearchError::QuotaExhausted)) => Err(
                format!("{error}; check the credits and plan of the key in {KEY_SETTING}"),
            ),
            Err(error) => Err(format!("Exa's search failed: {error}")),
        }
    }

    /// POSTs `body` to `endpoint` and returns the answer (or, for a status `accept` allows,
    /// the refusal), mapping every other failure.
    #[tracing::instrument(skip_all, fields(endpoint = endpoint))]
    async fn post(
        &self,
        endpoint: &'static str,
        body: Map<String, Value>,
        timeout: Duration,
        limit: usize,
        accept: fn(StatusCode) -> bool,
    ) -> Result<upstream::Answer, SearchError> {
        let request = self
            .http
            .post(self.url(endpoint))
            .header(KEY_HEADER, self.key.clone())
            .header(ACCEPT, "application/json")
            .timeout(timeout)
            .json(&Value::Object(body));
        upstream::send_accepting(request, "Exa", limit, status_error, accept).await
    }
}

/// Maps an HTTP failure to the domain error Exa's error table gives it (search-apis-2 §1.5).
fn status_error(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> SearchError {
    let error = wire::ErrorBody::parse(body);
    let reason = || {
        error
            .reason()
            .unwrap_or_else(|| upstream::status_reason("Exa", status))
    };
    match status.as_u16() {
        400 => SearchError::Rejected { reason: reason() },
        401 => SearchError::BackendUnauthorized,
        // Credits, or the key's or team's budget.
        402 => SearchError::QuotaExhausted,
        // Moderation and robots refusals are about this request, and a feature the plan lacks
        // (a deeper search type) is one this request chose: another request may pass, and the
        // backend must not be set aside for everyone because of one.
        403 if matches!(
            error.tag(),
            "PROHIBITED_CONTENT" | "ROBOTS_FILTER_FAILED" | "FEATURE_DISABLED"
        ) =>
        {
            SearchError::Rejected { reason: reason() }
        }
        // Otherwise the key may not use Exa at all (`ACCESS_DENIED`).
        403 => SearchError::NotInPlan { reason: reason() },
        429 => SearchError::RateLimited {
            retry_after: upstream::retry_after(headers),
        },
        500..=599 => SearchError::Unavailable {
            reason: upstream::status_reason("Exa", status),
        },
        _ => SearchError::Unexpected(anyhow::anyhow!(upstream::status_reason("Exa", status))),
    }
}

#[async_trait]
impl SearchProvider for ExaSearchProvider {
    fn name(&self) -> &'static str {
        "exa"
    }

    /// `max_results` → `numResults`; `search_depth` → `type`; `time_range` and the dates →
    /// `startPublishedDate`/`endPublishedDate`; domains → `includeDomains`/`excludeDomains`;
    /// `country` → `userLocation` (ISO code); `include_raw_content` → `contents.text`;
    /// `include_favicon` → each result's `favicon`. Not honoured: topic (Exa's categories do
    /// not match Tavily's topics: its "financial report" means filings), chunks, answer
    /// (another endpoint), images, auto parameters, and exact match (`includeText` takes one
    /// phrase of at most five words).
    fn supports(&self, request: &SearchRequest) -> SearchArguments {
        let honoured = SearchArguments::of(&[
            SearchArgument::MaxResults,
            SearchArgument::SearchDepth,
            SearchArgument::TimeRange,
            SearchArgument::StartDate,
            SearchArgument::EndDate,
            SearchArgument::IncludeRawContent,
            SearchArgument::IncludeFavicon,
            SearchArgument::IncludeDomains,
            SearchArgument::ExcludeDomains,
            SearchArgument::Country,
        ]);
        // A country without a known code is left out rather than guessed.
        match request.country().map(super::country::iso_code) {
            Some(None) => honoured.without(SearchArguments::of(&[SearchArgument::Country])),
            _ => honoured,
        }
    }

    async fn search(&self, request: &SearchRequest) -> Result<SearchResults, SearchError> {
        let body = wire::search_body(request, chrono::Utc::now())?;
        let answer: wire::SearchBody = self
            .post(
                "search",
                body,
                self.timeouts.search,
                SEARCH_BODY_LIMIT,
                |_| false,
            )
            .await?
            .json("Exa", "search")?;
        Ok(answer.into_domain(request))
    }
}

/// Reads pages with `POST /contents` as plain text. Exa has no equivalent of the extract
/// depth, the markdown format, page images, chunks ranked by a query or the backend time
/// budget, so those are not sent; favicons are returned when asked.
#[async_trait]
impl ExtractProvider for ExaSearchProvider {
    async fn extract(&self, request: &ExtractRequest) -> Result<ExtractResults, SearchError> {
        let answer = self
            .post(
                "contents",
                wire::contents_body(request),
                self.timeouts.extract,
                PAGES_BODY_LIMIT,
                // A URL that could not be fetched can fail the whole call with 422: that is
                // every URL failing, not an error (search-apis-2 §1.3).
                |status| status == StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await?;
        if answer.status() == StatusCode::UNPROCESSABLE_ENTITY {
            let error: wire::ErrorBody = answer.json("Exa", "contents").unwrap_or_default();
            return Ok(error.into_all_failed(request));
        }
        let body: wire::ContentsBody = answer.json("Exa", "contents")?;
        Ok(body.into_domain(request.page().include_favicon()))
    }
}

#[cfg(test)]
mod tests;
