//! The composition root: the only place that names concrete adapters. [`Searchgate`] is also the
//! library's builder: supply your own `SearchProvider`, `AuthorizationServer` or `AuditLog` and
//! everything else is served unchanged.

pub mod audit;
mod clients;
pub mod embedded;

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use poem::{
    EndpointExt, Server as PoemServer,
    listener::{Acceptor, Listener, TcpAcceptor, TcpListener},
};
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::{
    adapters::{
        http_client::outbound,
        idp::{
            EmbeddedAuthorizationServer, OidcAuthorizationServer, OidcConfig,
            ScalekitAuthorizationServer, key_fetch_counts,
        },
        search::{MockSearchProvider, TavilySearchProvider},
        store::{Database, PoolSettings},
    },
    config::{
        AuthProviderKind, ConfigError, RegistrationMode, SearchProviderKind, Settings,
        TokenValidation, load_problem,
    },
    domain::{
        audit::{AuditLog, AuditWriter, AuditWriterConfig},
        auth::{
            AuthorizationServer, CachingAuthorizationServer, ProbeFinding, ScopePolicy, canonical,
        },
        search::{Deadlines, SearchProvider, SearchService, ServicePolicy, WebBackend},
    },
    http::{self, AppState, Metrics, Mount},
    mcp::{ALL_TOOLS, McpServer},
};

/// Why searchgate could not start or stopped abnormally.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The configuration cannot be served (exit code 2).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The database cannot be opened or is newer than this binary.
    #[error(transparent)]
    Database(#[from] crate::adapters::store::OpenError),
    /// Anything else: the listener, the runtime.
    #[error("{0:#}")]
    Other(#[from] anyhow::Error),
}

/// Opens the database `database.url` names (SQLite or PostgreSQL) with the pool settings.
///
/// # Errors
/// When it cannot be reached or opened, or a newer searchgate migrated it.
pub async fn open_database(settings: &Settings) -> Result<Database, StartupError> {
    let database = &settings.database;
    let pool = PoolSettings {
        max_connections: database.max_connections,
        min_connections: database.min_connections,
        acquire_timeout: Duration::from_secs(database.acquire_timeout_secs),
        idle_timeout: Duration::from_secs(database.idle_timeout_secs),
    };
    warn_unverified_tls(&database.url);
    Ok(Database::connect(&database.url, &pool).await?)
}

/// PostgreSQL across a network without a checked certificate: the signing keys and the audit
/// trail cross that connection.
fn warn_unverified_tls(url: &str) {
    let Ok(parsed) = Url::parse(url) else { return };
    if !parsed.scheme().starts_with("postgres") {
        return;
    }
    let loopback = match parsed.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name == "localhost",
        None => true, // a Unix socket
    };
    let mode = parsed
        .query_pairs()
        .find(|(k, _)| k == "sslmode" || k == "ssl-mode")
        .map(|(_, v)| v.into_owned());
    if !loopback && !matches!(mode.as_deref(), Some("verify-ca" | "verify-full")) {
        tracing::warn!(
            database = %crate::adapters::store::redact_url(url),
            "the database connection does not check the server's certificate; add \
             sslmode=verify-full (and sslrootcert=PATH for a private CA) to database.url"
        );
    }
}

/// Builds a searchgate server from settings, with optional custom ports.
pub struct Searchgate {
    settings: Settings,
    search: Option<WebBackend>,
    auth: Option<Arc<dyn AuthorizationServer>>,
    audit: Option<Arc<dyn AuditLog>>,
}

impl Searchgate {
    /// A builder whose ports come from `settings` unless replaced.
    pub fn new(settings: Settings) -> Self {
        Self {
            settings,
            search: None,
            auth: None,
            audit: None,
        }
    }

    /// Serves this search provider instead of the configured one (search only: the page tools
    /// are not offered; see [`Searchgate::with_web_backend`]).
    pub fn with_search_provider(mut self, provider: impl SearchProvider) -> Self {
        self.search = Some(WebBackend::search_only(Arc::new(provider)));
        self
    }

    /// Serves this backend (search plus any page capabilities) instead of the configured one.
    pub fn with_web_backend(mut self, backend: WebBackend) -> Self {
        self.search = Some(backend);
        self
    }

    /// Verifies tokens with this authorization server; the MCP endpoint then requires a bearer
    /// token on every request.
    pub fn with_authorization_server(mut self, auth: impl AuthorizationServer) -> Self {
        self.auth = Some(Arc::new(auth));
        self
    }

    /// Writes audit events to this store instead of the configured database.
    pub fn with_audit_log(mut self, audit: impl AuditLog) -> Self {
        self.audit = Some(Arc::new(audit));
        self
    }

    /// Opens the database, starts the audit writer, binds the listener and connects to the
    /// identity provider.
    ///
    /// # Errors
    /// [`StartupError::Config`] when the settings ask for something this build cannot serve;
    /// [`StartupError::Other`] when the database cannot be opened or the address is taken.
    pub async fn bind(self) -> Result<Server, StartupError> {
        let settings = self.settings;
        // Settings built in code skip `Settings::load`; hold them to the same rules.
        settings.validate_with(self.auth.is_some())?;
        let backend = match self.search {
            Some(backend) => backend,
            None => configured_backend(&settings),
        };
        // Core policy (rate limit, cache, retries, deadlines) in front of every backend.
        let search = Arc::new(SearchService::new(backend, service_policy(&settings)));
        // A scope listed for a tool that does not exist is a typo that leaves the real tool open.
        // Tools this backend does not offer are still known names.
        if let Some(unknown) = settings
            .auth
            .tool_scopes
            .keys()
            .find(|name| !ALL_TOOLS.contains(&name.as_str()))
        {
            let expected = format!("names of tools searchgate serves: {}", ALL_TOOLS.join(", "));
            return Err(load_problem("auth.tool_scopes", unknown, &expected).into());
        }
        // Fail closed: a tool without an entry would need no scope at all, so a tool added to
        // searchgate (or a backend) must not open silently under settings written before it.
        let authenticating = self.auth.is_some() || settings.auth.provider.authenticates();
        let tools = McpServer::new(search.clone());
        if authenticating
            && let Some(open) = tools
                .tool_names()
                .find(|tool| !settings.auth.tool_scopes.contains_key(*tool))
        {
            let expected = format!(
                "an entry for every tool searchgate offers; `{open}` has none. Give it scopes, \
                 such as {open} = [\"web-search:read\"], or [] to let any valid token call it"
            );
            return Err(load_problem("auth.tool_scopes", open, &expected).into());
        }
        // The database serves the audit trail and the embedded authorization server, unless a
        // program replaced both.
        let embedded = self.auth.is_none() && settings.auth.provider == AuthProviderKind::Embedded;
        let store = if self.audit.is_none() || embedded {
            Some(open_database(&settings).await?)
        } else {
            None
        };
        let audit_log: Arc<dyn AuditLog> = match (self.audit, &store) {
            (Some(audit), _) => audit,
            (None, Some(store)) => store.audit.clone(),
            (None, None) => unreachable!("the store is opened when no audit log is given"),
        };

        let acceptor = TcpListener::bind(settings.server.bind)
            .into_acceptor()
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", settings.server.bind))?;
        let local_addr = acceptor
            .local_addr()
            .first()
            .and_then(|addr| addr.as_socket_addr().copied())
            .ok_or_else(|| anyhow::anyhow!("the listener has no socket address"))?;

        let settings = settings.resolved(local_addr);
        let resource_url = resource_url(&settings)?;
        let custom_auth = self.auth.is_some();
        let registration_mode = clients::effective_mode(&settings, custom_auth);
        let mut mounts = Vec::new();
        let mut embedded_server = None;
        let auth = match (self.auth, store.clone()) {
            (Some(auth), _) => Some(auth),
            (None, Some(store)) if embedded => {
                let mut config = embedded::config(&settings, &resource_url);
                if registration_mode == RegistrationMode::Embedded {
                    config.registration_endpoint = Some(format!(
                        "{}/oauth/register",
                        settings
                            .server
                            .public_url_or(local_addr)
                            .as_str()
                            .trim_end_matches('/')
                    ));
                }
                let idp = EmbeddedAuthorizationServer::open(config, store.issuer).await?;
                embedded_server = Some(idp.clone());
                mounts = embedded::mounts(&idp);
                if !settings.server.bind.ip().is_loopback() {
                    tracing::warn!(
                        bind = %settings.server.bind,
                        "THE EMBEDDED DEVELOPMENT AUTHORIZATION SERVER IS REACHABLE FROM THE NETWORK \
                         (auth.embedded.allow_remote): anyone who reaches its consent page can approve \
                         a client and search with your backend key; use oidc or scalekit for real deployments"
                    );
                }
                Some(Arc::new(idp) as Arc<dyn AuthorizationServer>)
            }
            (None, _) => configured_auth(&settings, &resource_url, outbound()).await,
        };
        if let Some(auth) = &auth
            && let Some(idp) = auth.authorization_servers().first()
        {
            tracing::info!(provider = settings.auth.provider.as_str(), authorization_server = %idp, "verifying access tokens");
        } else {
            tracing::warn!(
                provider = settings.auth.provider.as_str(),
                "authentication is OFF: the MCP endpoint is unauthenticated and served on loopback only"
            );
        }
        // Core's verified-token cache sits in front of every authorization server.
        let mut cache_counters = None;
        let auth = auth.map(|inner| -> Arc<dyn AuthorizationServer> {
            let caching = CachingAuthorizationServer::new(
                inner,
                settings.auth.token_cache_capacity,
                Duration::from_secs(settings.auth.token_cache_max_ttl_secs),
            );
            cache_counters = Some(caching.counters());
            Arc::new(caching)
        });
        let scopes = Arc::new(ScopePolicy::new(
            settings.auth.tool_scopes.clone(),
            settings.auth.scope_implications.clone(),
            settings.auth.effective_scopes_supported(),
        ));
        let (audit, writer) = AuditWriter::spawn(
            audit_log.clone(),
            AuditWriterConfig {
                queue_capacity: settings.audit.queue_capacity,
                batch_size: settings.audit.batch_size,
                ..AuditWriterConfig::default()
            },
        );
        let grace = Duration::from_secs(settings.server.shutdown_grace_secs);
        let shutdown = CancellationToken::new();
        // Background tasks stop only after the last request is served, so their final pass
        // (the last-seen flush) sees every request.
        let background = CancellationToken::new();
        let client_store = store.map(|s| s.clients);
        let client_services = clients::services(
            &settings,
            registration_mode,
            auth.clone(),
            embedded_server,
            client_store.clone(),
            &background,
        )
        .await?;
        let mut tasks = client_services.tasks;
        if settings.audit.retention_days > 0 {
            tasks.push(spawn_retention(
                audit_log.clone(),
                Duration::from_secs(u64::from(settings.audit.retention_days) * 86_400),
                background.clone(),
            ));
        }
        let metrics = Arc::new(Metrics::new(
            cache_counters,
            key_fetch_counts,
            audit.clone(),
        ));
        let state = AppState {
            metrics,
            settings: Arc::new(settings),
            resource_url,
            search,
            auth,
            scopes,
            audit_log,
            audit,
            shutdown,
            registrar: client_services.registrar,
            client_store,
            client_gate: client_services.gate,
        };
        Ok(Server {
            acceptor,
            local_addr,
            state,
            mounts,
            writer,
            tasks,
            background,
            grace,
        })
    }
}

/// A bound, ready server.
pub struct Server {
    acceptor: TcpAcceptor,
    local_addr: SocketAddr,
    state: AppState,
    mounts: Vec<Mount>,
    writer: AuditWriter,
    /// Background tasks that end when `background` is cancelled.
    tasks: Vec<tokio::task::JoinHandle<()>>,
    background: CancellationToken,
    grace: Duration,
}

impl Server {
    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The MCP endpoint's URL (the OAuth resource identifier).
    pub fn resource_url(&self) -> &Url {
        &self.state.resource_url
    }

    /// Serves until SIGINT or SIGTERM, then drains in-flight requests and the audit queue.
    ///
    /// # Errors
    /// When serving fails.
    pub async fn run(self) -> Result<(), StartupError> {
        self.run_until(shutdown_signal()).await
    }

    /// Serves until `stop` completes, then shuts down gracefully: in-flight requests get the
    /// configured grace period, open MCP streams are ended, and every queued audit event is
    /// written before this returns.
    ///
    /// # Errors
    /// When serving fails.
    pub async fn run_until(
        self,
        stop: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), StartupError> {
        let Self {
            acceptor,
            local_addr,
            state,
            mounts,
            writer,
            tasks,
            background,
            grace,
        } = self;
        tracing::info!(
            address = %local_addr,
            mcp = %state.resource_url,
            search = state.search.backend().name(),
            "searchgate is listening"
        );
        let shutdown = state.shutdown.clone();
        let app = http::routes(&state, mounts).boxed();
        drop(state);
        let served = PoemServer::new_with_acceptor(acceptor)
            .run_with_graceful_shutdown(
                app,
                async move {
                    stop.await;
                    tracing::info!("shutting down: finishing in-flight requests");
                    shutdown.cancel();
                },
                Some(grace),
            )
            .await;
        // Every request has been served: the last-seen flush runs once more, then the writer
        // drains the audit queue.
        background.cancel();
        for task in tasks {
            let _ = task.await;
        }
        let report = writer.shutdown().await;
        tracing::info!(
            written = report.written,
            lost = report.lost,
            "audit writer stopped"
        );
        served.map_err(|e| StartupError::Other(anyhow::anyhow!("the server failed: {e}")))
    }
}

/// Loads nothing, binds, serves until a signal: what `searchgate serve` does.
///
/// # Errors
/// See [`Searchgate::bind`] and [`Server::run`].
pub async fn serve(settings: Settings) -> Result<(), StartupError> {
    Searchgate::new(settings).bind().await?.run().await
}

/// `public_url + mcp_path`: the MCP endpoint, which is also the OAuth resource identifier.
fn resource_url(settings: &Settings) -> Result<Url, StartupError> {
    let public_url = settings.server.public_url_or(settings.server.bind);
    Url::parse(&format!(
        "{}{}",
        public_url.as_str().trim_end_matches('/'),
        settings.server.mcp_path
    ))
    .map_err(|e| anyhow::anyhow!("the public URL and MCP path do not form a URL: {e}").into())
}

/// The identity provider the settings name; `None` when authentication is off.
async fn configured_auth(
    settings: &Settings,
    resource_url: &Url,
    http: reqwest::Client,
) -> Option<Arc<dyn AuthorizationServer>> {
    let auth = &settings.auth;
    let leeway = Duration::from_secs(auth.leeway_secs);
    let jwks_ttl = Duration::from_secs(auth.jwks_ttl_secs);
    let resource = canonical(resource_url.as_str());
    match auth.provider {
        // The embedded server needs the database; `bind` opens it (and `probe_auth` says so).
        AuthProviderKind::Embedded | AuthProviderKind::None => None,
        AuthProviderKind::Oidc => {
            let issuer = auth
                .oidc
                .issuer
                .as_ref()
                .expect("validated: oidc has an issuer");
            let audiences = if auth.audiences.is_empty() {
                vec![resource]
            } else {
                auth.audiences.clone()
            };
            let introspection =
                (auth.oidc.validation == TokenValidation::Introspection).then(|| {
                    (
                        auth.oidc.client_id.clone().unwrap_or_default(),
                        auth.oidc
                            .client_secret
                            .as_ref()
                            .map(|s| s.expose().to_owned())
                            .unwrap_or_default(),
                    )
                });
            let config = OidcConfig {
                issuer: issuer.clone(),
                issuers: auth.issuers.clone(),
                audiences,
                leeway,
                jwks_ttl,
                introspection,
                strict_typ: auth.require_at_jwt_typ,
            };
            let oidc = OidcAuthorizationServer::new(config, http);
            oidc.discover().await;
            Some(Arc::new(oidc))
        }
        AuthProviderKind::Scalekit => {
            let env = auth
                .scalekit
                .environment_url
                .as_ref()
                .expect("validated: scalekit has an environment");
            let resource_id = auth
                .scalekit
                .resource_id
                .as_deref()
                .expect("validated: scalekit has a resource id");
            Some(Arc::new(ScalekitAuthorizationServer::new(
                &canonical(env.as_str()),
                resource_id.trim(),
                &resource,
                &auth.issuers,
                &auth.audiences,
                leeway,
                jwks_ttl,
                http,
            )))
        }
    }
}

/// What `searchgate check-config` reports about the identity provider: the adapter's own probe
/// (discovery, keys), or that authentication is off.
pub async fn probe_auth(settings: &Settings) -> Vec<ProbeFinding> {
    let settings = settings.resolved(settings.server.bind);
    let resource_url = match resource_url(&settings) {
        Ok(url) => url,
        Err(error) => return vec![ProbeFinding::failed("resource", error.to_string())],
    };
    if settings.auth.provider == AuthProviderKind::Embedded {
        return vec![
            ProbeFinding::ok("resource", resource_url.as_str()),
            ProbeFinding::ok(
                "authorization server",
                format!(
                    "embedded (development) at {}; its keys and clients live in {}",
                    embedded::config(&settings, &resource_url).issuer,
                    crate::adapters::store::redact_url(&settings.database.url)
                ),
            ),
        ];
    }
    match configured_auth(&settings, &resource_url, outbound()).await {
        Some(auth) => {
            let mut findings = vec![ProbeFinding::ok("resource", resource_url.as_str())];
            findings.extend(auth.probe().await);
            findings
        }
        None => vec![ProbeFinding::ok(
            "authentication",
            format!(
                "off (auth.provider = {}): the MCP endpoint is unauthenticated and loopback only",
                settings.auth.provider.as_str()
            ),
        )],
    }
}

fn deadlines(settings: &Settings) -> Deadlines {
    let d = &settings.search.deadlines;
    Deadlines {
        search: Duration::from_secs(d.search_secs),
        extract: Duration::from_secs(d.extract_secs),
        crawl: Duration::from_secs(d.crawl_secs),
        map: Duration::from_secs(d.map_secs),
    }
}

fn service_policy(settings: &Settings) -> ServicePolicy {
    let search = &settings.search;
    ServicePolicy {
        deadlines: deadlines(settings),
        cache_ttl: Duration::from_secs(search.cache_ttl_secs),
        cache_max_bytes: search.cache_max_mb.saturating_mul(1024 * 1024),
        calls_per_minute: search.rate_limit_per_minute,
        ..ServicePolicy::default()
    }
}

fn tavily(settings: &Settings) -> TavilySearchProvider {
    let tavily = &settings.search.tavily;
    let key = tavily
        .api_key
        .as_ref()
        .expect("validated: the tavily provider has a key");
    TavilySearchProvider::new(
        &tavily.base_url,
        key.expose().trim(),
        deadlines(settings),
        outbound(),
    )
}

/// The backend the settings name. Both built-in backends support every tool.
fn configured_backend(settings: &Settings) -> WebBackend {
    match settings.search_provider() {
        SearchProviderKind::Mock => WebBackend::full(Arc::new(MockSearchProvider)),
        SearchProviderKind::Tavily => WebBackend::full(Arc::new(tavily(settings))),
    }
}

/// What `searchgate check-config` reports about the search backend: for Tavily, whether
/// `GET /usage` accepts the key (and the usage it reports).
pub async fn probe_search(settings: &Settings) -> Vec<ProbeFinding> {
    match settings.search_provider() {
        SearchProviderKind::Mock => vec![ProbeFinding::ok(
            "search backend",
            "mock (placeholder results, no network; set TAVILY_API_KEY for real search)",
        )],
        SearchProviderKind::Tavily => vec![match tavily(settings).usage().await {
            Ok(usage) => ProbeFinding::ok("tavily key", usage),
            Err(problem) => ProbeFinding::failed("tavily key", problem),
        }],
    }
}

/// Deletes audit rows older than `keep`, at start and then hourly, until `stop`.
fn spawn_retention(
    audit: Arc<dyn AuditLog>,
    keep: Duration,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(3600));
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = stop.cancelled() => break,
            }
            let before = std::time::SystemTime::now() - keep;
            match audit.prune(before).await {
                Ok(0) => {}
                Ok(removed) => {
                    tracing::info!(removed, "pruned audit rows past the retention period")
                }
                Err(error) => tracing::warn!(error = %error, "cannot prune old audit rows"),
            }
        }
    })
}

async fn shutdown_signal() {
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %error, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(error = %error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}
