//! Web search: the request a caller may make, the results a provider returns, the errors that
//! callers handle differently, and the `SearchProvider` port.

mod request;
mod results;

use std::time::Duration;

use async_trait::async_trait;

pub use request::{InvalidInput, MaxResults, Query, SearchDepth, SearchRequest, TimeRange, Topic};
pub use results::{SearchResult, SearchResults};

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

    /// Runs one search.
    ///
    /// # Errors
    /// A [`SearchError`] naming what went wrong upstream.
    async fn search(&self, request: &SearchRequest) -> Result<SearchResults, SearchError>;
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
    /// The backend failed or could not be reached (5xx, connection error).
    #[error("the search backend is unavailable: {reason}")]
    Unavailable {
        /// What failed, for logs; contains no secrets.
        reason: String,
    },
    /// The backend did not answer within the deadline.
    #[error("the search backend did not answer in time")]
    Timeout,
    /// Anything else; logged in full, shown to callers as a generic failure.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl SearchError {
    /// A stable, machine-readable code for tool results and audit rows.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Rejected { .. } => "upstream_rejected",
            Self::BackendUnauthorized => "upstream_unauthorized",
            Self::RateLimited { .. } => "upstream_rate_limited",
            Self::QuotaExhausted => "upstream_quota_exhausted",
            Self::Unavailable { .. } => "upstream_unavailable",
            Self::Timeout => "upstream_timeout",
            Self::Unexpected(_) => "internal_error",
        }
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
            SearchError::Unavailable {
                reason: String::new(),
            },
            SearchError::Timeout,
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
