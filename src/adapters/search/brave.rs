//! The Brave Search backend (web search only) over `GET /res/v1/web/search`. It only
//! translates: domain requests into query strings holding the options the caller set, answers
//! into domain results, and HTTP failures into `SearchError` variants (classified on Brave's
//! `error.code` first, its status second: search-apis-2 §2.3). Retries, deadlines, caching and
//! rate limits are core policy.
//!
//! Authentication is `X-Subscription-Token: <searchgate's key>` and nothing else.

mod wire;

use async_trait::async_trait;
use reqwest::{
    Client, StatusCode,
    header::{ACCEPT, HeaderMap, HeaderValue, InvalidHeaderValue},
};
use url::Url;

use super::upstream;
use crate::domain::search::{
    Deadlines, SearchArgument, SearchArguments, SearchError, SearchOptions, SearchProvider,
    SearchRequest, SearchResults,
};

/// Largest search answer accepted (20 results with snippets are far smaller).
const SEARCH_BODY_LIMIT: usize = 8 * 1024 * 1024;

/// Brave's key header.
const TOKEN_HEADER: &str = "x-subscription-token";

/// Where the operator sets the key, for messages that ask them to fix it.
const KEY_SETTING: &str = "SEARCHGATE_SEARCH__BRAVE__API_KEY or BRAVE_API_KEY";

/// Brave's web search endpoint.
pub struct BraveSearchProvider {
    http: Client,
    /// `{base}/res/v1/web/search`.
    endpoint: Url,
    /// The key, marked sensitive so reqwest never prints it.
    token: HeaderValue,
    /// Per-tool request timeouts (only `search` applies).
    timeouts: Deadlines,
}

impl std::fmt::Debug for BraveSearchProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BraveSearchProvider")
            .field("endpoint", &self.endpoint.as_str())
            .field("token", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl BraveSearchProvider {
    /// A provider calling `base_url` (normally `https://api.search.brave.com`) with `api_key`,
    /// each search bounded by `timeouts.search`.
    ///
    /// # Errors
    /// When `api_key` cannot be sent in a header (control characters, non-ASCII).
    pub fn new(
        base_url: &Url,
        api_key: &str,
        timeouts: Deadlines,
        http: Client,
    ) -> Result<Self, InvalidHeaderValue> {
        let mut token = HeaderValue::from_str(api_key)?;
        token.set_sensitive(true);
        let mut endpoint = base_url.clone();
        endpoint.set_query(None);
        endpoint.set_fragment(None);
        let path = format!(
            "{}/res/v1/web/search",
            endpoint.path().trim_end_matches('/')
        );
        endpoint.set_path(&path);
        Ok(Self {
            http,
            endpoint,
            token,
            timeouts,
        })
    }

    /// Checks the key and plan for `searchgate check-config` with one real one-result search
    /// for "searchgate": Brave has no free endpoint that checks a key, so this spends one
    /// request of the plan. Reports the plan's rate limits when Brave sends them.
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
        let checked = match self.get(&request).await {
            Ok(answer) => answer
                .json::<wire::SearchBody>("Brave", "web search")
                .map(|_| answer),
            Err(error) => Err(error),
        };
        match checked {
            Ok(answer) => Ok(format!(
                "brave answered a one-result search{}",
                rate_limits(answer.headers())
                    .map(|limits| format!(" (plan rate limits: {limits})"))
                    .unwrap_or_default()
            )),
            Err(SearchError::BackendUnauthorized) => Err(format!(
                "Brave refused the API key; set a valid key in {KEY_SETTING}"
            )),
            Err(error @ (SearchError::NotInPlan { .. } | SearchError::QuotaExhausted)) => Err(
                format!("{error}; check the plan of the key in {KEY_SETTING}"),
            ),
            Err(error) => Err(format!("Brave's web search failed: {error}")),
        }
    }

    /// Sends the search and returns Brave's answer, mapping every failure.
    #[tracing::instrument(skip_all)]
    async fn get(&self, request: &SearchRequest) -> Result<upstream::Answer, SearchError> {
        let today = chrono::Utc::now()
            .date_naive()
            .format("%Y-%m-%d")
            .to_string();
        let mut url = self.endpoint.clone();
        url.query_pairs_mut()
            .extend_pairs(wire::search_params(request, &today));
        let request = self
            .http
            .get(url)
            .header(TOKEN_HEADER, self.token.clone())
            .header(ACCEPT, "application/json")
            .timeout(self.timeouts.search);
        upstream::send(request, "Brave", SEARCH_BODY_LIMIT, status_error).await
    }
}

/// The plan's limits from `X-RateLimit-Policy` (`1;w=1, 15000;w=2592000` → `1/s, 15000/month`),
/// else `X-RateLimit-Limit` as sent.
fn rate_limits(headers: &HeaderMap) -> Option<String> {
    let header = |name| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.trim().is_empty())
    };
    let Some(policy) = header("x-ratelimit-policy") else {
        return header("x-ratelimit-limit").and_then(upstream::one_line);
    };
    let windows: Vec<String> = policy
        .split(',')
        .map(|entry| {
            let mut parts = entry.trim().split(';');
            let limit = parts.next().unwrap_or("").trim();
            let window = parts
                .find_map(|p| p.trim().strip_prefix("w="))
                .map(str::trim);
            match window {
                Some("1") => format!("{limit}/s"),
                Some("60") => format!("{limit}/min"),
                Some("3600") => format!("{limit}/h"),
                Some("86400") => format!("{limit}/day"),
                Some("2592000") => format!("{limit}/month"),
                Some(secs) => format!("{limit} per {secs} s"),
                None => limit.to_owned(),
            }
        })
        .collect();
    upstream::one_line(&windows.join(", "))
}

/// Maps a failure to the domain error it means: Brave's `error.code` first (its statuses are
/// not reliable: a bad key has come as 401 and as 422), then the status.
fn status_error(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> SearchError {
    let error = wire::ErrorBody::parse(body);
    let reason = || {
        error
            .reason()
            .unwrap_or_else(|| upstream::status_reason("Brave", status))
    };
    let code = error.code();
    if code == "SUBSCRIPTION_TOKEN_INVALID"
        || matches!(status.as_u16(), 401 | 403)
        || error.names_key_header()
    {
        return SearchError::BackendUnauthorized;
    }
    if code == "OPTION_NOT_IN_PLAN" {
        return SearchError::NotInPlan { reason: reason() };
    }
    if code == "RATE_LIMITED" || status == StatusCode::TOO_MANY_REQUESTS {
        if error.quota_spent() {
            return SearchError::QuotaExhausted;
        }
        // `Retry-After` is not documented; the first `X-RateLimit-Reset` entry is the
        // per-second window's (search-apis-2 §2.2).
        let reset = || {
            let first = headers
                .get("x-ratelimit-reset")?
                .to_str()
                .ok()?
                .split(',')
                .next()?;
            upstream::seconds(first)
        };
        return SearchError::RateLimited {
            retry_after: upstream::retry_after(headers).or_else(reset),
        };
    }
    match status.as_u16() {
        // A parameter Brave could not validate is this request's fault (the key header was
        // handled above): another request may pass, so Brave is not set aside for everyone.
        // Any other 422 means the key's plan does not cover the call, which only the operator
        // can change (issue 16).
        422 if code == "VALIDATION" || error.names_query_parameter() => {
            SearchError::Rejected { reason: reason() }
        }
        422 => SearchError::NotInPlan { reason: reason() },
        400 => SearchError::Rejected { reason: reason() },
        500..=599 => SearchError::Unavailable {
            reason: upstream::status_reason("Brave", status),
        },
        _ => SearchError::Unexpected(anyhow::anyhow!(upstream::status_reason("Brave", status))),
    }
}

#[async_trait]
impl SearchProvider for BraveSearchProvider {
    fn name(&self) -> &'static str {
        "brave"
    }

    /// `max_results` → `count`; `time_range`, `start_date`, `end_date` → `freshness`;
    /// `country` → `country` (ISO code); domains → `site:` operators in `q`; `exact_match` →
    /// Brave matches quoted phrases verbatim; `include_favicon` → `meta_url.favicon`. Not
    /// honoured: depth, topic (news is another endpoint), chunks, answer, raw content,
    /// images and auto parameters, which this endpoint has no equivalent for.
    fn supports(&self, request: &SearchRequest) -> SearchArguments {
        let honoured = SearchArguments::of(&[
            SearchArgument::MaxResults,
            SearchArgument::TimeRange,
            SearchArgument::StartDate,
            SearchArgument::EndDate,
            SearchArgument::Country,
            SearchArgument::IncludeDomains,
            SearchArgument::ExcludeDomains,
            SearchArgument::ExactMatch,
            SearchArgument::IncludeFavicon,
        ]);
        let mut unable = Vec::new();
        // A country without a known code is left out rather than guessed.
        if matches!(request.country().map(super::country::iso_code), Some(None)) {
            unable.push(SearchArgument::Country);
        }
        if !wire::domains_fit(request) {
            unable.extend([
                SearchArgument::IncludeDomains,
                SearchArgument::ExcludeDomains,
            ]);
        }
        honoured.without(SearchArguments::of(&unable))
    }

    async fn search(&self, request: &SearchRequest) -> Result<SearchResults, SearchError> {
        let body: wire::SearchBody = self.get(request).await?.json("Brave", "web search")?;
        Ok(body.into_domain(request))
    }
}

#[cfg(test)]
mod tests;
