//! The core policy in front of any backend, applied once for every tool: a per-caller rate
//! limit, a result cache keyed by the normalized request, retries of transient failures with
//! jittered backoff, and a deadline per tool. Adapters only translate; what to do about a
//! failure is decided here, so the mock and every future backend get the same behaviour.

use std::{
    future::Future,
    num::NonZeroU32,
    sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    },
    time::Duration,
};

use moka::future::Cache;

use super::{
    CrawlRequest, CrawlResults, ExtractRequest, ExtractResults, MapRequest, MapResults,
    SearchError, SearchRequest, SearchResults, WebBackend,
};
use crate::domain::rate_limit::KeyedLimiter;

/// Most upstream attempts per call: the first and one retry.
const MAX_ATTEMPTS: u32 = 2;
/// Longest `retry-after` that is waited out inside a call rather than reported.
const MAX_INLINE_RETRY_AFTER: Duration = Duration::from_secs(2);

/// How long each tool may take in all, retries included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadlines {
    /// `web_search`.
    pub search: Duration,
    /// `web_extract`.
    pub extract: Duration,
    /// `web_crawl`.
    pub crawl: Duration,
    /// `web_map`.
    pub map: Duration,
}

impl Default for Deadlines {
    fn default() -> Self {
        Self {
            search: Duration::from_secs(30),
            extract: Duration::from_secs(60),
            crawl: Duration::from_secs(150),
            map: Duration::from_secs(150),
        }
    }
}

/// The knobs of [`SearchService`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServicePolicy {
    /// Per-tool deadlines.
    pub deadlines: Deadlines,
    /// How long a result is reused; zero turns the cache off.
    pub cache_ttl: Duration,
    /// Most bytes of results the cache holds (approximately: the text it stores).
    pub cache_max_bytes: u64,
    /// Calls each caller may make per minute; zero turns the limit off.
    pub calls_per_minute: u32,
    /// The base of the backoff before a retry; the actual wait is between one and two times it.
    pub retry_backoff: Duration,
}

impl Default for ServicePolicy {
    fn default() -> Self {
        Self {
            deadlines: Deadlines::default(),
            cache_ttl: Duration::from_secs(600),
            cache_max_bytes: 64 * 1024 * 1024,
            calls_per_minute: 60,
            retry_backoff: Duration::from_millis(250),
        }
    }
}

/// Who is calling, for the rate limit.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Caller {
    /// A verified principal: its subject and OAuth client.
    Principal {
        /// The token's subject.
        subject: String,
        /// The token's client, when it names one.
        client_id: Option<String>,
    },
    /// Nobody in particular (authentication off): one shared allowance.
    Anonymous,
}

impl Caller {
    /// The principal's subject, when there is one.
    pub fn subject(&self) -> Option<&str> {
        match self {
            Self::Principal { subject, .. } => Some(subject),
            Self::Anonymous => None,
        }
    }
}

/// What happened on the way to an answer, for the audit row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CallStats {
    /// The backend's name.
    pub provider: &'static str,
    /// Whether the answer came from the cache.
    pub cache_hit: bool,
    /// Upstream requests made (0 for a cache hit or a refused call).
    pub attempts: u32,
}

/// An answer and how it was obtained.
#[derive(Debug)]
pub struct Served<T> {
    /// The results (shared with the cache) or why there are none.
    pub result: Result<Arc<T>, SearchError>,
    /// How it was obtained.
    pub stats: CallStats,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum CacheKey {
    Search(SearchRequest),
    Extract(ExtractRequest),
    Crawl(CrawlRequest),
    Map(MapRequest),
}

/// How one kind of result goes into and comes out of the cache.
type CacheSlot<T> = (fn(Arc<T>) -> Cached, fn(Cached) -> Option<Arc<T>>);

#[derive(Debug, Clone)]
enum Cached {
    Search(Arc<SearchResults>),
    Extract(Arc<ExtractResults>),
    Crawl(Arc<CrawlResults>),
    Map(Arc<MapResults>),
}

impl Cached {
    /// Roughly the bytes an entry holds: its text, which dominates.
    fn weight(&self) -> u32 {
        let bytes: usize = match self {
            Self::Search(r) => r
                .results
                .iter()
                .map(|h| {
                    h.title.len()
                        + h.url.len()
                        + h.content.len()
                        + h.raw_content.as_ref().map_or(0, String::len)
                })
                .sum::<usize>()
                .saturating_add(r.answer.as_ref().map_or(0, String::len)),
            Self::Extract(r) => r
                .pages
                .iter()
                .map(|p| p.url.len() + p.raw_content.len())
                .sum(),
            Self::Crawl(r) => r
                .pages
                .iter()
                .map(|p| p.url.len() + p.raw_content.len())
                .sum(),
            Self::Map(r) => r.urls.iter().map(String::len).sum(),
        };
        u32::try_from(bytes.saturating_add(256)).unwrap_or(u32::MAX)
    }
}

/// The web tools' core: every tool call goes through here.
pub struct SearchService {
    backend: WebBackend,
    policy: ServicePolicy,
    cache: Option<Cache<CacheKey, Cached>>,
    limiter: Option<KeyedLimiter<Caller>>,
}

impl SearchService {
    /// Wraps `backend` with `policy`.
    pub fn new(backend: WebBackend, policy: ServicePolicy) -> Self {
        let cache = (!policy.cache_ttl.is_zero() && policy.cache_max_bytes > 0).then(|| {
            Cache::builder()
                .max_capacity(policy.cache_max_bytes)
                .weigher(|_key: &CacheKey, value: &Cached| value.weight())
                .time_to_live(policy.cache_ttl)
                .build()
        });
        let limiter = NonZeroU32::new(policy.calls_per_minute).map(KeyedLimiter::per_minute);
        Self {
            backend,
            policy,
            cache,
            limiter,
        }
    }

    /// The backend's capabilities.
    pub fn backend(&self) -> &WebBackend {
        &self.backend
    }

    /// Runs a search.
    pub async fn search(&self, caller: &Caller, request: &SearchRequest) -> Served<SearchResults> {
        let provider = self.backend.search.clone();
        self.serve(
            caller,
            CacheKey::Search(request.normalized()),
            self.policy.deadlines.search,
            (Cached::Search, |c| match c {
                Cached::Search(r) => Some(r),
                _ => None,
            }),
            || async {
                let mut results = provider.search(request).await?;
                results.drop_duplicate_pages();
                Ok(results)
            },
        )
        .await
    }

    /// Reads pages; `None` when the backend cannot.
    pub async fn extract(
        &self,
        caller: &Caller,
        request: &ExtractRequest,
    ) -> Option<Served<ExtractResults>> {
        let provider = self.backend.extract.clone()?;
        Some(
            self.serve(
                caller,
                CacheKey::Extract(request.clone()),
                self.policy.deadlines.extract,
                (Cached::Extract, |c| match c {
                    Cached::Extract(r) => Some(r),
                    _ => None,
                }),
                || provider.extract(request),
            )
            .await,
        )
    }

    /// Crawls a site; `None` when the backend cannot.
    pub async fn crawl(
        &self,
        caller: &Caller,
        request: &CrawlRequest,
    ) -> Option<Served<CrawlResults>> {
        let provider = self.backend.crawl.clone()?;
        Some(
            self.serve(
                caller,
                CacheKey::Crawl(request.clone()),
                self.policy.deadlines.crawl,
                (Cached::Crawl, |c| match c {
                    Cached::Crawl(r) => Some(r),
                    _ => None,
                }),
                || provider.crawl(request),
            )
            .await,
        )
    }

    /// Maps a site; `None` when the backend cannot.
    pub async fn map(&self, caller: &Caller, request: &MapRequest) -> Option<Served<MapResults>> {
        let provider = self.backend.map.clone()?;
        Some(
            self.serve(
                caller,
                CacheKey::Map(request.clone()),
                self.policy.deadlines.map,
                (Cached::Map, |c| match c {
                    Cached::Map(r) => Some(r),
                    _ => None,
                }),
                || provider.map(request),
            )
            .await,
        )
    }

    /// Rate limit → cache → attempts within the deadline → cache the success. Concurrent
    /// identical calls are coalesced: one goes upstream, the others wait for its answer.
    async fn serve<T, F, Fut>(
        &self,
        caller: &Caller,
        key: CacheKey,
        deadline: Duration,
        (wrap, unwrap): CacheSlot<T>,
        call: F,
    ) -> Served<T>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, SearchError>>,
    {
        let mut stats = CallStats {
            provider: self.backend.name(),
            ..CallStats::default()
        };
        if let Err(retry_after) = self.admit(caller) {
            return Served {
                result: Err(SearchError::TooManyCalls { retry_after }),
                stats,
            };
        }
        let attempts = AtomicU32::new(0);
        let upstream = async {
            tokio::time::timeout(deadline, self.attempt(&call, &attempts))
                .await
                .unwrap_or(Err(SearchError::Timeout))
        };
        let result = match &self.cache {
            None => upstream.await.map(Arc::new),
            Some(cache) => {
                let entry = cache
                    .entry(key)
                    .or_try_insert_with(async { upstream.await.map(|v| wrap(Arc::new(v))) })
                    .await;
                match entry {
                    Ok(entry) => {
                        // Not fresh: another call (earlier, or concurrent) paid for it.
                        stats.cache_hit = !entry.is_fresh();
                        unwrap(entry.into_value()).ok_or_else(|| {
                            SearchError::Unexpected(anyhow::anyhow!(
                                "a cache entry holds another kind of result than its key"
                            ))
                        })
                    }
                    Err(shared) => Err(duplicate(&shared)),
                }
            }
        };
        stats.attempts = attempts.load(Ordering::Relaxed);
        Served { result, stats }
    }

    /// Up to [`MAX_ATTEMPTS`] calls, waiting between them as [`Self::retry_delay`] says.
    async fn attempt<T, F, Fut>(&self, call: &F, attempts: &AtomicU32) -> Result<T, SearchError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, SearchError>>,
    {
        loop {
            let attempt = attempts.fetch_add(1, Ordering::Relaxed) + 1;
            match call().await {
                Ok(value) => return Ok(value),
                Err(error) => match self.retry_delay(&error, attempt) {
                    Some(wait) => {
                        tracing::info!(
                            error_code = error.code(),
                            attempt,
                            wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                            "retrying the search backend"
                        );
                        tokio::time::sleep(wait).await;
                    }
                    None => return Err(error),
                },
            }
        }
    }

    /// `Err(wait)` when `caller` has no call left this minute.
    fn admit(&self, caller: &Caller) -> Result<(), Duration> {
        self.limiter
            .as_ref()
            .map_or(Ok(()), |limiter| limiter.check(caller))
    }

    /// How long to wait before attempt `attempt + 1`, or `None` to give up now.
    fn retry_delay(&self, error: &SearchError, attempt: u32) -> Option<Duration> {
        if attempt >= MAX_ATTEMPTS {
            return None;
        }
        match error {
            // The backend said when; wait it out only when that is short.
            SearchError::RateLimited {
                retry_after: Some(after),
            } if *after <= MAX_INLINE_RETRY_AFTER => Some(*after),
            error if error.is_transient() => {
                // Full jitter on top of the base, so replicas that failed together do not
                // retry together.
                let base = self.policy.retry_backoff;
                Some(base + base.mul_f64(fastrand::f64()))
            }
            _ => None,
        }
    }
}

/// A copy of an error shared by coalesced calls (`anyhow` errors are not `Clone`; the copy
/// keeps the message chain).
fn duplicate(error: &SearchError) -> SearchError {
    match error {
        SearchError::Rejected { reason } => SearchError::Rejected {
            reason: reason.clone(),
        },
        SearchError::BackendUnauthorized => SearchError::BackendUnauthorized,
        SearchError::RateLimited { retry_after } => SearchError::RateLimited {
            retry_after: *retry_after,
        },
        SearchError::QuotaExhausted => SearchError::QuotaExhausted,
        SearchError::NotInPlan { reason } => SearchError::NotInPlan {
            reason: reason.clone(),
        },
        SearchError::Unavailable { reason } => SearchError::Unavailable {
            reason: reason.clone(),
        },
        SearchError::Timeout => SearchError::Timeout,
        SearchError::TooManyCalls { retry_after } => SearchError::TooManyCalls {
            retry_after: *retry_after,
        },
        SearchError::Unexpected(inner) => SearchError::Unexpected(anyhow::anyhow!("{inner:#}")),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::domain::search::{ExtractOptions, MockSearchPort, SearchOptions, SearchResult};

    fn results(request: &SearchRequest) -> SearchResults {
        SearchResults {
            query: request.query().as_str().to_owned(),
            results: vec![SearchResult {
                title: "t".into(),
                url: "https://example.com".into(),
                ..SearchResult::default()
            }],
            ..SearchResults::default()
        }
    }

    /// A provider whose calls fail with `errors` in turn, then succeed.
    fn scripted(errors: Vec<SearchError>) -> (MockSearchPort, Arc<Mutex<u32>>) {
        let calls = Arc::new(Mutex::new(0));
        let counter = calls.clone();
        let errors = Mutex::new(errors.into_iter());
        let mut provider = MockSearchPort::new();
        provider.expect_name().return_const("scripted");
        provider.expect_search().returning(move |request| {
            *counter.lock().unwrap() += 1;
            match errors.lock().unwrap().next() {
                Some(error) => Err(error),
                None => Ok(results(request)),
            }
        });
        (provider, calls)
    }

    fn service(provider: MockSearchPort, policy: ServicePolicy) -> SearchService {
        SearchService::new(WebBackend::search_only(Arc::new(provider)), policy)
    }

    fn no_cache() -> ServicePolicy {
        ServicePolicy {
            cache_ttl: Duration::ZERO,
            calls_per_minute: 0,
            ..ServicePolicy::default()
        }
    }

    fn request(query: &str) -> SearchRequest {
        SearchRequest::new(SearchOptions::query(query)).unwrap()
    }

    fn unavailable() -> SearchError {
        SearchError::Unavailable {
            reason: "503".into(),
        }
    }

    #[tokio::test]
    async fn a_page_the_backend_lists_twice_is_served_once() {
        let mut provider = MockSearchPort::new();
        provider.expect_name().return_const("scripted");
        provider.expect_search().returning(|request| {
            let mut answer = results(request);
            let again = SearchResult {
                url: "HTTPS://EXAMPLE.com/?utm_source=feed".into(),
                ..answer.results[0].clone()
            };
            answer.results.push(again);
            Ok(answer)
        });
        let served = service(provider, no_cache())
            .search(&Caller::Anonymous, &request("q"))
            .await;
        let urls: Vec<String> = served
            .result
            .unwrap()
            .results
            .iter()
            .map(|r| r.url.clone())
            .collect();
        assert_eq!(urls, ["https://example.com"]);
    }

    #[tokio::test(start_paused = true)]
    async fn transient_failures_are_tried_twice_at_most() {
        let (provider, calls) = scripted(vec![unavailable()]);
        let served = service(provider, no_cache())
            .search(&Caller::Anonymous, &request("q"))
            .await;
        assert!(served.result.is_ok(), "the retry succeeded");
        assert_eq!(served.stats.attempts, 2);

        let (provider, calls_2) = scripted(vec![unavailable(), unavailable(), unavailable()]);
        let served = service(provider, no_cache())
            .search(&Caller::Anonymous, &request("q"))
            .await;
        assert_eq!(served.result.unwrap_err().code(), "upstream_unavailable");
        assert_eq!(*calls_2.lock().unwrap(), 2, "never a third attempt");
        assert_eq!(*calls.lock().unwrap(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn terminal_failures_are_not_retried() {
        for error in [
            SearchError::BackendUnauthorized,
            SearchError::QuotaExhausted,
            SearchError::Rejected { reason: "x".into() },
            SearchError::RateLimited {
                retry_after: Some(Duration::from_secs(30)),
            },
            SearchError::RateLimited { retry_after: None },
        ] {
            let code = error.code();
            let (provider, calls) = scripted(vec![error]);
            let served = service(provider, no_cache())
                .search(&Caller::Anonymous, &request("q"))
                .await;
            assert_eq!(served.result.unwrap_err().code(), code);
            assert_eq!(*calls.lock().unwrap(), 1, "{code} is not retried");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_short_retry_after_is_waited_out_once() {
        let short = || SearchError::RateLimited {
            retry_after: Some(Duration::from_secs(2)),
        };
        let (provider, calls) = scripted(vec![short()]);
        let served = service(provider, no_cache())
            .search(&Caller::Anonymous, &request("q"))
            .await;
        assert!(served.result.is_ok());
        assert_eq!(*calls.lock().unwrap(), 2);

        let (provider, calls) = scripted(vec![short(), short()]);
        let served = service(provider, no_cache())
            .search(&Caller::Anonymous, &request("q"))
            .await;
        assert_eq!(
            served.result.unwrap_err().code(),
            "upstream_rate_limited",
            "only once"
        );
        assert_eq!(*calls.lock().unwrap(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_hanging_backend_hits_the_deadline() {
        // A provider that never answers.
        struct Hang;
        #[async_trait::async_trait]
        impl crate::domain::search::SearchProvider for Hang {
            fn name(&self) -> &'static str {
                "hang"
            }
            async fn search(&self, _: &SearchRequest) -> Result<SearchResults, SearchError> {
                std::future::pending().await
            }
        }
        let service = SearchService::new(WebBackend::search_only(Arc::new(Hang)), no_cache());
        let served = service.search(&Caller::Anonymous, &request("q")).await;
        assert_eq!(served.result.unwrap_err().code(), "upstream_timeout");
        assert_eq!(served.stats.attempts, 1, "the deadline covers retries too");
    }

    #[tokio::test]
    async fn identical_requests_are_served_from_the_cache() {
        let (provider, calls) = scripted(vec![]);
        let policy = ServicePolicy {
            calls_per_minute: 0,
            ..ServicePolicy::default()
        };
        let service = service(provider, policy);
        let with_domains = |query: &str, domains: [&str; 2]| {
            SearchRequest::new(SearchOptions {
                include_domains: domains.map(str::to_owned).to_vec(),
                ..SearchOptions::query(query)
            })
            .unwrap()
        };
        let a = with_domains("rust", ["b.com", "a.com"]);
        let b = with_domains(" rust ", ["a.com", "b.com"]);
        let first = service.search(&Caller::Anonymous, &a).await;
        let second = service.search(&Caller::Anonymous, &b).await;
        assert!(!first.stats.cache_hit && second.stats.cache_hit);
        assert_eq!(second.stats.attempts, 0);
        assert_eq!(*calls.lock().unwrap(), 1, "one upstream request");
        service.search(&Caller::Anonymous, &request("other")).await;
        assert_eq!(*calls.lock().unwrap(), 2, "a different query is not a hit");
    }

    #[tokio::test]
    async fn concurrent_identical_requests_share_one_upstream_call() {
        /// Answers after a pause, counting calls, failing when the query says so.
        struct Slow(Arc<Mutex<u32>>);
        #[async_trait::async_trait]
        impl crate::domain::search::SearchProvider for Slow {
            fn name(&self) -> &'static str {
                "slow"
            }
            async fn search(&self, request: &SearchRequest) -> Result<SearchResults, SearchError> {
                *self.0.lock().unwrap() += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
                if request.query().as_str() == "quota" {
                    Err(SearchError::QuotaExhausted)
                } else {
                    Ok(results(request))
                }
            }
        }
        let calls = Arc::new(Mutex::new(0));
        let service = SearchService::new(
            WebBackend::search_only(Arc::new(Slow(calls.clone()))),
            ServicePolicy {
                calls_per_minute: 0,
                ..ServicePolicy::default()
            },
        );
        let ok = request("same");
        let (a, b) = tokio::join!(
            service.search(&Caller::Anonymous, &ok),
            service.search(&Caller::Anonymous, &ok)
        );
        assert!(a.result.is_ok() && b.result.is_ok());
        assert_eq!(*calls.lock().unwrap(), 1, "one upstream call for both");
        assert_eq!(
            [a.stats.cache_hit, b.stats.cache_hit]
                .iter()
                .filter(|hit| **hit)
                .count(),
            1,
            "the waiting call counts as a hit"
        );
        let failing = request("quota");
        let (a, b) = tokio::join!(
            service.search(&Caller::Anonymous, &failing),
            service.search(&Caller::Anonymous, &failing)
        );
        assert_eq!(a.result.unwrap_err().code(), "upstream_quota_exhausted");
        assert_eq!(
            b.result.unwrap_err().code(),
            "upstream_quota_exhausted",
            "a shared failure reaches every waiting call"
        );
        assert_eq!(*calls.lock().unwrap(), 2);
    }

    #[test]
    fn a_duplicated_error_keeps_its_code_and_message() {
        let errors = [
            SearchError::Rejected { reason: "r".into() },
            SearchError::RateLimited {
                retry_after: Some(Duration::from_secs(3)),
            },
            SearchError::Unexpected(anyhow::anyhow!("inner").context("outer")),
        ];
        for error in errors {
            let copy = duplicate(&error);
            assert_eq!(copy.code(), error.code());
            assert_eq!(format!("{copy:#}"), format!("{error:#}"));
        }
    }

    #[tokio::test]
    async fn failures_are_not_cached() {
        let (provider, calls) = scripted(vec![SearchError::QuotaExhausted]);
        let service = service(
            provider,
            ServicePolicy {
                calls_per_minute: 0,
                ..ServicePolicy::default()
            },
        );
        assert!(
            service
                .search(&Caller::Anonymous, &request("q"))
                .await
                .result
                .is_err()
        );
        assert!(
            service
                .search(&Caller::Anonymous, &request("q"))
                .await
                .result
                .is_ok()
        );
        assert_eq!(*calls.lock().unwrap(), 2);
    }

    #[tokio::test]
    async fn each_caller_has_its_own_allowance() {
        let (provider, calls) = scripted(vec![]);
        let service = service(
            provider,
            ServicePolicy {
                calls_per_minute: 2,
                cache_ttl: Duration::ZERO,
                ..ServicePolicy::default()
            },
        );
        let alice = Caller::Principal {
            subject: "alice".into(),
            client_id: Some("app".into()),
        };
        for _ in 0..2 {
            assert!(service.search(&alice, &request("q")).await.result.is_ok());
        }
        let refused = service.search(&alice, &request("q")).await;
        match refused.result {
            Err(SearchError::TooManyCalls { retry_after }) => assert!(
                retry_after > Duration::ZERO && retry_after <= Duration::from_secs(30),
                "two per minute refill one every 30 s: {retry_after:?}"
            ),
            other => panic!("expected TooManyCalls, got {other:?}"),
        }
        assert_eq!(refused.stats.attempts, 0, "a refused call costs nothing");
        assert!(
            service
                .search(&Caller::Anonymous, &request("q"))
                .await
                .result
                .is_ok(),
            "another caller is unaffected"
        );
        assert_eq!(*calls.lock().unwrap(), 3);
    }

    #[test]
    fn retry_waits_are_jittered_between_one_and_two_backoffs() {
        let (provider, _) = scripted(vec![]);
        let service = service(provider, no_cache());
        let base = service.policy.retry_backoff;
        for _ in 0..100 {
            let wait = service.retry_delay(&unavailable(), 1).expect("retried");
            assert!(wait >= base && wait <= base * 2, "{wait:?}");
        }
        assert_eq!(
            service.retry_delay(&unavailable(), 2),
            None,
            "the second attempt is the last"
        );
    }

    #[tokio::test]
    async fn capabilities_the_backend_lacks_are_none() {
        let (provider, _) = scripted(vec![]);
        let service = service(provider, no_cache());
        let extract = ExtractRequest::new(ExtractOptions {
            urls: vec!["https://a.com".into()],
            ..ExtractOptions::default()
        })
        .unwrap();
        assert!(
            service
                .extract(&Caller::Anonymous, &extract)
                .await
                .is_none()
        );
    }
}
