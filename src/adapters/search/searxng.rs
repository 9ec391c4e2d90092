//! The SearXNG backend (web search only) over an instance's JSON API, `GET /search?format=json`.
//! It only translates: domain requests into query strings, answers into domain results, and
//! failures into `SearchError` variants, including SearXNG's way of failing with 200: no hit
//! and every engine listed as unresponsive. Retries, deadlines, caching and rate limits are
//! core policy.
//!
//! SearXNG has no API key: keep the instance on a private network. Its base URL is never
//! shown to callers (a failure names SearXNG, not the address).

mod wire;

use async_trait::async_trait;
use reqwest::{
    Client, StatusCode,
    header::{ACCEPT, HeaderMap},
};
use url::Url;

use super::upstream;
use crate::domain::search::{
    Deadlines, SearchArgument, SearchArguments, SearchError, SearchOptions, SearchProvider,
    SearchRequest, SearchResults,
};

/// Largest search answer accepted (a page of hits with snippets is far smaller).
const SEARCH_BODY_LIMIT: usize = 8 * 1024 * 1024;

/// Where the operator sets the instance, for messages that ask them to fix it.
const URL_SETTING: &str = "SEARCHGATE_SEARCH__SEARXNG__BASE_URL or SEARXNG_URL";

/// Why a SearXNG instance answers 403 to `format=json`.
const JSON_OFF: &str = "this SearXNG instance has JSON output switched off; add json to \
                        search.formats in its settings.yml";

/// A SearXNG instance's search endpoint.
pub struct SearxngSearchProvider {
    http: Client,
    /// `{base}/search`, possibly with credentials in its user information.
    endpoint: Url,
    /// Per-tool request timeouts (only `search` applies).
    timeouts: Deadlines,
}

impl std::fmt::Debug for SearxngSearchProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SearxngSearchProvider")
            .field("endpoint", &redacted(&self.endpoint))
            .finish_non_exhaustive()
    }
}

/// `url` without its password, for logs and messages.
fn redacted(url: &Url) -> String {
    let mut shown = url.clone();
    if shown.password().is_some() {
        // Cannot fail: a URL with a password has a host.
        let _ = shown.set_password(Some("redacted"));
    }
    shown.into()
}

impl SearxngSearchProvider {
    /// A provider calling the instance at `base_url` (such as `http://searxng:8080`), each
    /// search bounded by `timeouts.search`.
    pub fn new(base_url: &Url, timeouts: Deadlines, http: Client) -> Self {
        let mut endpoint = base_url.clone();
        endpoint.set_query(None);
        endpoint.set_fragment(None);
        let path = format!("{}/search", endpoint.path().trim_end_matches('/'));
        endpoint.set_path(&path);
        Self {
            http,
            endpoint,
            timeouts,
        }
    }

    /// Checks the instance for `searchgate check-config` with one real search for
    /// "searchgate": SearXNG has no status endpoint that says whether JSON output is on, and
    /// a search also shows whether its engines answer.
    ///
    /// # Errors
    /// A sentence for the operator naming what to fix.
    #[tracing::instrument(skip_all)]
    pub async fn probe(&self) -> Result<String, String> {
        let request = SearchRequest::new(SearchOptions::query("searchgate"))
            .expect("the probe's request is valid");
        let at = redacted(&self.endpoint);
        match self.search(&request).await {
            Ok(results) => {
                let hits = results.results.len();
                let noun = if hits == 1 { "result" } else { "results" };
                Ok(format!(
                    "searxng answered a search with {hits} {noun} (JSON output is on)"
                ))
            }
            Err(SearchError::NotInPlan { .. }) => Err(format!(
                "{at} refused JSON output: add json to search.formats in the instance's \
                 settings.yml, or point {URL_SETTING} at an instance that has it"
            )),
            Err(error) => Err(format!(
                "searching with {at} failed ({error}); check {URL_SETTING}"
            )),
        }
    }
}

/// Maps a failure to the domain error it means.
fn status_error(status: StatusCode, headers: &HeaderMap, _body: &[u8]) -> SearchError {
    match status.as_u16() {
        // The instance refuses `format=json` with 403 unless its settings allow it. No call
        // will succeed until its operator changes that, so it counts as a permanent refusal
        // of this kind of call (the backend is then left alone), not as a bad key.
        403 => SearchError::NotInPlan {
            reason: JSON_OFF.to_owned(),
        },
        400 => SearchError::Rejected {
            reason: upstream::status_reason("SearXNG", status),
        },
        // The instance's limiter (botdetection) throttles with 429.
        429 => SearchError::RateLimited {
            retry_after: upstream::retry_after(headers),
        },
        500..=599 => SearchError::Unavailable {
            reason: upstream::status_reason("SearXNG", status),
        },
        _ => SearchError::Unexpected(anyhow::anyhow!(upstream::status_reason("SearXNG", status))),
    }
}

#[async_trait]
impl SearchProvider for SearxngSearchProvider {
    fn name(&self) -> &'static str {
        "searxng"
    }

    /// `max_results` → the hits are cut (SearXNG has no count parameter); `time_range` →
    /// `time_range`. Not honoured: dates (no such filter), domains and exact phrases (the
    /// query goes to many engines, and not all of them honour `site:` or quotes), country
    /// (SearXNG takes a language, not a region), topic (its categories are not Tavily's), and
    /// everything else SearXNG has no equivalent for.
    fn supports(&self, _: &SearchRequest) -> SearchArguments {
        SearchArguments::of(&[SearchArgument::MaxResults, SearchArgument::TimeRange])
    }

    #[tracing::instrument(skip_all)]
    async fn search(&self, request: &SearchRequest) -> Result<SearchResults, SearchError> {
        let mut url = self.endpoint.clone();
        url.query_pairs_mut()
            .extend_pairs(wire::search_params(request));
        let call = self
            .http
            .get(url)
            .header(ACCEPT, "application/json")
            .timeout(self.timeouts.search);
        let body: wire::SearchBody =
            upstream::send(call, "SearXNG", SEARCH_BODY_LIMIT, status_error)
                .await?
                .json("SearXNG", "search")?;
        body.into_domain(request)
    }
}

#[cfg(test)]
mod tests;
