//! The core policy in front of the backends, applied once for every tool: a per-caller rate
//! limit, a result cache keyed by the normalized request, retries of transient failures with
//! jittered backoff, the next backend when one fails, and a deadline per tool over all of it. Adapters only translate; what to do about a
//! failure is decided here, so the mock and every future backend get the same behaviour.

use std::{
    future::Future,
    num::NonZeroU32,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use moka::future::Cache;
use tokio::time::Instant;
use tracing::{Instrument, field::Empty};

use super::{
    BackendFailure, Backends, Capability, CrawlRequest, CrawlResults, ExtractRequest,
    ExtractResults, Fallback, MapRequest, MapResults, Reported, SearchArguments, SearchError,
    SearchRequest, SearchResults, WebBackend,
};
use crate::domain::{TRACE_TARGET, budget::Budgets, rate_limit::KeyedLimiter};

/// Most upstream attempts per call: the first and one retry.
const MAX_ATTEMPTS: u32 = 2;
/// Longest `retry-after` that is waited out inside a call rather than reported.
const MAX_INLINE_RETRY_AFTER: Duration = Duration::from_secs(2);
/// The time kept back for each backend after the one being tried (when that much is left), so
/// a slow first backend still leaves the others a chance.
const FALLBACK_RESERVE: Duration = Duration::from_secs(5);

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

/// What happened on the way to an answer, for the result and the audit row.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CallStats {
    /// The backend that answered (for a failure, the last one tried).
    pub provider: &'static str,
    /// Whether the answer came from the cache.
    pub cache_hit: bool,
    /// Upstream requests made, over every backend tried (0 for a cache hit or a refused call).
    pub attempts: u32,
    /// The backends that failed before `provider` answered, in the order they were tried.
    pub fallback_from: Vec<Fallback>,
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
    /// A search, and the backend the caller insisted on, if any.
    Search(SearchRequest, Option<&'static str>),
    Extract(ExtractRequest),
    Crawl(CrawlRequest),
    Map(MapRequest),
}

/// How one kind of result goes into and comes out of the cache.
type CacheSlot<T> = (fn(Arc<T>) -> CachedValue, fn(CachedValue) -> Option<Arc<T>>);

/// A cached answer and the backend that gave it.
#[derive(Debug, Clone)]
struct Cached {
    provider: &'static str,
    value: CachedValue,
}

#[derive(Debug, Clone)]
enum CachedValue {
    Search(Arc<SearchResults>),
    Extract(Arc<ExtractResults>),
    Crawl(Arc<CrawlResults>),
    Map(Arc<MapResults>),
}

impl CachedValue {
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

/// What one call went through upstream, filled in as it goes.
#[derive(Default)]
struct Trail {
    provider: &'static str,
    attempts: u32,
    fallback_from: Vec<Fallback>,
}

/// The web tools' core: every tool call goes through here.
pub struct SearchService {
    backends: Backends,
    policy: ServicePolicy,
    cache: Option<Cache<CacheKey, Cached>>,
    limiter: Option<KeyedLimiter<Caller>>,
    budgets: Option<Arc<Budgets>>,
}

impl SearchService {
    /// Wraps `backends` (one, or several tried in order) with `policy`.
    pub fn new(backends: impl Into<Backends>, policy: ServicePolicy) -> Self {
        let cache = (!policy.cache_ttl.is_zero() && policy.cache_max_bytes > 0).then(|| {
            Cache::builder()
                .max_capacity(policy.cache_max_bytes)
                .weigher(|_key: &CacheKey, cached: &Cached| cached.value.weight())
                .time_to_live(policy.cache_ttl)
                .build()
        });
        let limiter = NonZeroU32::new(policy.calls_per_minute).map(KeyedLimiter::per_minute);
        Self {
            backends: backends.into(),
            policy,
            cache,
            limiter,
            budgets: None,
        }
    }

    /// The same service charging each call to `budgets` (daily, shared by replicas).
    pub fn with_budgets(mut self, budgets: Arc<Budgets>) -> Self {
        self.budgets = Some(budgets);
        self
    }

    /// The budgets, when set.
    pub fn budgets(&self) -> Option<&Arc<Budgets>> {
        self.budgets.as_ref()
    }

    /// The backends, in order.
    pub fn backends(&self) -> &Backends {
        &self.backends
    }

    /// The arguments `request` sets that backend `provider` cannot honour (none for a backend
    /// that does not search).
    pub fn unsupported(&self, provider: &str, request: &SearchRequest) -> SearchArguments {
        self.backends
            .named(provider)
            .and_then(|backend| backend.search.as_ref())
            .map_or(SearchArguments::NONE, |search| {
                request.arguments().without(search.supports(request))
            })
    }

    /// Runs a search on the first backend that answers, or on `only` when named.
    pub async fn search(
        &self,
        caller: &Caller,
        request: &SearchRequest,
        only: Option<&'static str>,
    ) -> Served<SearchResults> {
        self.serve(
            caller,
            CacheKey::Search(request.normalized(), only),
            (Capability::Search, only),
            self.policy.deadlines.search,
            (CachedValue::Search, |c| match c {
                CachedValue::Search(r) => Some(r),
                _ => None,
            }),
            |backend| async move {
                let provider = backend.search.as_ref().ok_or_else(lacking)?;
                let mut results = provider.search(request).await?;
                results.drop_duplicate_pages();
                Ok(results)
            },
        )
        .await
    }

    /// Reads pages; `None` when no backend can.
    pub async fn extract(
        &self,
        caller: &Caller,
        request: &ExtractRequest,
    ) -> Option<Served<ExtractResults>> {
        self.backends.offer(Capability::Extract).then_some(())?;
        Some(
            self.serve(
                caller,
                CacheKey::Extract(request.clone()),
                (Capability::Extract, None),
                self.policy.deadlines.extract,
                (CachedValue::Extract, |c| match c {
                    CachedValue::Extract(r) => Some(r),
                    _ => None,
                }),
                |backend| async move {
                    let provider = backend.extract.as_ref().ok_or_else(lacking)?;
                    provider.extract(request).await
                },
            )
            .await,
        )
    }

    /// Crawls a site; `None` when no backend can.
    pub async fn crawl(
        &self,
        caller: &Caller,
        request: &CrawlRequest,
    ) -> Option<Served<CrawlResults>> {
        self.backends.offer(Capability::Crawl).then_some(())?;
        Some(
            self.serve(
                caller,
                CacheKey::Crawl(request.clone()),
                (Capability::Crawl, None),
                self.policy.deadlines.crawl,
                (CachedValue::Crawl, |c| match c {
                    CachedValue::Crawl(r) => Some(r),
                    _ => None,
                }),
                |backend| async move {
                    let provider = backend.crawl.as_ref().ok_or_else(lacking)?;
                    provider.crawl(request).await
                },
            )
            .await,
        )
    }

    /// Maps a site; `None` when no backend can.
    pub async fn map(&self, caller: &Caller, request: &MapRequest) -> Option<Served<MapResults>> {
        self.backends.offer(Capability::Map).then_some(())?;
        Some(
            self.serve(
                caller,
                CacheKey::Map(request.clone()),
                (Capability::Map, None),
                self.policy.deadlines.map,
                (CachedValue::Map, |c| match c {
                    CachedValue::Map(r) => Some(r),
                    _ => None,
                }),
                |backend| async move {
                    let provider = backend.map.as_ref().ok_or_else(lacking)?;
                    provider.map(request).await
                },
            )
            .await,
        )
    }

    /// Rate limit → cache → the backends in turn within the deadline → cache the success.
    /// Concurrent identical calls are coalesced: one goes upstream, the others wait for its
    /// answer.
    async fn serve<'a, T, F, Fut>(
        &'a self,
        caller: &Caller,
        key: CacheKey,
        (capability, only): (Capability, Option<&'static str>),
        deadline: Duration,
        (wrap, unwrap): CacheSlot<T>,
        call: F,
    ) -> Served<T>
    where
        T: Reported,
        F: Fn(&'a WebBackend) -> Fut,
        Fut: Future<Output = Result<T, SearchError>>,
    {
        let candidates = self.backends.candidates(capability, only);
        let trail = Mutex::new(Trail {
            provider: candidates.first().map_or("none", |b| b.name),
            ..Trail::default()
        });
        let mut reservation = None;
        let admitted = match self.admit(caller) {
            Err(retry_after) => Err(SearchError::TooManyCalls { retry_after }),
            Ok(()) => match &self.budgets {
                None => Ok(()),
                Some(budgets) => match budgets.reserve(caller).await {
                    Ok(taken) => {
                        reservation = Some(taken);
                        Ok(())
                    }
                    Err(Some(spent)) => Err(SearchError::BudgetExhausted {
                        scope: spent.scope,
                        resets_at: spent.resets_at,
                    }),
                    Err(None) => Err(SearchError::Unexpected(anyhow::anyhow!(
                        "the budget store cannot be reached, so the call is not made"
                    ))),
                },
            },
        };
        let outcome = match admitted {
            Err(error) => Err(error),
            Ok(()) => {
                let upstream = async {
                    tokio::time::timeout(deadline, self.walk(&candidates, deadline, &call, &trail))
                        .await
                        .unwrap_or(Err(SearchError::Timeout))
                };
                match &self.cache {
                    None => upstream
                        .await
                        .map(|(v, provider)| (Arc::new(v), provider, false)),
                    Some(cache) => cache
                        .entry(key)
                        .or_try_insert_with(async {
                            upstream.await.map(|(v, provider)| Cached {
                                provider,
                                value: wrap(Arc::new(v)),
                            })
                        })
                        .await
                        .map_err(|shared| duplicate(&shared))
                        .and_then(|entry| {
                            // Not fresh: another call (earlier, or concurrent) paid for it.
                            let hit = !entry.is_fresh();
                            let Cached { provider, value } = entry.into_value();
                            let value = unwrap(value).ok_or_else(|| {
                                SearchError::Unexpected(anyhow::anyhow!(
                                    "a cache entry holds another kind of result than its key"
                                ))
                            })?;
                            Ok((value, provider, hit))
                        }),
                }
            }
        };
        let trail = trail.into_inner().unwrap_or_else(PoisonError::into_inner);
        let mut stats = CallStats {
            provider: trail.provider,
            cache_hit: false,
            attempts: trail.attempts,
            fallback_from: trail.fallback_from,
        };
        let result = outcome.map(|(value, provider, hit)| {
            stats.provider = provider;
            stats.cache_hit = hit;
            value
        });
        if let (Some(budgets), Some(reservation)) = (&self.budgets, reservation) {
            // Reported credits; one for a call that reached a backend that reports none; none
            // for a cached answer or a failure (backends bill answers).
            let credits = match &result {
                Ok(value) if !stats.cache_hit => value.usage().credits.unwrap_or(1.0),
                _ => 0.0,
            };
            budgets.settle(reservation, credits).await;
        }
        Served { result, stats }
    }

    /// Tries `candidates` in turn until one answers; returns the answer and who gave it. Each
    /// may take what is left of `deadline` less a reserve for each one after it (see
    /// [`share`]). A failure the caller caused ends the walk
    /// (another backend would refuse it too); when all fail, the error names each one's reason.
    async fn walk<'a, T, F, Fut>(
        &self,
        candidates: &[&'a WebBackend],
        deadline: Duration,
        call: &F,
        trail: &Mutex<Trail>,
    ) -> Result<(T, &'static str), SearchError>
    where
        F: Fn(&'a WebBackend) -> Fut,
        Fut: Future<Output = Result<T, SearchError>>,
    {
        let start = Instant::now();
        let mut failures = Vec::new();
        for (i, backend) in candidates.iter().copied().enumerate() {
            let left = deadline.saturating_sub(start.elapsed());
            let after = u32::try_from(candidates.len() - i - 1).unwrap_or(u32::MAX);
            lock(trail).provider = backend.name;
            let error = match tokio::time::timeout(
                share(left, after),
                self.attempt(|| call(backend), trail, (backend.name, i > 0)),
            )
            .await
            .unwrap_or(Err(SearchError::Timeout))
            {
                Ok(value) => {
                    self.backends.answered(backend.name);
                    return Ok((value, backend.name));
                }
                Err(error) => error,
            };
            self.backends.failed(backend.name, &error);
            if !error.falls_back() {
                return Err(error);
            }
            if i + 1 < candidates.len() {
                tracing::warn!(
                    provider = backend.name,
                    error_code = error.code(),
                    "a search backend failed; asking the next one"
                );
                lock(trail).fallback_from.push(Fallback {
                    provider: backend.name,
                    code: error.code(),
                });
            }
            failures.push(BackendFailure {
                provider: backend.name,
                error,
            });
        }
        match failures.len() {
            0 => Err(lacking()),
            1 => Err(failures.remove(0).error),
            _ => Err(SearchError::EveryBackendFailed { failures }),
        }
    }

    /// Up to [`MAX_ATTEMPTS`] calls to `provider`, waiting between them as
    /// [`Self::retry_delay`] says; `fallback` when an earlier backend failed. Each call has its
    /// trace span (the adapter's HTTP client span goes under it).
    async fn attempt<T, F, Fut>(
        &self,
        call: F,
        trail: &Mutex<Trail>,
        (provider, fallback): (&'static str, bool),
    ) -> Result<T, SearchError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, SearchError>>,
    {
        let mut attempt = 0;
        loop {
            attempt += 1;
            lock(trail).attempts += 1;
            let span = tracing::info_span!(
                target: TRACE_TARGET,
                "search backend",
                otel.status_code = Empty,
                searchgate.provider = provider,
                searchgate.attempt = attempt,
                searchgate.fallback = fallback,
                error.type = Empty,
            );
            let result = call().instrument(span.clone()).await;
            if let Err(error) = &result
                && !span.is_disabled()
            {
                span.record("error.type", error.code());
                span.record("otel.status_code", "ERROR");
            }
            match result {
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

/// The time a backend may take when `left` remains and `after` backends follow it: all of it
/// less [`FALLBACK_RESERVE`] for each that follows, and never less than an equal share.
fn share(left: Duration, after: u32) -> Duration {
    let equal = left / after.saturating_add(1);
    let reserved = FALLBACK_RESERVE.min(equal).saturating_mul(after);
    left.saturating_sub(reserved).max(equal)
}

fn lock(trail: &Mutex<Trail>) -> std::sync::MutexGuard<'_, Trail> {
    trail.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A capability no candidate has: the tools that need it are not offered, so this is a bug.
fn lacking() -> SearchError {
    SearchError::Unexpected(anyhow::anyhow!(
        "no configured backend has what this tool needs"
    ))
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
        SearchError::BudgetExhausted { scope, resets_at } => SearchError::BudgetExhausted {
            scope: *scope,
            resets_at: *resets_at,
        },
        SearchError::EveryBackendFailed { failures } => SearchError::EveryBackendFailed {
            failures: failures
                .iter()
                .map(|f| BackendFailure {
                    provider: f.provider,
                    error: duplicate(&f.error),
                })
                .collect(),
        },
        SearchError::Unexpected(inner) => SearchError::Unexpected(anyhow::anyhow!("{inner:#}")),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::domain::search::{
        BackendsError, ExtractOptions, MockSearchPort, SearchOptions, SearchResult,
    };

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
        scripted_as("scripted", errors)
    }

    /// [`scripted`], named `name`.
    fn scripted_as(
        name: &'static str,
        errors: Vec<SearchError>,
    ) -> (MockSearchPort, Arc<Mutex<u32>>) {
        let calls = Arc::new(Mutex::new(0));
        let counter = calls.clone();
        let errors = Mutex::new(errors.into_iter());
        let mut provider = MockSearchPort::new();
        provider.expect_name().return_const(name);
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
            .search(&Caller::Anonymous, &request("q"), None)
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
            .search(&Caller::Anonymous, &request("q"), None)
            .await;
        assert!(served.result.is_ok(), "the retry succeeded");
        assert_eq!(served.stats.attempts, 2);

        let (provider, calls_2) = scripted(vec![unavailable(), unavailable(), unavailable()]);
        let served = service(provider, no_cache())
            .search(&Caller::Anonymous, &request("q"), None)
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
                .search(&Caller::Anonymous, &request("q"), None)
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
            .search(&Caller::Anonymous, &request("q"), None)
            .await;
        assert!(served.result.is_ok());
        assert_eq!(*calls.lock().unwrap(), 2);

        let (provider, calls) = scripted(vec![short(), short()]);
        let served = service(provider, no_cache())
            .search(&Caller::Anonymous, &request("q"), None)
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
        let served = service
            .search(&Caller::Anonymous, &request("q"), None)
            .await;
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
        let first = service.search(&Caller::Anonymous, &a, None).await;
        let second = service.search(&Caller::Anonymous, &b, None).await;
        assert!(!first.stats.cache_hit && second.stats.cache_hit);
        assert_eq!(second.stats.attempts, 0);
        assert_eq!(*calls.lock().unwrap(), 1, "one upstream request");
        service
            .search(&Caller::Anonymous, &request("other"), None)
            .await;
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
            service.search(&Caller::Anonymous, &ok, None),
            service.search(&Caller::Anonymous, &ok, None)
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
            service.search(&Caller::Anonymous, &failing, None),
            service.search(&Caller::Anonymous, &failing, None)
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
                .search(&Caller::Anonymous, &request("q"), None)
                .await
                .result
                .is_err()
        );
        assert!(
            service
                .search(&Caller::Anonymous, &request("q"), None)
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
            assert!(
                service
                    .search(&alice, &request("q"), None)
                    .await
                    .result
                    .is_ok()
            );
        }
        let refused = service.search(&alice, &request("q"), None).await;
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
                .search(&Caller::Anonymous, &request("q"), None)
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

    /// Backends `tavily`, `brave`, `searxng` failing as scripted, in that order of preference.
    fn chain(
        scripts: [Vec<SearchError>; 3],
        policy: ServicePolicy,
    ) -> (SearchService, [Arc<Mutex<u32>>; 3]) {
        let [a, b, c] = scripts;
        let (tavily, ta) = scripted_as("tavily", a);
        let (brave, br) = scripted_as("brave", b);
        let (searxng, sx) = scripted_as("searxng", c);
        let backends = Backends::new(
            [tavily, brave, searxng]
                .into_iter()
                .map(|p| WebBackend::search_only(Arc::new(p)))
                .collect(),
        )
        .unwrap();
        (SearchService::new(backends, policy), [ta, br, sx])
    }

    fn count(calls: &Arc<Mutex<u32>>) -> u32 {
        *calls.lock().unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn spent_credits_pass_the_call_on_and_rest_the_backend_for_the_cooldown() {
        let (service, [tavily, brave, _]) = chain(
            [
                vec![SearchError::QuotaExhausted, SearchError::QuotaExhausted],
                vec![],
                vec![],
            ],
            no_cache(),
        );
        let served = service
            .search(&Caller::Anonymous, &request("q"), None)
            .await;
        assert!(served.result.is_ok());
        assert_eq!(served.stats.provider, "brave");
        assert_eq!(
            served.stats.fallback_from,
            [Fallback {
                provider: "tavily",
                code: "upstream_quota_exhausted"
            }]
        );
        assert!(service.backends().is_resting("tavily"));
        assert_eq!(
            (count(&tavily), count(&brave)),
            (1, 1),
            "no retry of a quota"
        );

        let next = service
            .search(&Caller::Anonymous, &request("q"), None)
            .await;
        assert_eq!(next.stats.provider, "brave");
        assert!(next.stats.fallback_from.is_empty(), "tavily is skipped");
        assert_eq!(count(&tavily), 1, "a resting backend is not asked");

        tokio::time::advance(Backends::DEFAULT_COOLDOWN).await;
        let after = service
            .search(&Caller::Anonymous, &request("q"), None)
            .await;
        assert_eq!(count(&tavily), 2, "asked again after its rest");
        assert_eq!(after.stats.provider, "brave", "still spent: brave answers");
        let recovered = service
            .search(&Caller::Anonymous, &request("q"), None)
            .await;
        assert_eq!(
            recovered.stats.provider, "brave",
            "resting again for another cooldown"
        );
        tokio::time::advance(Backends::DEFAULT_COOLDOWN).await;
        let back = service
            .search(&Caller::Anonymous, &request("q"), None)
            .await;
        assert_eq!(
            back.stats.provider, "tavily",
            "credits added: tavily answers"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_transient_failure_is_retried_then_passed_on() {
        let (service, [_, brave, searxng]) = chain(
            [
                vec![SearchError::BackendUnauthorized],
                vec![unavailable(), unavailable()],
                vec![],
            ],
            no_cache(),
        );
        let served = service
            .search(&Caller::Anonymous, &request("q"), None)
            .await;
        assert_eq!(served.stats.provider, "searxng");
        let codes: Vec<_> = served
            .stats
            .fallback_from
            .iter()
            .map(|f| (f.provider, f.code))
            .collect();
        assert_eq!(
            codes,
            [
                ("tavily", "upstream_unauthorized"),
                ("brave", "upstream_unavailable")
            ]
        );
        assert_eq!(
            (count(&brave), count(&searxng)),
            (2, 1),
            "brave tried twice"
        );
        assert_eq!(served.stats.attempts, 4);
        assert!(
            !service.backends().is_resting("brave"),
            "an outage is no rest"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn when_every_backend_fails_the_error_names_each_reason() {
        let (service, _) = chain(
            [
                vec![SearchError::QuotaExhausted],
                vec![unavailable(), unavailable()],
                vec![SearchError::Timeout, SearchError::Timeout],
            ],
            no_cache(),
        );
        let served = service
            .search(&Caller::Anonymous, &request("q"), None)
            .await;
        match served.result.unwrap_err() {
            SearchError::EveryBackendFailed { failures } => {
                let named: Vec<_> = failures
                    .iter()
                    .map(|f| (f.provider, f.error.code()))
                    .collect();
                assert_eq!(
                    named,
                    [
                        ("tavily", "upstream_quota_exhausted"),
                        ("brave", "upstream_unavailable"),
                        ("searxng", "upstream_timeout")
                    ]
                );
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(served.stats.provider, "searxng", "the last one tried");
    }

    #[tokio::test(start_paused = true)]
    async fn a_named_backend_is_the_only_one_asked() {
        let (service, [tavily, brave, _]) = chain(
            [vec![], vec![unavailable(), unavailable()], vec![]],
            no_cache(),
        );
        let served = service
            .search(&Caller::Anonymous, &request("q"), Some("brave"))
            .await;
        assert_eq!(served.result.unwrap_err().code(), "upstream_unavailable");
        assert_eq!(served.stats.provider, "brave");
        assert!(served.stats.fallback_from.is_empty());
        assert_eq!((count(&tavily), count(&brave)), (0, 2));
    }

    #[tokio::test(start_paused = true)]
    async fn a_rejected_request_is_not_passed_on() {
        let (service, [_, brave, _]) = chain(
            [
                vec![SearchError::Rejected {
                    reason: "bad date".into(),
                }],
                vec![],
                vec![],
            ],
            no_cache(),
        );
        let served = service
            .search(&Caller::Anonymous, &request("q"), None)
            .await;
        assert_eq!(served.result.unwrap_err().code(), "upstream_rejected");
        assert_eq!(count(&brave), 0);
        assert!(!service.backends().is_resting("tavily"));
    }

    #[tokio::test(start_paused = true)]
    async fn the_deadline_covers_the_whole_chain() {
        /// Never answers.
        struct Hang(&'static str);
        #[async_trait::async_trait]
        impl crate::domain::search::SearchProvider for Hang {
            fn name(&self) -> &'static str {
                self.0
            }
            async fn search(&self, _: &SearchRequest) -> Result<SearchResults, SearchError> {
                std::future::pending().await
            }
        }
        let (brave, _) = scripted_as("brave", vec![]);
        let backends = Backends::new(vec![
            WebBackend::search_only(Arc::new(Hang("tavily"))),
            WebBackend::search_only(Arc::new(brave)),
        ])
        .unwrap();
        let service = SearchService::new(backends, no_cache());
        let started = Instant::now();
        let served = service
            .search(&Caller::Anonymous, &request("q"), None)
            .await;
        assert_eq!(
            served.stats.provider, "brave",
            "the next one answers in time"
        );
        assert_eq!(served.stats.fallback_from[0].code, "upstream_timeout");
        assert_eq!(
            started.elapsed(),
            Deadlines::default().search - FALLBACK_RESERVE,
            "a hanging first backend leaves the next one its reserve"
        );

        let both = Backends::new(vec![
            WebBackend::search_only(Arc::new(Hang("tavily"))),
            WebBackend::search_only(Arc::new(Hang("brave"))),
        ])
        .unwrap();
        let service = SearchService::new(both, no_cache());
        let started = Instant::now();
        let served = service
            .search(&Caller::Anonymous, &request("q"), None)
            .await;
        assert_eq!(served.result.unwrap_err().code(), "upstream_all_failed");
        assert_eq!(started.elapsed(), Deadlines::default().search);
    }

    #[tokio::test]
    async fn a_cached_answer_names_the_backend_that_gave_it() {
        let (service, [_, brave, _]) = chain(
            [vec![SearchError::QuotaExhausted], vec![], vec![]],
            ServicePolicy {
                calls_per_minute: 0,
                ..ServicePolicy::default()
            },
        );
        service
            .search(&Caller::Anonymous, &request("q"), None)
            .await;
        let hit = service
            .search(&Caller::Anonymous, &request("q"), None)
            .await;
        assert!(hit.stats.cache_hit);
        assert_eq!(hit.stats.provider, "brave");
        assert_eq!(count(&brave), 1);
        let named = service
            .search(&Caller::Anonymous, &request("q"), Some("brave"))
            .await;
        assert!(
            !named.stats.cache_hit,
            "a named backend has its own entries"
        );
    }

    #[test]
    fn each_backend_leaves_a_reserve_for_those_after_it() {
        let secs = Duration::from_secs;
        assert_eq!(share(secs(30), 0), secs(30), "the last one takes all");
        assert_eq!(share(secs(30), 1), secs(25));
        assert_eq!(share(secs(30), 2), secs(20));
        assert_eq!(
            share(secs(6), 2),
            secs(2),
            "an equal share when little is left"
        );
        assert_eq!(share(Duration::ZERO, 3), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn a_resting_backend_that_answers_is_back_at_once() {
        let (service, [tavily, _, _]) = chain(
            [vec![SearchError::QuotaExhausted], vec![], vec![]],
            no_cache(),
        );
        service
            .search(&Caller::Anonymous, &request("q"), None)
            .await;
        assert!(service.backends().is_resting("tavily"));
        let named = service
            .search(&Caller::Anonymous, &request("q"), Some("tavily"))
            .await;
        assert_eq!(named.stats.provider, "tavily", "credits were added");
        assert!(!service.backends().is_resting("tavily"));
        let next = service
            .search(&Caller::Anonymous, &request("q"), None)
            .await;
        assert_eq!(next.stats.provider, "tavily");
        assert_eq!(count(&tavily), 3);
    }

    #[tokio::test]
    async fn a_budget_that_cannot_be_checked_refuses_the_call_without_calling_the_backend() {
        use crate::domain::budget::{BudgetKey, BudgetPolicy, BudgetStore, Budgets, Taken};
        /// A budget store whose database is gone.
        struct Gone;
        #[async_trait::async_trait]
        impl BudgetStore for Gone {
            async fn take(&self, _: &BudgetKey, _: f64, _: f64) -> anyhow::Result<Taken> {
                anyhow::bail!("connection refused")
            }
            async fn add(&self, _: &BudgetKey, _: f64) -> anyhow::Result<()> {
                anyhow::bail!("connection refused")
            }
            async fn prune(&self, _: i64) -> anyhow::Result<()> {
                anyhow::bail!("connection refused")
            }
        }
        let (provider, calls) = scripted(vec![]);
        let budgets = Budgets::new(
            BudgetPolicy {
                calls_per_day: 100,
                ..BudgetPolicy::default()
            },
            Arc::new(Gone),
        );
        let service = service(provider, no_cache()).with_budgets(Arc::new(budgets));
        let served = service
            .search(&Caller::Anonymous, &request("q"), None)
            .await;
        assert_eq!(served.result.unwrap_err().code(), "internal_error");
        assert_eq!(*calls.lock().unwrap(), 0, "nothing is spent blindly");
    }

    #[test]
    fn a_backend_list_is_non_empty_and_names_each_once() {
        assert_eq!(Backends::new(vec![]).err(), Some(BackendsError::Empty));
        let (a, _) = scripted_as("brave", vec![]);
        let (b, _) = scripted_as("brave", vec![]);
        let twice = Backends::new(vec![
            WebBackend::search_only(Arc::new(a)),
            WebBackend::search_only(Arc::new(b)),
        ]);
        assert_eq!(twice.err(), Some(BackendsError::Duplicate("brave")));
    }
}
