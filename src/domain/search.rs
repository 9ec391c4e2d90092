//! Web search and page tools: the requests a caller may make, the results a provider returns,
//! the errors that callers handle differently, the ports (`SearchProvider` and the optional
//! capabilities `ExtractProvider`, `CrawlProvider`, `MapProvider`), and the core policy
//! (cache, rate limit, retries, deadlines) in front of them.

mod arguments;
mod backends;
mod page_tools;
mod request;
mod results;
mod service;

use std::time::Duration;

use super::{budget::BudgetScope, time::Timestamp};

use async_trait::async_trait;

pub use arguments::{SearchArgument, SearchArguments};
pub use backends::{Backends, BackendsError, Capability, Fallback, WebBackend};
pub use page_tools::{
    CrawlOptions, CrawlRequest, ExtractDepth, ExtractOptions, ExtractRequest, MapRequest,
    PageOptions, PageReading, PageUrl, ScopeOptions, SiteScope,
};
pub use request::{
    AnswerDepth, ContentFormat, Date, InvalidInput, MaxResults, Query, SearchDepth, SearchOptions,
    SearchRequest, TimeRange, Topic,
};
pub use results::{
    CallCost, CrawlResults, ExtractResults, FailedPage, Image, MapResults, Page, Reported,
    SearchResult, SearchResults, UpstreamUsage,
};
pub use service::{CallStats, Caller, Deadlines, SearchService, Served, ServicePolicy};

/// A search backend (Tavily, the mock, or one a library user supplies).
///
/// Contract:
/// - `search` receives a request that has already passed every domain rule; it MUST return at
///   most `request.max_results()` results.
/// - It MUST map every upstream failure to the [`SearchError`] variant that describes it
///   (HTTP 429 → `RateLimited`, a rejected API key → `BackendUnauthorized`, 5xx and connection
///   errors → `Unavailable`, …) and MUST NOT panic. `Unexpected` is for what fits no variant.
/// - It MUST NOT forward the MCP client's credentials; it authenticates with its own.
#[async_trait]
pub trait SearchProvider: Send + Sync + 'static {
    /// A short, stable name for logs, audit rows and results (`"mock"`, `"tavily"`).
    fn name(&self) -> &'static str;

    /// The optional arguments this backend honours for `request` (some it honours only for
    /// some values: a country it has a code for, domain filters that fit its query limit); the
    /// core reports the others the caller set as unsupported (or refuses them when the caller
    /// named this backend), and the backend leaves them out. Every one by default.
    fn supports(&self, request: &SearchRequest) -> SearchArguments {
        let _ = request;
        SearchArguments::ALL
    }

    /// Runs one search.
    ///
    /// # Errors
    /// A [`SearchError`] naming what went wrong upstream.
    async fn search(&self, request: &SearchRequest) -> Result<SearchResults, SearchError>;
}

/// Reads the content of given pages (Tavily extract). Optional: a backend without it simply
/// does not offer the `web_extract` tool.
///
/// Contract: as [`SearchProvider`]; URLs that cannot be read are reported in
/// [`ExtractResults::failed`], not as an error, unless the whole call failed.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait ExtractProvider: Send + Sync + 'static {
    /// Reads the pages.
    ///
    /// # Errors
    /// A [`SearchError`] naming what went wrong upstream.
    async fn extract(&self, request: &ExtractRequest) -> Result<ExtractResults, SearchError>;
}

/// Follows links from a page and reads what it finds (Tavily crawl). Optional.
///
/// Contract: as [`SearchProvider`]; it MUST NOT return more pages than the scope's limit.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait CrawlProvider: Send + Sync + 'static {
    /// Crawls the site.
    ///
    /// # Errors
    /// A [`SearchError`] naming what went wrong upstream.
    async fn crawl(&self, request: &CrawlRequest) -> Result<CrawlResults, SearchError>;
}

/// Lists the URLs of a site without reading the pages (Tavily map). Optional.
///
/// Contract: as [`SearchProvider`]; it MUST NOT return more URLs than the scope's limit.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait MapProvider: Send + Sync + 'static {
    /// Maps the site.
    ///
    /// # Errors
    /// A [`SearchError`] naming what went wrong upstream.
    async fn map(&self, request: &MapRequest) -> Result<MapResults, SearchError>;
}

#[cfg(test)]
mockall::mock! {
    /// A programmable `SearchProvider` for unit tests (not the mock *adapter*, which is
    /// `adapters::search::MockSearchProvider`).
    pub SearchPort {}

    #[async_trait]
    impl SearchProvider for SearchPort {
        fn name(&self) -> &'static str;
        async fn search(&self, request: &SearchRequest) -> Result<SearchResults, SearchError>;
    }
}

/// Why a search failed; each variant is handled differently by callers (retry, tell the
/// operator, tell the model to change its request).
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    /// The backend refused the request itself (HTTP 400); the model may rephrase it.
    #[error("the search backend rejected the request: {reason}")]
    Rejected {
        /// The backend's own explanation.
        reason: String,
    },
    /// The backend refused searchgate's own credentials; only the operator can fix this.
    #[error("the search backend rejected searchgate's API key")]
    BackendUnauthorized,
    /// The backend throttled searchgate; retry later.
    #[error("the search backend is rate limiting searchgate")]
    RateLimited {
        /// How long the backend asked callers to wait, when it said.
        retry_after: Option<Duration>,
    },
    /// The backend's plan or pay-as-you-go credits are used up.
    #[error("the search backend's credits are exhausted")]
    QuotaExhausted,
    /// The backend's plan does not include this call; only the operator can fix this.
    #[error("the search backend's plan does not cover this call: {reason}")]
    NotInPlan {
        /// The backend's own explanation.
        reason: String,
    },
    /// The backend failed or could not be reached (5xx, connection error).
    #[error("the search backend is unavailable: {reason}")]
    Unavailable {
        /// What failed, for logs; contains no secrets.
        reason: String,
    },
    /// The backend did not answer within the deadline.
    #[error("the search backend did not answer in time")]
    Timeout,
    /// This caller has used up its own allowance of calls (searchgate's per-principal limit,
    /// not the backend's); retry after the given time.
    #[error("too many calls; retry in {} s", retry_after.as_secs().max(1))]
    TooManyCalls {
        /// When the next call will be accepted.
        retry_after: Duration,
    },
    /// A daily budget (this principal's, or the deployment's) is spent.
    #[error("the daily {} budget is spent", scope.as_str())]
    BudgetExhausted {
        /// Which budget.
        scope: BudgetScope,
        /// When it renews (the next UTC midnight).
        resets_at: Timestamp,
    },
    /// Several backends were tried and each failed; each one's reason, in the order tried.
    #[error("every search backend failed: {}", describe(failures))]
    EveryBackendFailed {
        /// Who failed and how.
        failures: Vec<BackendFailure>,
    },
    /// Anything else; logged in full, shown to callers as a generic failure.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// One backend's failure, within [`SearchError::EveryBackendFailed`].
#[derive(Debug)]
pub struct BackendFailure {
    /// The backend's name.
    pub provider: &'static str,
    /// What went wrong there.
    pub error: SearchError,
}

fn describe(failures: &[BackendFailure]) -> String {
    failures
        .iter()
        .map(|f| format!("{} ({})", f.provider, f.error.code()))
        .collect::<Vec<_>>()
        .join(", ")
}

impl SearchError {
    /// A stable, machine-readable code for tool results and audit rows.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Rejected { .. } => "upstream_rejected",
            Self::BackendUnauthorized => "upstream_unauthorized",
            Self::RateLimited { .. } => "upstream_rate_limited",
            Self::QuotaExhausted => "upstream_quota_exhausted",
            Self::NotInPlan { .. } => "upstream_not_in_plan",
            Self::Unavailable { .. } => "upstream_unavailable",
            Self::Timeout => "upstream_timeout",
            Self::TooManyCalls { .. } => "rate_limited",
            Self::EveryBackendFailed { .. } => "upstream_all_failed",
            Self::BudgetExhausted { .. } => "budget_exhausted",
            Self::Unexpected(_) => "internal_error",
        }
    }

    /// Whether trying the same request again soon may succeed: the backend failed or was slow,
    /// not the request or the account.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable { .. } | Self::Timeout)
    }

    /// Whether the backend will keep failing every call until its operator acts (a refused
    /// key, a plan that lacks the call, spent credits): the backend is then left alone for a
    /// while.
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            Self::BackendUnauthorized | Self::QuotaExhausted | Self::NotInPlan { .. }
        )
    }

    /// Whether another backend may answer where this one failed: not when the request itself
    /// was refused (another backend would refuse it too, or answer something else) or when
    /// the caller is over its own allowance.
    pub fn falls_back(&self) -> bool {
        !matches!(
            self,
            Self::Rejected { .. } | Self::TooManyCalls { .. } | Self::BudgetExhausted { .. }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_search_error_has_a_distinct_code() {
        let errors = [
            SearchError::Rejected {
                reason: String::new(),
            },
            SearchError::BackendUnauthorized,
            SearchError::RateLimited { retry_after: None },
            SearchError::QuotaExhausted,
            SearchError::NotInPlan {
                reason: String::new(),
            },
            SearchError::Unavailable {
                reason: String::new(),
            },
            SearchError::Timeout,
            SearchError::TooManyCalls {
                retry_after: Duration::from_secs(1),
            },
            SearchError::EveryBackendFailed { failures: vec![] },
            SearchError::BudgetExhausted {
                scope: BudgetScope::Total,
                resets_at: Timestamp::from_unix_seconds(0),
            },
            SearchError::Unexpected(anyhow::anyhow!("x")),
        ];
        let mut codes: Vec<_> = errors.iter().map(SearchError::code).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(
            codes.len(),
            errors.len(),
            "codes must tell the variants apart"
        );
    }
}
