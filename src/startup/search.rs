//! The search side of start-up: the configured backends in order (plus the built-in page
//! reader when none of them reads pages), the core policy in front of them, and what
//! `check-config` reports about each.

use std::{sync::Arc, time::Duration};

use crate::{
    adapters::{
        http_client::outbound,
        search::{
            BraveSearchProvider, ExaSearchProvider, MockSearchProvider, PageReader, ReaderSettings,
            SearxngSearchProvider, TavilySearchProvider,
        },
    },
    config::{ConfigError, SearchBackend, Secret, Settings, load_problem},
    domain::{
        auth::ProbeFinding,
        budget::BudgetPolicy,
        search::{Backends, Capability, Deadlines, ServicePolicy, WebBackend},
    },
};

/// Each tool's deadline.
pub(super) fn deadlines(settings: &Settings) -> Deadlines {
    let d = &settings.search.deadlines;
    Deadlines {
        search: Duration::from_secs(d.search_secs),
        extract: Duration::from_secs(d.extract_secs),
        crawl: Duration::from_secs(d.crawl_secs),
        map: Duration::from_secs(d.map_secs),
    }
}

/// The daily budgets the settings ask for.
pub(super) fn budget_policy(settings: &Settings) -> BudgetPolicy {
    let b = &settings.search.budget;
    BudgetPolicy {
        calls_per_day: b.calls_per_day,
        credits_per_day: b.credits_per_day,
        total_credits_per_day: b.total_credits_per_day,
    }
}

/// The core policy the settings ask for.
pub(super) fn service_policy(settings: &Settings) -> ServicePolicy {
    let search = &settings.search;
    ServicePolicy {
        deadlines: deadlines(settings),
        cache_ttl: Duration::from_secs(search.cache_ttl_secs),
        cache_max_bytes: search.cache_max_mb.saturating_mul(1024 * 1024),
        calls_per_minute: search.rate_limit_per_minute,
        ..ServicePolicy::default()
    }
}

/// The backends the settings name, in order, resting for `search.cooldown_secs` after a
/// permanent failure; the page reader comes last when none of them reads pages.
pub(super) fn configured_backends(
    settings: &Settings,
    configured: &[SearchBackend],
) -> Result<Backends, ConfigError> {
    let mut backends = configured
        .iter()
        .map(|backend| web_backend(settings, backend))
        .collect::<Result<Vec<_>, _>>()?;
    if !backends.iter().any(|b| b.has(Capability::Extract)) {
        backends.push(WebBackend::extract_only(
            PageReader::NAME,
            Arc::new(page_reader(settings)?),
        ));
    }
    let backends = Backends::new(backends).map_err(|error| {
        load_problem(
            "search.provider",
            &error.to_string(),
            "each backend at most once",
        )
    })?;
    with_cooldown(settings, backends)
}

/// `backends` as the service takes them, with the configured cooldown.
pub(super) fn with_cooldown(
    settings: &Settings,
    backends: impl Into<Backends>,
) -> Result<Backends, ConfigError> {
    Ok(backends
        .into()
        .with_cooldown(Duration::from_secs(settings.search.cooldown_secs)))
}

fn web_backend(settings: &Settings, backend: &SearchBackend) -> Result<WebBackend, ConfigError> {
    Ok(match backend {
        SearchBackend::Mock => WebBackend::full(Arc::new(MockSearchProvider)),
        SearchBackend::Tavily { key } => WebBackend::full(Arc::new(tavily(settings, key)?)),
        SearchBackend::Brave { key } => WebBackend::search_only(Arc::new(brave(settings, key)?)),
        SearchBackend::Searxng { base_url } => WebBackend::search_only(Arc::new(
            SearxngSearchProvider::new(base_url, deadlines(settings), outbound()),
        )),
        SearchBackend::Exa { key } => {
            let exa = Arc::new(exa(settings, key)?);
            WebBackend {
                extract: Some(exa.clone()),
                ..WebBackend::search_only(exa)
            }
        }
    })
}

/// A key that cannot travel in a header (validation normally catches it first).
fn unsendable(backend: &str) -> ConfigError {
    load_problem(
        &format!("search.{backend}.api_key"),
        "<redacted>",
        "a key that can be sent in a header: printable ASCII without spaces",
    )
}

fn tavily(settings: &Settings, key: &Secret) -> Result<TavilySearchProvider, ConfigError> {
    let s = &settings.search.tavily;
    TavilySearchProvider::new(&s.base_url, key.expose(), deadlines(settings), outbound())
        .map_err(|_| unsendable("tavily"))
}

fn brave(settings: &Settings, key: &Secret) -> Result<BraveSearchProvider, ConfigError> {
    let s = &settings.search.brave;
    BraveSearchProvider::new(&s.base_url, key.expose(), deadlines(settings), outbound())
        .map_err(|_| unsendable("brave"))
}

fn exa(settings: &Settings, key: &Secret) -> Result<ExaSearchProvider, ConfigError> {
    let s = &settings.search.exa;
    ExaSearchProvider::new(&s.base_url, key.expose(), deadlines(settings), outbound())
        .map_err(|_| unsendable("exa"))
}

fn page_reader(settings: &Settings) -> Result<PageReader, ConfigError> {
    let r = &settings.search.reader;
    PageReader::new(ReaderSettings {
        max_bytes: usize::try_from(r.max_bytes).unwrap_or(usize::MAX),
        user_agent: r.user_agent.clone(),
        allow_private_addresses: r.allow_private_addresses,
        page_timeout: Duration::from_secs(r.timeout_secs),
        max_concurrent: usize::try_from(r.max_concurrent).unwrap_or(1),
        // Leave a moment before the tool's deadline to hand back what was read.
        call_timeout: deadlines(settings)
            .extract
            .saturating_sub(Duration::from_secs(2))
            .max(Duration::from_secs(1)),
    })
    .map_err(|_| {
        load_problem(
            "search.reader.user_agent",
            &r.user_agent,
            "a User-Agent of printable ASCII",
        )
    })
}

/// What `searchgate check-config` reports about each search backend, in order: whether it
/// accepts searchgate's key (Tavily's usage endpoint; one real search elsewhere, since Brave,
/// SearXNG and Exa have no free way to check a key), and the reader's settings when it serves
/// `web_extract`.
pub async fn probe_search(settings: &Settings, configured: &[SearchBackend]) -> Vec<ProbeFinding> {
    let mut findings = Vec::with_capacity(configured.len() + 1);
    for backend in configured {
        let check = format!("{} backend", backend.name());
        let result = match backend {
            SearchBackend::Mock => Ok("mock (placeholder results, no network; set \
                                       TAVILY_API_KEY, BRAVE_API_KEY, EXA_API_KEY or SEARXNG_URL \
                                       for real search)"
                .to_owned()),
            SearchBackend::Tavily { key } => match tavily(settings, key) {
                Ok(tavily) => tavily.usage().await,
                Err(problem) => Err(problem.to_string()),
            },
            SearchBackend::Brave { key } => match brave(settings, key) {
                Ok(brave) => brave.probe().await,
                Err(problem) => Err(problem.to_string()),
            },
            SearchBackend::Searxng { base_url } => {
                SearxngSearchProvider::new(base_url, deadlines(settings), outbound())
                    .probe()
                    .await
            }
            SearchBackend::Exa { key } => match exa(settings, key) {
                Ok(exa) => exa.probe().await,
                Err(problem) => Err(problem.to_string()),
            },
        };
        findings.push(match result {
            Ok(found) => ProbeFinding::ok(&check, found),
            Err(problem) => ProbeFinding::failed(&check, problem),
        });
    }
    if !configured.iter().any(SearchBackend::reads_pages) {
        let r = &settings.search.reader;
        findings.push(ProbeFinding::ok(
            "page reader",
            format!(
                "serves web_extract (no backend reads pages): at most {} bytes and {} s per \
                 page, {} at once, {}",
                r.max_bytes,
                r.timeout_secs,
                r.max_concurrent,
                if r.allow_private_addresses {
                    "private addresses ALLOWED"
                } else {
                    "public addresses only"
                }
            ),
        ));
    }
    findings
}
