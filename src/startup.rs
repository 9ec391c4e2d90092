//! The composition root: the only place that names concrete adapters. [`Searchgate`] is also the
//! library's builder: supply your own `SearchProvider`, `AuthorizationServer` or `AuditLog` and
//! everything else is served unchanged.

mod clients;
pub mod embedded;
mod search;

pub use search::probe_search;

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use poem::{
    EndpointExt, Response, Server as PoemServer,
    endpoint::BoxEndpoint,
    listener::{Acceptor, AcceptorExt, BoxAcceptor, Listener, TcpAcceptor, TcpListener},
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
        store::{Database, PoolSettings},
    },
    config::{AuthProvider, ConfigError, Providers, RegistrationMode, Settings, load_problem},
    domain::{
        audit::{AuditLog, AuditSink, AuditWriter, AuditWriterConfig},
        auth::{
            AuthorizationServer, CacheCounters, CachingAuthorizationServer, ProbeFinding,
            ScopePolicy, canonical,
        },
        budget::Budgets,
        clients::{ClientPolicy, ClientStore},
        search::{Backends, SearchProvider, SearchService, WebBackend},
        time::Timestamp,
    },
    http::{
        self, AppState, ConnectionLimits, Connections, GuardedAcceptor, Metrics, Mount, Tracker,
        tls,
    },
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
    search: Option<Backends>,
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
        self.search = Some(WebBackend::search_only(Arc::new(provider)).into());
        self
    }

    /// Serves these backends (one, or several tried in order, each with search and any page
    /// capabilities) instead of the configured ones.
    pub fn with_web_backend(mut self, backends: impl Into<Backends>) -> Self {
        self.search = Some(backends.into());
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
        let Self {
            settings,
            search,
            auth: custom_auth,
            audit: custom_audit,
        } = self;
        // Settings built in code skip `Settings::load`; hold them to the same rules.
        let providers = settings.validate_with(custom_auth.is_some())?;
        let hangups = tls::hangups();
        let backends = match search {
            Some(backends) => search::with_cooldown(&settings, backends)?,
            None => search::configured_backends(&settings, &providers.search)?,
        };
        // The database first: budgets are counted there.
        let budget = search::budget_policy(&settings);
        let embedded = custom_auth.is_none() && providers.auth == AuthProvider::Embedded;
        let (store, audit_log) =
            open_store(&settings, custom_audit, embedded || budget.is_on()).await?;
        // Core policy (rate limit, budgets, cache, retries, fallback, deadlines) in front of the
        // backends.
        let mut service = SearchService::new(backends, search::service_policy(&settings));
        if let Some(store) = store.as_ref().filter(|_| budget.is_on()) {
            service = service.with_budgets(Arc::new(Budgets::new(budget, store.budgets.clone())));
        }
        let search = Arc::new(service);
        let authenticating = custom_auth.is_some() || settings.auth.provider.authenticates();
        let mcp = McpServer::new(search.clone())
            .with_tools(&settings.mcp.tools)
            .map_err(|unservable| {
                let shown = match &unservable {
                    crate::mcp::UnservableTool::Unknown(name) => name.clone(),
                    crate::mcp::UnservableTool::Unsupported(name) => (*name).to_owned(),
                };
                load_problem(
                    "mcp.tools",
                    &shown,
                    &format!(
                        "tools searchgate can serve with the configured backends, from: {} \
                         ({unservable})",
                        ALL_TOOLS.join(", ")
                    ),
                )
            })?;
        check_tool_scopes(&settings, &mcp, authenticating)?;
        let (acceptor, local_addr) = listen(settings.server.bind).await?;
        let connections = Connections::new(ConnectionLimits::new(&settings.server));
        let acceptor = GuardedAcceptor::new(acceptor, connections.clone());
        let (acceptor, tls) = with_tls(acceptor, &settings)?;

        let settings = settings.resolved(local_addr);
        let resource_url = resource_url(&settings)?;
        let registration_mode = clients::effective_mode(&settings, custom_auth.is_some());
        // The client policy needs the client store; the embedded server applies it too.
        let client_policy = match &store {
            Some(store) => Some(clients::policy(&settings, store.clients.as_ref()).await?),
            None => None,
        };
        let auth = match (custom_auth, &store) {
            (Some(auth), _) => AuthStack::custom(auth),
            (None, Some(store)) if embedded => {
                AuthStack::embedded(
                    &settings,
                    store,
                    &resource_url,
                    registration_mode,
                    client_policy.clone(),
                )
                .await?
            }
            // Fail closed: the embedded server without its database must never mean "no
            // authentication" (`open_store` opens it whenever `embedded` is set).
            (None, None) if embedded => {
                return Err(anyhow::anyhow!(
                    "the embedded authorization server needs the database, which is not open"
                )
                .into());
            }
            (None, _) => AuthStack::external(&settings, &providers.auth, &resource_url).await,
        };
        auth.announce(&settings);
        let (auth, cache_counters) = auth.cached(&settings);
        let background = spawn_background(
            &settings,
            &providers,
            registration_mode,
            &auth,
            store.map(|s| s.clients).zip(client_policy),
            audit_log.clone(),
        )
        .await?;
        let grace = Duration::from_secs(settings.server.shutdown_grace_secs);
        let shutdown = CancellationToken::new();
        let mut tasks = background.clients.tasks;
        tasks.push(tls::spawn_reloader(
            tls.clone(),
            Duration::from_secs(settings.server.tls.reload_interval_secs),
            hangups,
            background.stop.clone(),
        ));
        let http2_max_streams = settings.server.http2_max_streams;
        let state = AppState {
            metrics: Arc::new(
                Metrics::new(cache_counters, key_fetch_counts, background.audit.clone())
                    .with_connections(connections.clone())
                    .with_budgets(search.budgets().cloned())
                    .with_tls(tls.clone()),
            ),
            scopes: Arc::new(ScopePolicy::new(
                settings.auth.tool_scopes.clone(),
                settings.auth.scope_implications.clone(),
                settings.auth.effective_scopes_supported(),
            )),
            shutdown: shutdown.clone(),
            settings: Arc::new(settings),
            resource_url,
            search,
            mcp,
            auth: auth.verifier,
            audit_log,
            audit: background.audit,
            registrar: background.clients.registrar,
            client_store: background.client_store,
            client_gate: background.clients.gate,
        };
        Ok(Server {
            acceptor,
            local_addr,
            resource_url: state.resource_url.clone(),
            backend_name: state
                .search
                .backends()
                .iter()
                .next()
                .map_or("none", |b| b.name),
            // The routes hold what they need of the state.
            app: http::routes(&state, auth.mounts)
                .with(Tracker(connections))
                .map_to_response()
                .boxed(),
            shutdown,
            writer: background.writer,
            tasks,
            background: background.stop,
            grace,
            http2_max_streams,
        })
    }
}

/// Refuses tool scopes that would leave a tool open: a scope listed for a tool that does not
/// exist (a typo that leaves the real tool open), and, when tokens are checked, a tool this
/// backend offers without an entry.
fn check_tool_scopes(
    settings: &Settings,
    tools: &McpServer,
    authenticating: bool,
) -> Result<(), ConfigError> {
    // Tools this backend does not offer are still known names.
    if let Some(unknown) = settings
        .auth
        .tool_scopes
        .keys()
        .find(|name| !ALL_TOOLS.contains(&name.as_str()))
    {
        let expected = format!("names of tools searchgate serves: {}", ALL_TOOLS.join(", "));
        return Err(load_problem("auth.tool_scopes", unknown, &expected));
    }
    // Fail closed: a tool without an entry would need no scope at all, so a tool added to
    // searchgate (or a backend) must not open silently under settings written before it.
    if authenticating
        && let Some(open) = tools
            .tool_names()
            .find(|tool| !settings.auth.tool_scopes.contains_key(*tool))
    {
        let expected = format!(
            "an entry for every tool searchgate offers; `{open}` has none. Give it scopes, \
             such as {open} = [\"web-search:read\"], or [] to let any valid token call it"
        );
        return Err(load_problem("auth.tool_scopes", open, &expected));
    }
    Ok(())
}

/// Opens the database when something needs it: the audit trail (unless a program gave its own
/// audit log) or the embedded authorization server. Returns it and the audit log in effect.
async fn open_store(
    settings: &Settings,
    custom_audit: Option<Arc<dyn AuditLog>>,
    needed: bool,
) -> Result<(Option<Database>, Arc<dyn AuditLog>), StartupError> {
    match custom_audit {
        Some(audit) if !needed => Ok((None, audit)),
        Some(audit) => Ok((Some(open_database(settings).await?), audit)),
        None => {
            let store = open_database(settings).await?;
            let audit = store.audit.clone();
            Ok((Some(store), audit))
        }
    }
}

/// `acceptor` with TLS over it when the settings name certificate files (loaded now: a pair
/// that does not load stops start-up, naming the file), and the reload state.
fn with_tls(
    acceptor: GuardedAcceptor,
    settings: &Settings,
) -> Result<(BoxAcceptor, Option<Arc<tls::Reloads>>), StartupError> {
    let Some((cert, key)) = settings.server.tls.files() else {
        return Ok((acceptor.boxed(), None));
    };
    let files = tls::CertificateFiles {
        cert: cert.to_owned(),
        key: key.to_owned(),
    };
    let (certificate, contents) = files.load(&tls::provider()).map_err(|why| {
        load_problem(
            "server.tls.cert_path",
            &cert.display().to_string(),
            &format!("a PEM certificate chain and its private key that load: {why}"),
        )
    })?;
    tracing::info!(
        subject = %certificate.info.subject,
        names = %certificate.info.names.join(","),
        not_after = %tls::rfc3339(certificate.info.not_after),
        "serving HTTPS"
    );
    let current = tls::CurrentCertificate::new(certificate);
    let config = tls::server_config(current.clone())
        .map_err(|e| anyhow::anyhow!("the TLS configuration cannot be built: {e}"))?;
    let reloads = tls::Reloads::new(files, current, contents);
    Ok((
        tls::TlsAcceptor::new(acceptor, config).boxed(),
        Some(reloads),
    ))
}

/// Binds the listener; returns it with the address actually bound (port 0 picks one).
async fn listen(bind: SocketAddr) -> Result<(TcpAcceptor, SocketAddr), StartupError> {
    let acceptor = TcpListener::bind(bind)
        .into_acceptor()
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {bind}: {e}"))?;
    let local_addr = acceptor
        .local_addr()
        .first()
        .and_then(|addr| addr.as_socket_addr().copied())
        .ok_or_else(|| anyhow::anyhow!("the listener has no socket address"))?;
    Ok((acceptor, local_addr))
}

/// The token verifier and what comes with it: the embedded server and its routes.
struct AuthStack {
    /// `None` serves unauthenticated (loopback only).
    verifier: Option<Arc<dyn AuthorizationServer>>,
    /// The embedded authorization server, which also registers clients.
    embedded: Option<EmbeddedAuthorizationServer>,
    /// Its routes.
    mounts: Vec<Mount>,
}

impl AuthStack {
    /// A program's own authorization server.
    fn custom(auth: Arc<dyn AuthorizationServer>) -> Self {
        Self {
            verifier: Some(auth),
            embedded: None,
            mounts: Vec::new(),
        }
    }

    /// The identity provider the settings name, other than the embedded one.
    async fn external(settings: &Settings, provider: &AuthProvider, resource_url: &Url) -> Self {
        Self {
            verifier: configured_auth(settings, provider, resource_url, outbound()).await,
            embedded: None,
            mounts: Vec::new(),
        }
    }

    /// The embedded authorization server, its keys and clients in `store`.
    async fn embedded(
        settings: &Settings,
        store: &Database,
        resource_url: &Url,
        registration_mode: RegistrationMode,
        policy: Option<ClientPolicy>,
    ) -> Result<Self, StartupError> {
        let mut config = embedded::config(settings, resource_url);
        if registration_mode == RegistrationMode::Embedded {
            config.registration_endpoint = Some(format!(
                "{}/oauth/register",
                settings
                    .server
                    .public_url_or(settings.server.bind)
                    .as_str()
                    .trim_end_matches('/')
            ));
        }
        let mut idp = EmbeddedAuthorizationServer::open(config, store.issuer.clone()).await?;
        if let Some(policy) = policy {
            idp = idp.with_client_policy(policy, store.clients.clone());
        }
        if !settings.server.bind.ip().is_loopback() {
            tracing::warn!(
                bind = %settings.server.bind,
                "THE EMBEDDED DEVELOPMENT AUTHORIZATION SERVER IS REACHABLE FROM THE NETWORK \
                 (auth.embedded.allow_remote): anyone who reaches its consent page can approve \
                 a client and search with your backend key; use oidc or scalekit for real deployments"
            );
        }
        Ok(Self {
            verifier: Some(Arc::new(idp.clone())),
            mounts: embedded::mounts(&idp),
            embedded: Some(idp),
        })
    }

    /// Logs who verifies tokens, or that nobody does.
    fn announce(&self, settings: &Settings) {
        if let Some(auth) = &self.verifier
            && let Some(idp) = auth.authorization_servers().first()
        {
            tracing::info!(provider = settings.auth.provider.as_str(), authorization_server = %idp, "verifying access tokens");
        } else {
            tracing::warn!(
                provider = settings.auth.provider.as_str(),
                "authentication is OFF: the MCP endpoint is unauthenticated and served on loopback only"
            );
        }
    }

    /// The same stack with core's verified-token cache in front of the verifier, and the
    /// cache's counters for the metrics.
    fn cached(mut self, settings: &Settings) -> (Self, Option<Arc<CacheCounters>>) {
        let Some(inner) = self.verifier.take() else {
            return (self, None);
        };
        let caching = CachingAuthorizationServer::new(
            inner,
            settings.auth.token_cache_capacity,
            Duration::from_secs(settings.auth.token_cache_max_ttl_secs),
        );
        let counters = caching.counters();
        self.verifier = Some(Arc::new(caching));
        (self, Some(counters))
    }
}

/// What runs beside the server until it stops.
struct Background {
    /// The audit writer's queue, and the writer to drain at shutdown.
    audit: AuditSink,
    writer: AuditWriter,
    /// Registration and the client gate, with their tasks (and the retention task).
    clients: clients::ClientServices,
    client_store: Option<Arc<dyn ClientStore>>,
    /// Cancelled after the last request is served.
    stop: CancellationToken,
}

/// Starts the audit writer, the client services' tasks and audit retention.
async fn spawn_background(
    settings: &Settings,
    providers: &Providers,
    registration_mode: RegistrationMode,
    auth: &AuthStack,
    clients: Option<(Arc<dyn ClientStore>, ClientPolicy)>,
    audit_log: Arc<dyn AuditLog>,
) -> Result<Background, StartupError> {
    let client_store = clients.as_ref().map(|(store, _)| store.clone());
    let (audit, writer) = AuditWriter::spawn(
        audit_log.clone(),
        AuditWriterConfig {
            queue_capacity: settings.audit.queue_capacity,
            batch_size: settings.audit.batch_size,
            flush_interval: Duration::from_millis(settings.audit.flush_interval_ms),
            enqueue_timeout: Duration::from_secs(settings.audit.enqueue_timeout_secs),
            ..AuditWriterConfig::default()
        },
    );
    // Background tasks stop only after the last request is served, so their final pass
    // (the last-seen flush) sees every request.
    let stop = CancellationToken::new();
    let mut clients = clients::services(
        registration_mode,
        providers.static_client.as_ref(),
        auth.verifier.clone(),
        auth.embedded.clone(),
        clients,
        &stop,
    );
    if settings.audit.retention_days > 0 {
        clients.tasks.push(spawn_retention(
            audit_log,
            Duration::from_secs(u64::from(settings.audit.retention_days) * 86_400),
            stop.clone(),
        ));
    }
    Ok(Background {
        audit,
        writer,
        clients,
        client_store,
        stop,
    })
}

/// A bound, ready server.
pub struct Server {
    /// The guarded TCP acceptor, with TLS over it when configured.
    acceptor: BoxAcceptor,
    local_addr: SocketAddr,
    resource_url: Url,
    /// The search backend's name, for the start-up log line.
    backend_name: &'static str,
    app: BoxEndpoint<'static, Response>,
    /// Cancelled at shutdown so open MCP streams end.
    shutdown: CancellationToken,
    writer: AuditWriter,
    /// Background tasks that end when `background` is cancelled.
    tasks: Vec<tokio::task::JoinHandle<()>>,
    background: CancellationToken,
    grace: Duration,
    http2_max_streams: u32,
}

impl Server {
    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The MCP endpoint's URL (the OAuth resource identifier).
    pub fn resource_url(&self) -> &Url {
        &self.resource_url
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
        tracing::info!(
            address = %self.local_addr,
            mcp = %self.resource_url,
            search = self.backend_name,
            "searchgate is listening"
        );
        let shutdown = self.shutdown;
        // Header size limits are hyper's: 16 KiB of HTTP/2 headers (poem's), and HTTP/1's
        // buffer; pending resets are capped by poem (20), against rapid-reset floods.
        let served = PoemServer::new_with_acceptor(self.acceptor)
            .http2_max_concurrent_streams(self.http2_max_streams)
            .run_with_graceful_shutdown(
                self.app,
                async move {
                    stop.await;
                    tracing::info!("shutting down: finishing in-flight requests");
                    shutdown.cancel();
                },
                Some(self.grace),
            )
            .await;
        // Every request has been served: the last-seen flush runs once more, then the writer
        // drains the audit queue.
        self.background.cancel();
        for task in self.tasks {
            let _ = task.await;
        }
        let report = self.writer.shutdown().await;
        tracing::info!(
            written = report.written,
            set_aside = report.set_aside,
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
    provider: &AuthProvider,
    resource_url: &Url,
    http: reqwest::Client,
) -> Option<Arc<dyn AuthorizationServer>> {
    let auth = &settings.auth;
    let leeway = Duration::from_secs(auth.leeway_secs);
    let jwks_ttl = Duration::from_secs(auth.jwks_ttl_secs);
    let resource = canonical(resource_url.as_str());
    match provider {
        // The embedded server needs the database; `bind` opens it (and `probe_auth` says so).
        AuthProvider::Embedded | AuthProvider::None => None,
        AuthProvider::Oidc(oidc) => {
            let audiences = if auth.audiences.is_empty() {
                vec![resource]
            } else {
                auth.audiences.clone()
            };
            let config = OidcConfig {
                issuer: oidc.issuer.as_str().to_owned(),
                issuers: auth.issuers.clone(),
                audiences,
                leeway,
                jwks_ttl,
                introspection: oidc.introspection.as_ref().map(|client| {
                    (
                        client.client_id.clone(),
                        client.client_secret.expose().to_owned(),
                    )
                }),
                strict_typ: auth.require_at_jwt_typ,
            };
            let oidc = OidcAuthorizationServer::new(config, http);
            oidc.discover().await;
            Some(Arc::new(oidc))
        }
        AuthProvider::Scalekit(scalekit) => Some(Arc::new(ScalekitAuthorizationServer::new(
            &canonical(scalekit.environment_url.as_str()),
            &scalekit.resource_id,
            &resource,
            &auth.issuers,
            &auth.audiences,
            leeway,
            jwks_ttl,
            http,
        ))),
    }
}

/// What `searchgate check-config` reports about the identity provider: the adapter's own probe
/// (discovery, keys), or that authentication is off.
pub async fn probe_auth(settings: &Settings, provider: &AuthProvider) -> Vec<ProbeFinding> {
    let settings = settings.resolved(settings.server.bind);
    let resource_url = match resource_url(&settings) {
        Ok(url) => url,
        Err(error) => return vec![ProbeFinding::failed("resource", error.to_string())],
    };
    if *provider == AuthProvider::Embedded {
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
    match configured_auth(&settings, provider, &resource_url, outbound()).await {
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
            let before = Timestamp::now().saturating_sub(keep);
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
