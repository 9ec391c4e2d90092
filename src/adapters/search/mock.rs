//! The mock search provider: deterministic, clearly labelled results derived from the query, so
//! searchgate works with no search account and tests can assert on what comes back.
//!
//! A query of the form `mock-error:<kind>` makes it fail the way a real backend would, so the
//! error paths can be exercised end to end: `rejected`, `unauthorized`, `rate_limited`, `quota`,
//! `unavailable`, `timeout`. The page tools (extract, crawl, map) are mocked too: a URL whose
//! path starts with `/mock-error:<kind>` fails the same way.

use std::time::Duration;

use async_trait::async_trait;

use crate::domain::search::{
    CrawlProvider, CrawlRequest, CrawlResults, ExtractProvider, ExtractRequest, ExtractResults,
    FailedPage, Image, MapProvider, MapRequest, MapResults, Page, PageUrl, SearchError,
    SearchProvider, SearchRequest, SearchResult, SearchResults, SiteScope, Topic, UpstreamUsage,
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
        // Joined from parts rather than `format!`: this runs on every search of the default
        // configuration, and the formatting machinery was most of its cost.
        let mut count_digits = itoa::Buffer::new();
        let count_text = count_digits.format(count);
        let (depth, topic) = (request.depth().as_str(), request.topic().as_str());
        let results = (1..=count)
            .map(|rank| {
                let host = if hosts.is_empty() {
                    MOCK_HOST
                } else {
                    &hosts[(rank - 1) % hosts.len()]
                };
                let mut rank_digits = itoa::Buffer::new();
                let rank_text = rank_digits.format(rank);
                SearchResult {
                    title: ["[mock] ", query, " — result ", rank_text].concat(),
                    url: ["https://", host, "/", &slug, "/", rank_text].concat(),
                    content: [
                        "Mock result ",
                        rank_text,
                        " of ",
                        count_text,
                        " for \"",
                        query,
                        "\" (depth ",
                        depth,
                        ", topic ",
                        topic,
                        "). Placeholder text from searchgate's mock search provider, not a web \
                         page; configure a real provider (TAVILY_API_KEY) for real results.",
                    ]
                    .concat(),
                    score: score(rank),
                    published_date: (request.topic() == Topic::News)
                        .then(|| format!("2026-01-{rank:02}")),
                    raw_content: request.include_raw_content().map(|format| {
                        format!("Full mock text of result {rank} for \"{query}\" ({format}).")
                    }),
                    favicon: request
                        .include_favicon()
                        .then(|| format!("https://{host}/favicon.ico")),
                    images: Vec::new(),
                }
            })
            .collect();
        let images = if request.include_images() {
            (1..=2)
                .map(|n| Image {
                    url: format!("https://{MOCK_HOST}/{slug}/image-{n}.png"),
                    description: request
                        .include_image_descriptions()
                        .then(|| format!("Mock image {n} for \"{query}\"")),
                })
                .collect()
        } else {
            Vec::new()
        };
        Ok(SearchResults {
            query: query.to_owned(),
            answer: request.include_answer().map(|depth| {
                format!("[mock] A {depth} answer to \"{query}\" would be written here.")
            }),
            images,
            results,
            usage: mock_usage(),
        })
    }
}

#[async_trait]
impl ExtractProvider for MockSearchProvider {
    async fn extract(&self, request: &ExtractRequest) -> Result<ExtractResults, SearchError> {
        let mut results = ExtractResults {
            usage: mock_usage(),
            ..ExtractResults::default()
        };
        for url in request.urls() {
            if let Some(error) = url_error(url) {
                return Err(error);
            }
            if url.as_str().contains("mock-fail") {
                results.failed.push(FailedPage {
                    url: url.as_str().to_owned(),
                    error: "the mock backend cannot read this page".to_owned(),
                });
                continue;
            }
            results
                .pages
                .push(mock_page(url.as_str(), request.page().include_favicon()));
        }
        Ok(results)
    }
}

#[async_trait]
impl CrawlProvider for MockSearchProvider {
    async fn crawl(&self, request: &CrawlRequest) -> Result<CrawlResults, SearchError> {
        let scope = request.scope();
        if let Some(error) = url_error(scope.url()) {
            return Err(error);
        }
        let pages = site_urls(scope)
            .iter()
            .map(|url| mock_page(url, request.page().include_favicon()))
            .collect();
        Ok(CrawlResults {
            base_url: scope.url().as_str().to_owned(),
            pages,
            usage: mock_usage(),
        })
    }
}

#[async_trait]
impl MapProvider for MockSearchProvider {
    async fn map(&self, request: &MapRequest) -> Result<MapResults, SearchError> {
        let scope = request.scope();
        if let Some(error) = url_error(scope.url()) {
            return Err(error);
        }
        Ok(MapResults {
            base_url: scope.url().as_str().to_owned(),
            urls: site_urls(scope),
            usage: mock_usage(),
        })
    }
}

fn mock_usage() -> UpstreamUsage {
    UpstreamUsage {
        credits: Some(0.0),
        request_id: Some("mock".to_owned()),
        response_time: None,
        cost_dollars: None,
    }
}

/// `https://host/mock-error:<kind>…` fails like `mock-error:<kind>` queries.
fn url_error(url: &PageUrl) -> Option<SearchError> {
    let (_, after) = url.as_str().split_once("/mock-error:")?;
    simulated_error(after.split(['/', '?', '#']).next().unwrap_or_default())
}

fn mock_page(url: &str, favicon: bool) -> Page {
    Page {
        url: url.to_owned(),
        title: Some(format!("[mock] {url}")),
        raw_content: format!(
            "Mock content of {url}. Placeholder text from searchgate's mock provider, not the \
             real page; configure a real provider (TAVILY_API_KEY) to read pages."
        ),
        images: Vec::new(),
        favicon: favicon.then(|| format!("{}/favicon.ico", url.trim_end_matches('/'))),
    }
}

/// The start URL and `limit - 1` made-up pages below it (at most 10 in all, or the limit).
fn site_urls(scope: &SiteScope) -> Vec<String> {
    let base = scope.url().as_str().trim_end_matches('/');
    let count = usize::from(scope.limit().unwrap_or(10).min(10));
    std::iter::once(base.to_owned())
        .chain((1..count).map(|n| format!("{base}/mock-page-{n}")))
        .collect()
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
    use crate::domain::search::{
        CrawlOptions, ExtractOptions, PageOptions, ScopeOptions, SearchDepth, SearchOptions,
    };

    fn query(text: &str) -> SearchRequest {
        SearchRequest::new(SearchOptions::query(text)).unwrap()
    }

    async fn run(request: SearchRequest) -> Result<SearchResults, SearchError> {
        MockSearchProvider.search(&request).await
    }

    #[tokio::test]
    async fn results_are_derived_from_the_query_and_honour_max_results() {
        let request = SearchRequest::new(SearchOptions {
            max_results: Some(3),
            ..SearchOptions::query("Rust async runtimes")
        })
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
        let request = SearchRequest::new(SearchOptions {
            topic: Some(Topic::News),
            depth: Some(SearchDepth::Advanced),
            include_domains: vec!["bbc.co.uk".into(), "*.gov".into()],
            ..SearchOptions::query("elections")
        })
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
        let results = run(query("東京 天気")).await.unwrap();
        assert_eq!(
            results.results[0].url,
            format!("https://{MOCK_HOST}/q-{:016x}/1", fnv1a("東京 天気"))
        );
    }

    #[tokio::test]
    async fn page_tools_are_deterministic_and_fail_on_request() {
        let extract = ExtractRequest::new(ExtractOptions {
            urls: vec![
                "https://a.example/x".into(),
                "https://a.example/mock-fail".into(),
            ],
            ..ExtractOptions::default()
        })
        .unwrap();
        let read = MockSearchProvider.extract(&extract).await.unwrap();
        assert_eq!(read.pages.len(), 1);
        assert_eq!(read.failed[0].url, "https://a.example/mock-fail");
        let scope = ScopeOptions {
            url: "https://docs.example/".into(),
            limit: Some(3),
            ..ScopeOptions::default()
        };
        let map = MockSearchProvider
            .map(&MapRequest::new(scope.clone()).unwrap())
            .await
            .unwrap();
        assert_eq!(
            map.urls,
            [
                "https://docs.example",
                "https://docs.example/mock-page-1",
                "https://docs.example/mock-page-2"
            ]
        );
        let crawl = MockSearchProvider
            .crawl(
                &CrawlRequest::new(CrawlOptions {
                    scope,
                    page: PageOptions::default(),
                })
                .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(crawl.pages.len(), 3, "the limit is honoured");
        let failing = MapRequest::new(ScopeOptions {
            url: "https://docs.example/mock-error:quota".into(),
            ..ScopeOptions::default()
        })
        .unwrap();
        assert!(matches!(
            MockSearchProvider.map(&failing).await,
            Err(SearchError::QuotaExhausted)
        ));
    }

    #[tokio::test]
    async fn error_queries_simulate_backend_failures() {
        let err = run(query("mock-error:rate_limited")).await.unwrap_err();
        assert!(
            matches!(err, SearchError::RateLimited { retry_after: Some(d) } if d == Duration::from_secs(30))
        );
        let err = run(query("mock-error:quota")).await.unwrap_err();
        assert!(matches!(err, SearchError::QuotaExhausted));
        assert!(
            run(query("mock-error:nonsense")).await.is_ok(),
            "unknown kinds search normally"
        );
    }
}
