//! The mock search provider: deterministic, clearly labelled results derived from the query, so
//! searchgate works with no search account and tests can assert on what comes back.
//!
//! A query of the form `mock-error:<kind>` makes it fail the way a real backend would, so the
//! error paths can be exercised end to end: `rejected`, `unauthorized`, `rate_limited`, `quota`,
//! `unavailable`, `timeout`.

use std::time::Duration;

use async_trait::async_trait;

use crate::domain::search::{
    SearchError, SearchProvider, SearchRequest, SearchResult, SearchResults, Topic,
};

/// The host of mock result URLs when no domain is requested; `.invalid` never resolves (RFC 2606).
const MOCK_HOST: &str = "mock.searchgate.invalid";

/// Returns made-up results; every title starts with `[mock]`.
#[derive(Debug, Clone, Copy, Default)]
pub struct MockSearchProvider;

#[async_trait]
impl SearchProvider for MockSearchProvider {
    fn name(&self) -> &'static str {
        "mock"
    }

    async fn search(&self, request: &SearchRequest) -> Result<SearchResults, SearchError> {
        let query = request.query().as_str();
        if let Some(error) = query.strip_prefix("mock-error:").and_then(simulated_error) {
            return Err(error);
        }
        let count = request.max_results().get();
        let slug = slug(query);
        let hosts: Vec<String> = request
            .include_domains()
            .iter()
            .map(|d| {
                d.strip_prefix("*.")
                    .map_or_else(|| d.clone(), |rest| format!("www.{rest}"))
            })
            .collect();
        let results = (1..=count)
            .map(|rank| {
                let host = if hosts.is_empty() {
                    MOCK_HOST
                } else {
                    &hosts[(rank - 1) % hosts.len()]
                };
                SearchResult {
                    title: format!("[mock] {query} — result {rank}"),
                    url: format!("https://{host}/{slug}/{rank}"),
                    content: format!(
                        "Mock result {rank} of {count} for \"{query}\" (depth {}, topic {}). \
                         Placeholder text from searchgate's mock search provider, not a web page; \
                         configure a real provider (TAVILY_API_KEY) for real results.",
                        request.depth(),
                        request.topic(),
                    ),
                    score: score(rank),
                    published_date: (request.topic() == Topic::News)
                        .then(|| format!("2026-01-{rank:02}")),
                }
            })
            .collect();
        Ok(SearchResults {
            query: query.to_owned(),
            results,
        })
    }
}

fn simulated_error(kind: &str) -> Option<SearchError> {
    Some(match kind.trim() {
        "rejected" => SearchError::Rejected {
            reason: "the mock backend refuses this query".into(),
        },
        "unauthorized" => SearchError::BackendUnauthorized,
        "rate_limited" => SearchError::RateLimited {
            retry_after: Some(Duration::from_secs(30)),
        },
        "quota" => SearchError::QuotaExhausted,
        "unavailable" => SearchError::Unavailable {
            reason: "mock backend returned 503".into(),
        },
        "timeout" => SearchError::Timeout,
        _ => return None,
    })
}

/// 0.99 for the first result, 0.04 less for each next one.
fn score(rank: usize) -> f64 {
    let hundredths = 99u32.saturating_sub(4 * u32::try_from(rank - 1).unwrap_or(u32::MAX));
    f64::from(hundredths) / 100.0
}

/// A URL-safe path segment from the query: lowercase ASCII words joined by `-`, else a hash.
fn slug(query: &str) -> String {
    let words: Vec<String> = query
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_ascii_lowercase)
        .collect();
    let mut slug = words.join("-");
    slug.truncate(60);
    let slug = slug.trim_end_matches('-').to_owned();
    if slug.is_empty() {
        format!("q-{:016x}", fnv1a(query))
    } else {
        slug
    }
}

/// FNV-1a: a stable hash (unlike `DefaultHasher`, fixed across releases).
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::search::SearchDepth;

    async fn run(request: SearchRequest) -> Result<SearchResults, SearchError> {
        MockSearchProvider.search(&request).await
    }

    #[tokio::test]
    async fn results_are_derived_from_the_query_and_honour_max_results() {
        let request = SearchRequest::new("Rust async runtimes")
            .unwrap()
            .with_max_results(3)
            .unwrap();
        let results = run(request.clone()).await.unwrap();
        assert_eq!(results.results.len(), 3, "max_results is honoured");
        let first = &results.results[0];
        assert_eq!(first.title, "[mock] Rust async runtimes — result 1");
        assert_eq!(
            first.url,
            "https://mock.searchgate.invalid/rust-async-runtimes/1"
        );
        assert!(
            first.content.contains("mock search provider"),
            "clearly marked as mock data"
        );
        assert_eq!(first.score, 0.99);
        assert_eq!(results.results[2].score, 0.91);
        assert_eq!(
            run(request).await.unwrap(),
            results,
            "the same query gives the same results"
        );
    }

    #[tokio::test]
    async fn options_reach_the_results() {
        let request = SearchRequest::new("elections")
            .unwrap()
            .with_topic(Topic::News)
            .with_depth(SearchDepth::Advanced)
            .with_include_domains(&["bbc.co.uk".into(), "*.gov".into()])
            .unwrap();
        let results = run(request).await.unwrap();
        assert_eq!(results.results[0].url, "https://bbc.co.uk/elections/1");
        assert_eq!(results.results[1].url, "https://www.gov/elections/2");
        assert_eq!(
            results.results[0].published_date.as_deref(),
            Some("2026-01-01"),
            "news has dates"
        );
        assert!(
            results.results[0]
                .content
                .contains("depth advanced, topic news")
        );
    }

    #[tokio::test]
    async fn non_ascii_queries_get_a_stable_slug() {
        let results = run(SearchRequest::new("東京 天気").unwrap()).await.unwrap();
        assert_eq!(
            results.results[0].url,
            format!("https://{MOCK_HOST}/q-{:016x}/1", fnv1a("東京 天気"))
        );
    }

    #[tokio::test]
    async fn error_queries_simulate_backend_failures() {
        let err = run(SearchRequest::new("mock-error:rate_limited").unwrap())
            .await
            .unwrap_err();
        assert!(
            matches!(err, SearchError::RateLimited { retry_after: Some(d) } if d == Duration::from_secs(30))
        );
        let err = run(SearchRequest::new("mock-error:quota").unwrap())
            .await
            .unwrap_err();
        assert!(matches!(err, SearchError::QuotaExhausted));
        assert!(
            run(SearchRequest::new("mock-error:nonsense").unwrap())
                .await
                .is_ok(),
            "unknown kinds search normally"
        );
    }
}
