//! Typed, validated settings. Layers, later winning: compiled defaults → an optional TOML file
//! (`--config PATH` or `SEARCHGATE_CONFIG`) → the seed project's variables (`PORT`,
//! `TAVILY_API_KEY`, `SCALEKIT_ENVIRONMENT_URL`, `RESOURCE_IDENTIFIER`) → environment variables
//! `SEARCHGATE_<SECTION>__<KEY>`. A bad value is a [`ConfigError`] that names the setting, where
//! it came from, the value (secrets redacted) and what would be accepted. Validation also
//! returns the [`Providers`] the settings choose, parsed, which is what start-up builds from.

mod load;
mod provider;
mod secret;
mod validate;

use std::{collections::BTreeMap, net::SocketAddr, path::PathBuf};

use serde::{Deserialize, Serialize};
use url::Url;

pub use load::{ConfigError, Problem};
pub use provider::{
    AuthProvider, IntrospectionClient, OidcIssuer, OidcProvider, Providers, ScalekitProvider,
    SearchBackend, StaticClient,
};
pub use secret::Secret;

use crate::adapters::store::redact_url;

/// Host names that always reach this machine.
const LOOPBACK_HOSTS: &[&str] = &["localhost", "127.0.0.1", "::1"];
/// Browser origins on this machine, any port (MCP Inspector and other local tools).
const LOOPBACK_ORIGINS: &[&str] = &["http://localhost:*", "http://127.0.0.1:*", "http://[::1]:*"];

/// Every setting of searchgate, one struct per section.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// `development` (default) or `production`; production refuses development-only parts.
    pub profile: Profile,
    /// The HTTP listener and what clients see of it.
    pub server: ServerSettings,
    /// Where state is stored.
    pub database: DatabaseSettings,
    /// Which search backend answers the tools.
    pub search: SearchSettings,
    /// What the MCP server offers and says about itself.
    pub mcp: McpSettings,
    /// Who issues and verifies access tokens.
    pub auth: AuthSettings,
    /// How clients register, and which may use searchgate.
    pub registration: RegistrationSettings,
    /// The audit writer's queue.
    pub audit: AuditSettings,
    /// Logs.
    pub telemetry: TelemetrySettings,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            profile: Profile::Development,
            server: ServerSettings::default(),
            database: DatabaseSettings::default(),
            search: SearchSettings::default(),
            mcp: McpSettings::default(),
            auth: AuthSettings::default(),
            registration: RegistrationSettings::default(),
            audit: AuditSettings::default(),
            telemetry: TelemetrySettings::default(),
        }
    }
}

impl Settings {
    /// Loads the layers described in the module documentation and validates the result.
    ///
    /// # Errors
    /// [`ConfigError`] for an unreadable file, an unknown key or any invalid value.
    pub fn load(config_file: Option<PathBuf>) -> Result<Self, ConfigError> {
        load::load(config_file)
    }

    /// A copy with every derived value filled in for the address actually bound (which differs
    /// from `server.bind` when binding port 0): the public URL, the search provider, and the
    /// default `Host` and `Origin` allow-lists.
    pub fn resolved(&self, addr: SocketAddr) -> Self {
        let mut resolved = self.clone();
        let public_url = self.server.public_url_or(addr);
        let loopback = addr.ip().is_loopback();
        if resolved.server.allowed_hosts.is_empty() {
            let hosts = &mut resolved.server.allowed_hosts;
            if let Some(host) = public_url.host_str() {
                hosts.push(host.trim_matches(['[', ']']).to_owned());
            }
            if loopback {
                hosts.extend(LOOPBACK_HOSTS.iter().map(|h| (*h).to_owned()));
            }
            hosts.dedup();
        }
        if resolved.server.allowed_origins.is_empty() {
            let origins = &mut resolved.server.allowed_origins;
            origins.push(public_url.origin().ascii_serialization());
            if loopback {
                origins.extend(LOOPBACK_ORIGINS.iter().map(|o| (*o).to_owned()));
            }
        }
        resolved.server.public_url = Some(public_url);
        resolved.search.provider = self.search_providers();
        resolved
    }

    /// Checks the settings (again, for those built in code) and returns the providers they
    /// choose, parsed: what start-up builds its adapters from.
    ///
    /// # Errors
    /// As [`Settings::load`].
    pub fn validate(&self) -> Result<Providers, ConfigError> {
        self.validate_with(false)
    }

    /// As [`Settings::validate`]; `custom_auth` says a program supplied its own authorization
    /// server, which makes a non-loopback bind acceptable.
    pub(crate) fn validate_with(&self, custom_auth: bool) -> Result<Providers, ConfigError> {
        validate::validate(
            self,
            &figment::Figment::from(load::InCode(self)),
            custom_auth,
        )
    }

    /// The search backends in effect, in order: the configured list, else every backend whose
    /// key (or, for SearXNG, URL) is set, in the order Tavily, Brave, Exa, SearXNG, else the mock.
    pub fn search_providers(&self) -> Vec<SearchProviderKind> {
        if !self.search.provider.is_empty() {
            return self.search.provider.clone();
        }
        let search = &self.search;
        let configured = [
            (SearchProviderKind::Tavily, search.tavily.api_key.is_some()),
            (SearchProviderKind::Brave, search.brave.api_key.is_some()),
            (SearchProviderKind::Exa, search.exa.api_key.is_some()),
            (
                SearchProviderKind::Searxng,
                search.searxng.base_url.is_some(),
            ),
        ];
        let chosen: Vec<_> = configured
            .into_iter()
            .filter(|(_, set)| *set)
            .map(|(kind, _)| kind)
            .collect();
        if chosen.is_empty() {
            vec![SearchProviderKind::Mock]
        } else {
            chosen
        }
    }
}

/// Deployment profile.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// Local use: development-only parts are allowed.
    Development,
    /// A real deployment: development-only parts are refused.
    Production,
}

/// `[server]`: the listener and its public face.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    /// Address to listen on (`SEARCHGATE_SERVER__BIND`, or `PORT` for the port alone).
    pub bind: SocketAddr,
    /// The URL clients use to reach searchgate; default `http://<bind>`. The MCP resource is
    /// `public_url + mcp_path`.
    pub public_url: Option<Url>,
    /// Path of the MCP endpoint.
    pub mcp_path: String,
    /// `Host` values accepted on the MCP endpoint (DNS-rebinding protection); default: the public
    /// URL's host, plus loopback names when bound to loopback.
    #[serde(deserialize_with = "load::string_or_list")]
    pub allowed_hosts: Vec<String>,
    /// Browser origins accepted on the MCP endpoint (`scheme://host[:port|:*]`); default: the
    /// public URL's origin, plus loopback origins on any port when bound to loopback.
    #[serde(deserialize_with = "load::string_or_list")]
    pub allowed_origins: Vec<String>,
    /// Largest accepted request body, in bytes (default 1 MiB).
    pub max_body_bytes: usize,
    /// Seconds to let in-flight requests finish on SIGINT/SIGTERM.
    pub shutdown_grace_secs: u64,
    /// Seconds a client has to send a request's headers, from its first byte (or from
    /// connecting); then the connection is closed.
    pub header_timeout_secs: u64,
    /// Seconds a client has to send a request's body once searchgate starts reading it (as soon
    /// as the request is authorized); then it is answered 408 and the connection closed.
    pub body_timeout_secs: u64,
    /// Seconds a keep-alive connection may wait for its next request, and a client may leave a
    /// ready answer untaken; a request still being worked on (a tool call included) is never
    /// cut.
    pub idle_timeout_secs: u64,
    /// Most connections open at once; further clients wait to be accepted.
    pub max_connections: usize,
    /// Proxies whose `Forwarded` / `X-Forwarded-For` headers name the client (addresses or
    /// CIDR networks); default none: the TCP peer is the client.
    #[serde(deserialize_with = "load::string_or_list")]
    pub trusted_proxies: Vec<String>,
    /// The header those proxies write the client's address into: `x-forwarded-for` (nginx,
    /// Caddy, most balancers) or `forwarded` (RFC 7239). Only that one is read.
    pub forwarded_header: ForwardedHeader,
    /// Most HTTP/2 streams (requests) open at once on one connection.
    pub http2_max_streams: u32,
    /// HTTPS in the binary; off unless both files are set.
    pub tls: TlsSettings,
}

/// `[server.tls]`: serve HTTPS with these PEM files, read again when they change.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct TlsSettings {
    /// The certificate chain (PEM: the server's certificate, then its intermediates), such as
    /// certbot's `fullchain.pem`.
    pub cert_path: Option<PathBuf>,
    /// Its private key (PEM: PKCS#8, PKCS#1 or SEC1), such as certbot's `privkey.pem`.
    pub key_path: Option<PathBuf>,
    /// Seconds between checks of the files for a renewed certificate (SIGHUP checks at once).
    pub reload_interval_secs: u64,
}

impl Default for TlsSettings {
    fn default() -> Self {
        Self {
            cert_path: None,
            key_path: None,
            reload_interval_secs: 30,
        }
    }
}

impl TlsSettings {
    /// Both files, when HTTPS is on.
    pub fn files(&self) -> Option<(&std::path::Path, &std::path::Path)> {
        Some((self.cert_path.as_deref()?, self.key_path.as_deref()?))
    }
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 10000)),
            public_url: None,
            mcp_path: "/web-search/mcp".to_owned(),
            allowed_hosts: Vec::new(),
            allowed_origins: Vec::new(),
            max_body_bytes: 1024 * 1024,
            shutdown_grace_secs: 10,
            header_timeout_secs: 10,
            body_timeout_secs: 30,
            idle_timeout_secs: 75,
            max_connections: 10_000,
            trusted_proxies: Vec::new(),
            forwarded_header: ForwardedHeader::XForwardedFor,
            http2_max_streams: 100,
            tls: TlsSettings::default(),
        }
    }
}

impl ServerSettings {
    /// The public URL, or `http(s)://<addr>` when none is configured. `addr` is the bound
    /// address, which differs from `bind` when binding port 0.
    pub fn public_url_or(&self, addr: SocketAddr) -> Url {
        self.public_url.clone().unwrap_or_else(|| {
            let scheme = if self.tls.files().is_some() {
                "https"
            } else {
                "http"
            };
            Url::parse(&format!("{scheme}://{addr}")).expect("a socket address forms a valid URL")
        })
    }
}

/// `[database]`.
#[derive(Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseSettings {
    /// `sqlite://PATH` (created on first start) or `postgres://USER:PASSWORD@HOST:PORT/DB`
    /// (several replicas share it; `?sslmode=verify-full` for TLS that checks the server).
    pub url: String,
    /// Most pooled connections.
    pub max_connections: u32,
    /// Connections kept open while idle.
    pub min_connections: u32,
    /// Seconds a query waits for a free connection, and start-up for the first one.
    pub acquire_timeout_secs: u64,
    /// Seconds before an idle connection above `min_connections` is closed.
    pub idle_timeout_secs: u64,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: "sqlite://searchgate.db".to_owned(),
            max_connections: 4,
            min_connections: 0,
            acquire_timeout_secs: 10,
            idle_timeout_secs: 600,
        }
    }
}

// The URL may carry a password: print it redacted.
impl std::fmt::Debug for DatabaseSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseSettings")
            .field("url", &redact_url(&self.url))
            .field("max_connections", &self.max_connections)
            .field("min_connections", &self.min_connections)
            .field("acquire_timeout_secs", &self.acquire_timeout_secs)
            .field("idle_timeout_secs", &self.idle_timeout_secs)
            .finish()
    }
}

/// Search backends searchgate can call.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SearchProviderKind {
    /// Deterministic, clearly marked mock results; no network.
    Mock,
    /// Tavily's search API (search, extract, crawl, map).
    Tavily,
    /// Brave's Search API (search).
    Brave,
    /// A SearXNG instance's JSON API (search; no key).
    Searxng,
    /// Exa's API (search, extract).
    Exa,
}

impl SearchProviderKind {
    /// Every backend's name, as settings spell it.
    pub const NAMES: &'static [&'static str] = &["mock", "tavily", "brave", "searxng", "exa"];

    /// The backend called `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "mock" => Self::Mock,
            "tavily" => Self::Tavily,
            "brave" => Self::Brave,
            "searxng" => Self::Searxng,
            "exa" => Self::Exa,
            _ => return None,
        })
    }
}

/// One backend or a list, in order of preference: a TOML list, or one comma-separated string.
fn provider_list<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<SearchProviderKind>, D::Error> {
    load::string_or_list(deserializer)?
        .iter()
        .map(|name| {
            SearchProviderKind::from_name(name)
                .ok_or_else(|| serde::de::Error::unknown_variant(name, SearchProviderKind::NAMES))
        })
        .collect()
}

/// `[search]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SearchSettings {
    /// The backends in order of preference (`tavily,brave,searxng`): the first healthy one
    /// answers. Empty means every backend whose key or URL is configured, else the mock.
    #[serde(deserialize_with = "provider_list")]
    pub provider: Vec<SearchProviderKind>,
    /// How long a backend is skipped after a failure only its operator can fix (a refused key,
    /// a plan that lacks the call, spent credits), in seconds; 0 never skips it.
    pub cooldown_secs: u64,
    /// How long a result is reused for an identical request, in seconds (0 turns the cache off).
    pub cache_ttl_secs: u64,
    /// Most memory the result cache may use, in MiB (approximately: the text it holds).
    pub cache_max_mb: u64,
    /// Tool calls each principal may make per minute (0 turns the limit off). With
    /// authentication off, all callers share one allowance.
    pub rate_limit_per_minute: u32,
    /// `[search.deadlines]`: how long each tool may take, retries included.
    pub deadlines: DeadlineSettings,
    /// `[search.tavily]`.
    pub tavily: TavilySettings,
    /// `[search.brave]`.
    pub brave: BraveSettings,
    /// `[search.searxng]`.
    pub searxng: SearxngSettings,
    /// `[search.exa]`.
    pub exa: ExaSettings,
    /// `[search.reader]`: the built-in page reader that serves `web_extract` when no backend
    /// reads pages.
    pub reader: PageReaderSettings,
    /// `[search.budget]`: daily budgets, counted in the database so every replica enforces
    /// the same ones.
    pub budget: BudgetSettings,
}

impl Default for SearchSettings {
    fn default() -> Self {
        Self {
            provider: Vec::new(),
            cooldown_secs: 300,
            cache_ttl_secs: 600,
            cache_max_mb: 64,
            rate_limit_per_minute: 60,
            deadlines: DeadlineSettings::default(),
            tavily: TavilySettings::default(),
            brave: BraveSettings::default(),
            searxng: SearxngSettings::default(),
            exa: ExaSettings::default(),
            reader: PageReaderSettings::default(),
            budget: BudgetSettings::default(),
        }
    }
}

/// `[search.deadlines]`, in seconds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DeadlineSettings {
    /// `web_search`.
    pub search_secs: u64,
    /// `web_extract`.
    pub extract_secs: u64,
    /// `web_crawl`.
    pub crawl_secs: u64,
    /// `web_map`.
    pub map_secs: u64,
}

impl Default for DeadlineSettings {
    fn default() -> Self {
        Self {
            search_secs: 30,
            extract_secs: 60,
            crawl_secs: 150,
            map_secs: 150,
        }
    }
}

/// `[search.tavily]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TavilySettings {
    /// searchgate's own Tavily key (`TAVILY_API_KEY` also works).
    pub api_key: Option<Secret>,
    /// Tavily's API root.
    pub base_url: Url,
}

impl Default for TavilySettings {
    fn default() -> Self {
        Self {
            api_key: None,
            base_url: Url::parse("https://api.tavily.com").expect("a valid literal URL"),
        }
    }
}

/// How a call without the tool's scopes is refused.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ScopeRefusal {
    /// HTTP 403 with `WWW-Authenticate: Bearer error="insufficient_scope", …`.
    Http,
    /// A tool result with `isError` and `_meta["mcp/www_authenticate"]`.
    ToolError,
}

/// `[search.budget]`, per UTC day; 0 turns a budget off.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BudgetSettings {
    /// Tool calls each principal may make.
    pub calls_per_day: u64,
    /// Credits each principal may spend (reported credits; one per call to a backend that
    /// reports none; none for a cached answer).
    pub credits_per_day: f64,
    /// Credits the whole deployment may spend.
    pub total_credits_per_day: f64,
}

/// `[mcp]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct McpSettings {
    /// The tools offered, in order (`web_search`, `web_extract`, `web_crawl`, `web_map`,
    /// `search`, `fetch`); empty means the web tools the backends support. A listed tool no
    /// backend can serve stops start-up.
    #[serde(deserialize_with = "load::string_or_list")]
    pub tools: Vec<String>,
    /// A page about this server, shown by clients as its `websiteUrl`.
    pub website_url: Option<Url>,
}

/// `[search.brave]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BraveSettings {
    /// searchgate's own Brave Search API key (`BRAVE_API_KEY` also works).
    pub api_key: Option<Secret>,
    /// Brave's API root.
    pub base_url: Url,
}

impl Default for BraveSettings {
    fn default() -> Self {
        Self {
            api_key: None,
            base_url: Url::parse("https://api.search.brave.com").expect("a valid literal URL"),
        }
    }
}

/// `[search.searxng]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SearxngSettings {
    /// The instance's root, such as `http://searxng.internal:8080` (`SEARXNG_URL` also works);
    /// its `settings.yml` must list `json` in `search.formats`.
    pub base_url: Option<Url>,
}

/// `[search.exa]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ExaSettings {
    /// searchgate's own Exa API key (`EXA_API_KEY` also works).
    pub api_key: Option<Secret>,
    /// Exa's API root.
    pub base_url: Url,
}

impl Default for ExaSettings {
    fn default() -> Self {
        Self {
            api_key: None,
            base_url: Url::parse("https://api.exa.ai").expect("a valid literal URL"),
        }
    }
}

/// `[search.reader]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PageReaderSettings {
    /// Largest page read, in bytes.
    pub max_bytes: u64,
    /// Seconds each page may take.
    pub timeout_secs: u64,
    /// Pages read at once, over all calls.
    pub max_concurrent: u32,
    /// The `User-Agent` sent, so site owners can tell who reads their pages.
    pub user_agent: String,
    /// Whether loopback and private addresses may be read (tests, private deployments);
    /// refused in the production profile.
    pub allow_private_addresses: bool,
}

impl Default for PageReaderSettings {
    /// The reader's own defaults, so the two cannot drift apart.
    fn default() -> Self {
        let reader = crate::adapters::search::ReaderSettings::default();
        Self {
            max_bytes: u64::try_from(reader.max_bytes).unwrap_or(u64::MAX),
            timeout_secs: reader.page_timeout.as_secs(),
            max_concurrent: u32::try_from(reader.max_concurrent).unwrap_or(u32::MAX),
            user_agent: reader.user_agent,
            allow_private_addresses: reader.allow_private_addresses,
        }
    }
}

/// Identity providers searchgate can trust.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum AuthProviderKind {
    /// The embedded development authorization server (loopback only unless
    /// `auth.embedded.allow_remote`; refused in production).
    Embedded,
    /// Any OpenID Connect provider.
    Oidc,
    /// Scalekit.
    Scalekit,
    /// No authentication: for local experiments and the conformance suite; loopback only.
    None,
}

impl AuthProviderKind {
    /// The configuration spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Embedded => "embedded",
            Self::Oidc => "oidc",
            Self::Scalekit => "scalekit",
            Self::None => "none",
        }
    }

    /// Whether this provider verifies tokens.
    pub fn authenticates(self) -> bool {
        !matches!(self, Self::None)
    }
}

/// `[auth]`: who issues tokens and what they must say.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSettings {
    /// `embedded`, `oidc`, `scalekit` or `none`.
    pub provider: AuthProviderKind,
    /// Accepted token issuers; default: the provider's own (`SEARCHGATE_AUTH__ISSUERS`).
    #[serde(deserialize_with = "load::string_or_list")]
    pub issuers: Vec<String>,
    /// Accepted audiences; a token's `aud` must name one. Default: the resource URL (and, for
    /// Scalekit, the resource id) (`SEARCHGATE_AUTH__AUDIENCES`).
    #[serde(deserialize_with = "load::string_or_list")]
    pub audiences: Vec<String>,
    /// Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds.
    pub leeway_secs: u64,
    /// Scopes each tool needs (`[auth.tool_scopes] web_search = ["web-search:read"]`).
    #[serde(deserialize_with = "load::map_of_lists")]
    pub tool_scopes: BTreeMap<String, Vec<String>>,
    /// Broader scopes and the narrower ones they imply (`"web-search:admin" = ["web-search:read"]`).
    #[serde(deserialize_with = "load::map_of_lists")]
    pub scope_implications: BTreeMap<String, Vec<String>>,
    /// `scopes_supported` in the protected-resource metadata; default: the tools' scopes.
    #[serde(deserialize_with = "load::string_or_list")]
    pub scopes_supported: Vec<String>,
    /// `resource_name` in the protected-resource metadata.
    pub resource_name: String,
    /// `resource_documentation` in the protected-resource metadata.
    pub resource_documentation: Option<Url>,
    /// Require RFC 9068's `typ: at+jwt` on JWT access tokens (off: plain `JWT` is accepted too,
    /// as many IdPs send it; other types are always refused).
    pub require_at_jwt_typ: bool,
    /// How long fetched signing keys (JWKS) are trusted when the IdP sends no Cache-Control.
    pub jwks_ttl_secs: u64,
    /// Most verified tokens remembered (so a repeated token skips signature work).
    pub token_cache_capacity: u64,
    /// Longest a verified token is remembered, whatever its expiry.
    pub token_cache_max_ttl_secs: u64,
    /// The scope the admin API (`/api/v1`) requires.
    pub admin_scope: String,
    /// How a `tools/call` without the tool's scopes is refused: `http` (HTTP 403
    /// `insufficient_scope` with a step-up challenge, the MCP default) or `tool_error` (a tool
    /// error carrying the same challenge in `_meta["mcp/www_authenticate"]`, for clients such as
    /// the OpenAI Apps SDK that cannot step up on an HTTP 403).
    pub scope_refusal: ScopeRefusal,
    /// `[auth.oidc]`.
    pub oidc: OidcSettings,
    /// `[auth.scalekit]`.
    pub scalekit: ScalekitSettings,
    /// `[auth.embedded]`.
    pub embedded: EmbeddedSettings,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            provider: AuthProviderKind::Embedded,
            issuers: Vec::new(),
            audiences: Vec::new(),
            leeway_secs: 60,
            // Every web tool reads public web content on searchgate's account; one scope covers
            // them (the per-principal rate limit bounds what any one caller can spend).
            tool_scopes: [
                "web_search",
                "web_extract",
                "web_crawl",
                "web_map",
                "search",
                "fetch",
            ]
            .into_iter()
            .map(|tool| (tool.to_owned(), vec!["web-search:read".to_owned()]))
            .collect(),
            scope_implications: BTreeMap::new(),
            scopes_supported: Vec::new(),
            resource_name: "searchgate web search".to_owned(),
            resource_documentation: None,
            require_at_jwt_typ: false,
            jwks_ttl_secs: 600,
            token_cache_capacity: 10_000,
            token_cache_max_ttl_secs: 300,
            admin_scope: "searchgate:admin".to_owned(),
            scope_refusal: ScopeRefusal::Http,
            oidc: OidcSettings::default(),
            scalekit: ScalekitSettings::default(),
            embedded: EmbeddedSettings::default(),
        }
    }
}

impl AuthSettings {
    /// `scopes_supported` as configured, else every scope a tool needs, in order, once each.
    pub fn effective_scopes_supported(&self) -> Vec<String> {
        if !self.scopes_supported.is_empty() {
            return self.scopes_supported.clone();
        }
        let mut scopes: Vec<String> = Vec::new();
        for scope in self.tool_scopes.values().flatten() {
            if !scopes.contains(scope) {
                scopes.push(scope.clone());
            }
        }
        scopes
    }
}

/// How OIDC access tokens are checked.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum TokenValidation {
    /// JWT access tokens (RFC 9068), verified locally with the provider's JWKS.
    Jwt,
    /// Opaque tokens, checked with the provider's introspection endpoint (RFC 7662).
    Introspection,
}

/// `[auth.oidc]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct OidcSettings {
    /// The issuer identifier, exactly as the provider writes it (with or without a trailing
    /// slash): discovery compares it character for character.
    pub issuer: Option<String>,
    /// `jwt` (default) or `introspection`.
    pub validation: TokenValidation,
    /// searchgate's client id at the provider, for introspection.
    pub client_id: Option<String>,
    /// searchgate's client secret at the provider, for introspection.
    pub client_secret: Option<Secret>,
}

impl Default for OidcSettings {
    fn default() -> Self {
        Self {
            issuer: None,
            validation: TokenValidation::Jwt,
            client_id: None,
            client_secret: None,
        }
    }
}

/// `[auth.scalekit]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct ScalekitSettings {
    /// The Scalekit environment URL (`SCALEKIT_ENVIRONMENT_URL` also works).
    pub environment_url: Option<Url>,
    /// The MCP server's resource id, `res_…` (`RESOURCE_IDENTIFIER` also works).
    pub resource_id: Option<String>,
}

/// `[auth.embedded]`: the development authorization server served under `/idp`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct EmbeddedSettings {
    /// Serve it on a network interface too (it has no passwords: whoever reaches the consent
    /// page can approve). Never in the production profile.
    pub allow_remote: bool,
    /// Lifetime of issued access tokens, in seconds.
    pub access_token_ttl_secs: u64,
    /// Lifetime of refresh tokens, in seconds (renewed at each rotation).
    pub refresh_token_ttl_secs: u64,
    /// Lifetime of authorization codes, in seconds.
    pub code_ttl_secs: u64,
    /// The `sub` of tokens approved on the consent page: the local operator.
    pub subject: String,
}

impl Default for EmbeddedSettings {
    fn default() -> Self {
        Self {
            allow_remote: false,
            access_token_ttl_secs: 3600,
            refresh_token_ttl_secs: 30 * 86_400,
            code_ttl_secs: 60,
            subject: "operator".to_owned(),
        }
    }
}

/// How `/oauth/register` registers clients.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RegistrationMode {
    /// `embedded` with the embedded provider, `upstream` with an IdP (answering with an
    /// explanation when it offers no registration), `off` without authentication.
    Auto,
    /// Forward to the IdP's registration endpoint.
    Upstream,
    /// Answer with the operator's pre-registered client (IdPs without dynamic registration).
    Static,
    /// The embedded authorization server's own registry.
    Embedded,
    /// No `/oauth/register`.
    Off,
}

/// `[registration]`: client registration and the client policy.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RegistrationSettings {
    /// `auto`, `upstream`, `static`, `embedded` or `off`.
    pub mode: RegistrationMode,
    /// Registrations accepted per source address per minute.
    pub rate_limit_per_minute: u32,
    /// Only these client ids may use searchgate, when not empty.
    #[serde(deserialize_with = "load::string_or_list")]
    pub allow_client_ids: Vec<String>,
    /// These client ids may not.
    #[serde(deserialize_with = "load::string_or_list")]
    pub deny_client_ids: Vec<String>,
    /// Only redirect URIs on these hosts may register (`*.example.com` for subdomains), when
    /// not empty.
    #[serde(deserialize_with = "load::string_or_list")]
    pub allow_redirect_hosts: Vec<String>,
    /// Redirect URIs on these hosts may not register.
    #[serde(deserialize_with = "load::string_or_list")]
    pub deny_redirect_hosts: Vec<String>,
    /// `[registration.static]`.
    #[serde(rename = "static")]
    pub static_client: StaticClientSettings,
}

impl Default for RegistrationSettings {
    fn default() -> Self {
        Self {
            mode: RegistrationMode::Auto,
            rate_limit_per_minute: 10,
            allow_client_ids: Vec::new(),
            deny_client_ids: Vec::new(),
            allow_redirect_hosts: Vec::new(),
            deny_redirect_hosts: Vec::new(),
            static_client: StaticClientSettings::default(),
        }
    }
}

/// `[registration.static]`: the client registered by hand at an IdP without dynamic
/// registration.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct StaticClientSettings {
    /// Its client id at the IdP.
    pub client_id: Option<String>,
    /// Redirect URIs it was registered with; `*` matches within one path segment or port.
    #[serde(deserialize_with = "load::string_or_list")]
    pub redirect_patterns: Vec<String>,
}

/// `[audit]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AuditSettings {
    /// Events queued before requests wait for the writer.
    pub queue_capacity: usize,
    /// Most events written per transaction.
    pub batch_size: usize,
    /// Pause after writing a batch that was not full, so that under load each transaction
    /// carries many events (0 writes each event as soon as it arrives).
    pub flush_interval_ms: u64,
    /// Longest a request waits for room in a full queue before it is answered 503.
    pub enqueue_timeout_secs: u64,
    /// Keep what tools were asked for (query, URLs; 200 characters at most) in audit rows.
    pub record_queries: bool,
    /// Delete audit rows older than this many days (0 keeps them forever).
    pub retention_days: u32,
}

impl Default for AuditSettings {
    fn default() -> Self {
        Self {
            queue_capacity: 4096,
            batch_size: 2048,
            flush_interval_ms: 10,
            enqueue_timeout_secs: 5,
            record_queries: true,
            retention_days: 30,
        }
    }
}

/// The header trusted proxies name the client in.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum ForwardedHeader {
    /// `X-Forwarded-For: client, proxy1, …`.
    XForwardedFor,
    /// `Forwarded: for=client, for=proxy1, …` (RFC 7239).
    Forwarded,
}

/// Log formats.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// `[telemetry]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetrySettings {
    /// `text` (default) or `json`.
    pub format: LogFormat,
    /// A tracing filter such as `info` or `searchgate=debug,info`; `RUST_LOG` overrides it.
    pub level: String,
    /// The OpenTelemetry collector traces are exported to over OTLP/HTTP (protobuf), as a base
    /// URL like `OTEL_EXPORTER_OTLP_ENDPOINT` (`/v1/traces` is appended unless the path already
    /// ends so). Unset, the standard `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` turn export on; with none of them traces are off.
    pub otlp_endpoint: Option<Url>,
    /// The clients `GET /metrics` answers (addresses or CIDR networks; the client as
    /// `server.trusted_proxies` resolve it); default empty: anyone who reaches it.
    #[serde(deserialize_with = "load::string_or_list")]
    pub metrics_allowed_from: Vec<String>,
}

impl Default for TelemetrySettings {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            // rmcp logs every stateless request's lifecycle at info; that is noise here.
            level: "info,rmcp=warn".to_owned(),
            otlp_endpoint: None,
            metrics_allowed_from: Vec::new(),
        }
    }
}

/// A single-problem [`ConfigError`] for a value that is valid in form but cannot be served.
pub fn load_problem(setting: &str, value: &str, expected: &str) -> ConfigError {
    ConfigError {
        problems: vec![Problem {
            setting: setting.to_owned(),
            source: "the effective configuration".to_owned(),
            value: Some(format!("{value:?}")),
            expected: format!("expected {expected}"),
        }],
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::{ConfigError, Settings};

    /// [`Settings::load`] with only these environment variables set (and no files), in a
    /// `figment::Jail` so tests running at once do not see each other's variables.
    #[allow(
        clippy::result_large_err,
        reason = "figment::Jail fixes the closure's error type"
    )]
    pub(crate) fn load_env(env: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let mut loaded = None;
        figment::Jail::expect_with(|jail| {
            for (name, value) in env {
                jail.set_env(name, value);
            }
            loaded = Some(Settings::load(None));
            Ok(())
        });
        loaded.expect("the jail ran the closure")
    }
}
