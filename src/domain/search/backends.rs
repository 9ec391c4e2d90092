//! The backends searchgate may call, in the operator's order of preference, each with the
//! capabilities it has, and which of them are resting after a failure only their operator can
//! fix (so a dead backend is not asked, and billed, on every call).

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use tokio::time::Instant;

use super::{CrawlProvider, ExtractProvider, MapProvider, SearchError, SearchProvider};

/// One backend's capabilities under its name. Each tool is offered when some backend has its
/// capability.
#[derive(Clone)]
pub struct WebBackend {
    /// A short, stable name for results, audit rows and the `provider` argument.
    pub name: &'static str,
    /// Web search, when supported.
    pub search: Option<Arc<dyn SearchProvider>>,
    /// Page extraction, when supported.
    pub extract: Option<Arc<dyn ExtractProvider>>,
    /// Site crawling, when supported.
    pub crawl: Option<Arc<dyn CrawlProvider>>,
    /// Site mapping, when supported.
    pub map: Option<Arc<dyn MapProvider>>,
}

impl std::fmt::Debug for WebBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebBackend")
            .field("name", &self.name)
            .field("search", &self.search.is_some())
            .field("extract", &self.extract.is_some())
            .field("crawl", &self.crawl.is_some())
            .field("map", &self.map.is_some())
            .finish()
    }
}

impl WebBackend {
    /// A backend that only searches, named after its provider.
    pub fn search_only(search: Arc<dyn SearchProvider>) -> Self {
        Self {
            name: search.name(),
            search: Some(search),
            extract: None,
            crawl: None,
            map: None,
        }
    }

    /// A backend with every capability, all served by `provider`.
    pub fn full<P>(provider: Arc<P>) -> Self
    where
        P: SearchProvider + ExtractProvider + CrawlProvider + MapProvider,
    {
        Self {
            name: provider.name(),
            search: Some(provider.clone()),
            extract: Some(provider.clone()),
            crawl: Some(provider.clone()),
            map: Some(provider),
        }
    }

    /// A backend that only reads pages.
    pub fn extract_only(name: &'static str, extract: Arc<dyn ExtractProvider>) -> Self {
        Self {
            name,
            search: None,
            extract: Some(extract),
            crawl: None,
            map: None,
        }
    }

    /// Whether the backend has `capability`.
    pub fn has(&self, capability: Capability) -> bool {
        match capability {
            Capability::Search => self.search.is_some(),
            Capability::Extract => self.extract.is_some(),
            Capability::Crawl => self.crawl.is_some(),
            Capability::Map => self.map.is_some(),
        }
    }
}

/// What a tool needs of a backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Capability {
    /// `web_search`.
    Search,
    /// `web_extract`.
    Extract,
    /// `web_crawl`.
    Crawl,
    /// `web_map`.
    Map,
}

/// A backend that failed before another answered: which, and why (the error's code only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fallback {
    /// The backend's name.
    pub provider: &'static str,
    /// The error code (`upstream_quota_exhausted`, …).
    pub code: &'static str,
}

/// Why a list of backends cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackendsError {
    /// The list is empty.
    #[error("at least one search backend is needed")]
    Empty,
    /// Two backends share a name, so results and the `provider` argument could not tell them
    /// apart.
    #[error("the search backend `{0}` is listed twice")]
    Duplicate(&'static str),
}

/// The backends in order of preference: non-empty, names distinct.
pub struct Backends {
    entries: Box<[Entry]>,
    cooldown: Duration,
    /// What the resting deadlines count from (tokio's clock, so tests can pause it).
    epoch: Instant,
}

struct Entry {
    backend: WebBackend,
    /// Milliseconds after `epoch` until which the backend rests; 0 when it does not.
    resting_until: AtomicU64,
}

impl Backends {
    /// How long a backend rests after a permanent failure unless configured otherwise.
    pub const DEFAULT_COOLDOWN: Duration = Duration::from_secs(300);

    /// `backends`, tried in this order.
    ///
    /// # Errors
    /// When the list is empty or names a backend twice.
    pub fn new(backends: Vec<WebBackend>) -> Result<Self, BackendsError> {
        if backends.is_empty() {
            return Err(BackendsError::Empty);
        }
        for (i, backend) in backends.iter().enumerate() {
            if backends[..i].iter().any(|b| b.name == backend.name) {
                return Err(BackendsError::Duplicate(backend.name));
            }
        }
        Ok(Self {
            entries: backends
                .into_iter()
                .map(|backend| Entry {
                    backend,
                    resting_until: AtomicU64::new(0),
                })
                .collect(),
            cooldown: Self::DEFAULT_COOLDOWN,
            epoch: Instant::now(),
        })
    }

    /// The same backends resting for `cooldown` after a permanent failure (zero: never).
    pub fn with_cooldown(mut self, cooldown: Duration) -> Self {
        self.cooldown = cooldown;
        self
    }

    /// Every backend, in order.
    pub fn iter(&self) -> impl Iterator<Item = &WebBackend> {
        self.entries.iter().map(|entry| &entry.backend)
    }

    /// The backend called `name`.
    pub fn named(&self, name: &str) -> Option<&WebBackend> {
        self.iter().find(|backend| backend.name == name)
    }

    /// Whether some backend has `capability`.
    pub fn offer(&self, capability: Capability) -> bool {
        self.iter().any(|backend| backend.has(capability))
    }

    /// The backends to try for `capability`, in order: `only` when named (resting or not: the
    /// caller asked for it), else those not resting, else (every one resting) all of them, so
    /// a fixed backend is noticed without waiting out its rest.
    pub(super) fn candidates(
        &self,
        capability: Capability,
        only: Option<&str>,
    ) -> Vec<&WebBackend> {
        let able = self
            .entries
            .iter()
            .filter(|entry| entry.backend.has(capability))
            .filter(|entry| only.is_none_or(|name| entry.backend.name == name));
        let now = self.now_ms();
        let awake: Vec<&WebBackend> = able
            .clone()
            .filter(|entry| entry.resting_until.load(Ordering::Relaxed) <= now)
            .map(|entry| &entry.backend)
            .collect();
        if awake.is_empty() {
            able.map(|entry| &entry.backend).collect()
        } else {
            awake
        }
    }

    /// Notes that `name` failed with `error`: a permanent failure sends it to rest, logged
    /// once (at the start of the rest) for the operator.
    pub(super) fn failed(&self, name: &str, error: &SearchError) {
        if !error.is_permanent() || self.cooldown.is_zero() {
            return;
        }
        let Some(entry) = self.entries.iter().find(|e| e.backend.name == name) else {
            return;
        };
        let now = self.now_ms();
        let until = now.saturating_add(millis(self.cooldown)).max(1);
        let before = entry.resting_until.swap(until, Ordering::Relaxed);
        if before <= now {
            tracing::error!(
                provider = name,
                error_code = error.code(),
                rest_secs = self.cooldown.as_secs(),
                "a search backend failed in a way only its operator can fix; other backends \
                 answer until its rest is over: {error}"
            );
        }
    }

    /// Notes that `name` answered: a backend that rested (or was named by a caller while it
    /// rested) is back at once, not at the end of its rest.
    pub(super) fn answered(&self, name: &str) {
        if let Some(entry) = self.entries.iter().find(|e| e.backend.name == name)
            && entry.resting_until.load(Ordering::Relaxed) != 0
        {
            entry.resting_until.store(0, Ordering::Relaxed);
            tracing::info!(provider = name, "a resting search backend answers again");
        }
    }

    /// Whether `name` is resting now.
    pub fn is_resting(&self, name: &str) -> bool {
        let now = self.now_ms();
        self.entries
            .iter()
            .any(|e| e.backend.name == name && e.resting_until.load(Ordering::Relaxed) > now)
    }

    fn now_ms(&self) -> u64 {
        millis(self.epoch.elapsed())
    }
}

impl From<WebBackend> for Backends {
    fn from(backend: WebBackend) -> Self {
        Self::new(vec![backend]).expect("one backend is a valid list")
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
