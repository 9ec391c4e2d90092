//! Rules that serde cannot express: address families, URL shapes, path syntax, required
//! companions of a chosen provider. Every broken rule becomes a [`Problem`] naming its setting.

use figment::Figment;
use url::Url;

use super::{
    AuthProvider, AuthProviderKind, AuthSettings, DatabaseSettings, IntrospectionClient,
    OidcIssuer, OidcProvider, Providers, RegistrationMode, RegistrationSettings, ScalekitProvider,
    SearchBackend, SearchProviderKind, Secret, Settings, StaticClient, TokenValidation,
    load::{ConfigError, Problem, describe_source, shown_value},
};

/// Paths the MCP endpoint must not shadow.
const RESERVED_PREFIXES: &[&str] = &[
    "/.well-known",
    "/healthz",
    "/readyz",
    "/openapi",
    "/docs",
    "/api",
    "/icon.svg",
];

/// Every broken rule found so far, each described from the figment it came from.
struct Checks<'a> {
    figment: &'a Figment,
    problems: Vec<Problem>,
}

impl Checks<'_> {
    /// Records a problem at `path` unless `ok`.
    fn check(&mut self, ok: bool, path: &[&str], expected: &str) {
        if !ok {
            self.problems.push(Problem {
                setting: path.join("."),
                source: describe_source(self.figment, path),
                value: shown_value(self.figment, path),
                expected: expected.to_owned(),
            });
        }
    }

    /// `value` when it is there; otherwise records a problem at `path`.
    fn require<T>(&mut self, value: Option<T>, path: &[&str], expected: &str) -> Option<T> {
        self.check(value.is_some(), path, expected);
        value
    }
}

/// Checks every rule and returns the providers the settings choose, parsed.
pub(super) fn validate(
    settings: &Settings,
    figment: &Figment,
    custom_auth: bool,
) -> Result<Providers, ConfigError> {
    let mut checks = Checks {
        figment,
        problems: Vec::new(),
    };
    check_server(settings, custom_auth, &mut checks);
    check_database(&settings.database, &mut checks);
    let search = search_backends(settings, &mut checks);
    check_search(settings, &mut checks);
    let auth = auth_provider(settings, &mut checks);
    let static_client = check_registration(settings, &mut checks);
    check_scopes(&settings.auth, &mut checks);
    check_audit_and_telemetry(settings, &mut checks);
    match (auth, search, static_client) {
        (Some(auth), Some(search), Some(static_client)) if checks.problems.is_empty() => {
            Ok(Providers {
                auth,
                search,
                static_client,
            })
        }
        _ => Err(ConfigError {
            problems: checks.problems,
        }),
    }
}

fn check_server(settings: &Settings, custom_auth: bool, checks: &mut Checks) {
    let server = &settings.server;
    // Fail closed: a server that checks no tokens, or whose development authorization server
    // lets anyone approve, must not be reachable from the network.
    let network_ok = match settings.auth.provider {
        AuthProviderKind::None => custom_auth,
        AuthProviderKind::Embedded => custom_auth || settings.auth.embedded.allow_remote,
        AuthProviderKind::Oidc | AuthProviderKind::Scalekit => true,
    };
    checks.check(
        server.bind.ip().is_loopback() || network_ok,
        &["server", "bind"],
        "a loopback address such as 127.0.0.1:10000 or [::1]:10000 while auth.provider is \
         embedded (anyone who reaches its consent page can approve) or none (no token checks); \
         set auth.provider to oidc or scalekit to listen on the network, or, for a trusted \
         network only, SEARCHGATE_AUTH__EMBEDDED__ALLOW_REMOTE=true",
    );
    // Clients on the network must be told a URL they can reach (and tokens must name it).
    checks.check(
        server.bind.ip().is_loopback() || server.public_url.is_some(),
        &["server", "public_url"],
        "the URL clients use, such as https://search.example.com, when listening on a network \
         interface; set SEARCHGATE_SERVER__PUBLIC_URL",
    );
    if let Some(url) = &server.public_url {
        checks.check(
            is_plain_http_url(url),
            &["server", "public_url"],
            "an absolute http(s) URL without query or fragment, such as https://search.example.com",
        );
    }
    checks.check(
        is_valid_mcp_path(&server.mcp_path),
        &["server", "mcp_path"],
        "a path such as /web-search/mcp: starting with `/`, not ending with `/`, made of \
         letters, digits and `-._~/`, and not under /.well-known, /healthz, /readyz, /openapi, \
         /docs or /api",
    );
    checks.check(
        server
            .allowed_hosts
            .iter()
            .all(|h| !h.is_empty() && !h.contains(['/', ' '])),
        &["server", "allowed_hosts"],
        "host names or host:port pairs, such as search.example.com or localhost:10000",
    );
    checks.check(
        server.allowed_origins.iter().all(|o| is_valid_origin(o)),
        &["server", "allowed_origins"],
        "origins such as https://app.example.com, http://localhost:* (any port) or null",
    );
    checks.check(
        (1024..=16 * 1024 * 1024).contains(&server.max_body_bytes),
        &["server", "max_body_bytes"],
        "a size in bytes from 1024 to 16777216 (16 MiB)",
    );
    for (value, key) in [
        (server.header_timeout_secs, "header_timeout_secs"),
        (server.body_timeout_secs, "body_timeout_secs"),
        (server.idle_timeout_secs, "idle_timeout_secs"),
    ] {
        checks.check(
            (1..=3600).contains(&value),
            &["server", key],
            "seconds from 1 to 3600",
        );
    }
    checks.check(
        are_networks(&server.trusted_proxies),
        &["server", "trusted_proxies"],
        "IP addresses or CIDR networks of your reverse proxies, such as 10.0.0.0/8 or \
         127.0.0.1 (comma-separated in the environment)",
    );
    checks.check(
        (1..=1_000_000).contains(&server.max_connections),
        &["server", "max_connections"],
        "a number of connections from 1 to 1000000",
    );
    checks.check(
        (1..=10_000).contains(&server.http2_max_streams),
        &["server", "http2_max_streams"],
        "a number of streams per HTTP/2 connection from 1 to 10000",
    );
    check_tls(settings, checks);
}

/// Both TLS files or neither; and in production, a public face that is HTTPS end to end: TLS
/// here, or an https public URL with the proxy that terminates it named as trusted.
fn check_tls(settings: &Settings, checks: &mut Checks) {
    let server = &settings.server;
    let tls = &server.tls;
    for (set, other, key) in [
        (&tls.cert_path, &tls.key_path, "key_path"),
        (&tls.key_path, &tls.cert_path, "cert_path"),
    ] {
        checks.check(
            set.is_none() || other.is_some(),
            &["server", "tls", key],
            "the other half of the pair: SEARCHGATE_SERVER__TLS__CERT_PATH (the PEM certificate \
             chain, such as /etc/letsencrypt/live/search.example.com/fullchain.pem) and \
             SEARCHGATE_SERVER__TLS__KEY_PATH (its PEM private key, privkey.pem)",
        );
    }
    checks.check(
        (1..=86_400).contains(&tls.reload_interval_secs),
        &["server", "tls", "reload_interval_secs"],
        "seconds from 1 to 86400",
    );
    if settings.profile != super::Profile::Production {
        return;
    }
    let https = server
        .public_url
        .as_ref()
        .is_some_and(|url| url.scheme() == "https");
    if tls.files().is_some() {
        checks.check(
            server.public_url.is_none() || https,
            &["server", "public_url"],
            "an https URL in the production profile (searchgate serves TLS itself here), such \
             as https://search.example.com",
        );
    } else {
        checks.check(
            https,
            &["server", "public_url"],
            "an https URL in the production profile: remote MCP clients and OAuth need HTTPS. \
             Either serve TLS here (SEARCHGATE_SERVER__TLS__CERT_PATH and \
             SEARCHGATE_SERVER__TLS__KEY_PATH) or put a TLS proxy in front and set \
             SEARCHGATE_SERVER__PUBLIC_URL=https://… and SEARCHGATE_SERVER__TRUSTED_PROXIES",
        );
        checks.check(
            !https || !server.trusted_proxies.is_empty(),
            &["server", "trusted_proxies"],
            "the address of the TLS proxy in front (such as 127.0.0.1 or 10.0.0.0/8) in the \
             production profile without TLS here: otherwise every audit row and the \
             registration limit see the proxy instead of the client",
        );
    }
}

fn check_database(database: &DatabaseSettings, checks: &mut Checks) {
    let scheme = database
        .url
        .split_once(':')
        .map(|(scheme, _)| scheme.to_ascii_lowercase());
    checks.check(
        matches!(
            scheme.as_deref(),
            Some("sqlite" | "postgres" | "postgresql")
        ),
        &["database", "url"],
        "a SQLite URL such as sqlite://searchgate.db, or a PostgreSQL URL such as \
         postgres://searchgate@db.internal:5432/searchgate",
    );
    checks.check(
        database.max_connections >= 1,
        &["database", "max_connections"],
        "at least 1",
    );
    checks.check(
        database.min_connections <= database.max_connections,
        &["database", "min_connections"],
        "at most database.max_connections",
    );
    checks.check(
        (1..=300).contains(&database.acquire_timeout_secs),
        &["database", "acquire_timeout_secs"],
        "seconds from 1 to 300",
    );
    checks.check(
        database.idle_timeout_secs >= 1,
        &["database", "idle_timeout_secs"],
        "at least 1 second",
    );
}

/// The backends the search settings choose, in order, each with what it needs checked.
fn search_backends(settings: &Settings, checks: &mut Checks) -> Option<Vec<SearchBackend>> {
    let kinds = settings.search_providers();
    for (i, kind) in kinds.iter().enumerate() {
        checks.check(
            !kinds[..i].contains(kind),
            &["search", "provider"],
            "each backend at most once, such as tavily,brave,searxng",
        );
    }
    checks.check(
        !(settings.profile == super::Profile::Production
            && kinds.len() > 1
            && kinds.contains(&SearchProviderKind::Mock)),
        &["search", "provider"],
        "real backends only in the production profile: with mock in the list, a failing \
         backend would be covered by placeholder results that look like web pages",
    );
    let search = &settings.search;
    let backends: Vec<Option<SearchBackend>> = kinds
        .iter()
        .map(|kind| match kind {
            SearchProviderKind::Mock => Some(SearchBackend::Mock),
            SearchProviderKind::Tavily => api_key(
                checks,
                search.tavily.api_key.as_ref(),
                "tavily",
                "a Tavily API key (tvly-…)",
                "TAVILY_API_KEY",
            )
            .map(|key| SearchBackend::Tavily { key }),
            SearchProviderKind::Brave => api_key(
                checks,
                search.brave.api_key.as_ref(),
                "brave",
                "a Brave Search API key",
                "BRAVE_API_KEY",
            )
            .map(|key| SearchBackend::Brave { key }),
            SearchProviderKind::Exa => api_key(
                checks,
                search.exa.api_key.as_ref(),
                "exa",
                "an Exa API key",
                "EXA_API_KEY",
            )
            .map(|key| SearchBackend::Exa { key }),
            SearchProviderKind::Searxng => checks
                .require(
                    search.searxng.base_url.clone().filter(is_plain_http_url),
                    &["search", "searxng", "base_url"],
                    "the SearXNG instance's http(s) URL, such as http://searxng.internal:8080, \
                     when searxng is a provider; set SEARCHGATE_SEARCH__SEARXNG__BASE_URL or \
                     SEARXNG_URL",
                )
                .map(|base_url| SearchBackend::Searxng { base_url }),
        })
        .collect();
    backends.into_iter().collect()
}

/// `backend`'s key, trimmed, when it is set and can travel in a header.
fn api_key(
    checks: &mut Checks,
    key: Option<&Secret>,
    backend: &str,
    what: &str,
    alias: &str,
) -> Option<Secret> {
    let path = ["search", backend, "api_key"];
    let key = key.map(|k| k.expose().trim()).filter(|k| !k.is_empty());
    let upper = backend.to_ascii_uppercase();
    let key = checks.require(
        key,
        &path,
        &format!(
            "searchgate's own {what} when {backend} is a provider; set \
             SEARCHGATE_SEARCH__{upper}__API_KEY or {alias}"
        ),
    )?;
    // The key travels in a header: anything else could not be sent at all.
    let key = checks.require(
        key.bytes().all(|b| b.is_ascii_graphic()).then_some(key),
        &path,
        &format!("{what} as the provider shows it: printable ASCII without spaces or line breaks"),
    )?;
    Some(Secret::new(key))
}

fn check_search(settings: &Settings, checks: &mut Checks) {
    let search = &settings.search;
    for (backend, url, example) in [
        ("tavily", &search.tavily.base_url, "https://api.tavily.com"),
        (
            "brave",
            &search.brave.base_url,
            "https://api.search.brave.com",
        ),
        ("exa", &search.exa.base_url, "https://api.exa.ai"),
    ] {
        checks.check(
            is_plain_http_url(url),
            &["search", backend, "base_url"],
            &format!("an absolute http(s) URL such as {example}"),
        );
    }
    for (key, value) in [
        ("credits_per_day", search.budget.credits_per_day),
        ("total_credits_per_day", search.budget.total_credits_per_day),
    ] {
        checks.check(
            value.is_finite() && value >= 0.0,
            &["search", "budget", key],
            "a number of credits, 0 or more (0 turns the budget off)",
        );
    }
    checks.check(
        search.cooldown_secs <= 86_400,
        &["search", "cooldown_secs"],
        "at most 86400 seconds (a day); 0 never skips a failing backend",
    );
    let reader = &search.reader;
    checks.check(
        (1_000..=100_000_000).contains(&reader.max_bytes),
        &["search", "reader", "max_bytes"],
        "from 1000 to 100000000 bytes",
    );
    checks.check(
        (1..=120).contains(&reader.timeout_secs),
        &["search", "reader", "timeout_secs"],
        "from 1 to 120 seconds",
    );
    checks.check(
        (1..=64).contains(&reader.max_concurrent),
        &["search", "reader", "max_concurrent"],
        "from 1 to 64 pages at once",
    );
    checks.check(
        !reader.user_agent.trim().is_empty()
            && reader.user_agent.len() <= 200
            && reader
                .user_agent
                .bytes()
                .all(|b| b == b' ' || b.is_ascii_graphic()),
        &["search", "reader", "user_agent"],
        "a User-Agent of printable ASCII, at most 200 characters, that names searchgate and a \
         contact",
    );
    checks.check(
        !(reader.allow_private_addresses && settings.profile == super::Profile::Production),
        &["search", "reader", "allow_private_addresses"],
        "false in the production profile: reading internal addresses on a caller's behalf is \
         a server-side request forgery hole",
    );
    checks.check(
        search.cache_ttl_secs <= 86_400,
        &["search", "cache_ttl_secs"],
        "at most 86400 seconds (a day); 0 turns the cache off",
    );
    checks.check(
        (1..=4096).contains(&search.cache_max_mb),
        &["search", "cache_max_mb"],
        "from 1 to 4096 MiB (set cache_ttl_secs = 0 to turn the cache off)",
    );
    checks.check(
        search.rate_limit_per_minute <= 100_000,
        &["search", "rate_limit_per_minute"],
        "at most 100000 calls per minute; 0 turns the limit off",
    );
    for (key, value) in [
        ("search_secs", search.deadlines.search_secs),
        ("extract_secs", search.deadlines.extract_secs),
        ("crawl_secs", search.deadlines.crawl_secs),
        ("map_secs", search.deadlines.map_secs),
    ] {
        checks.check(
            (1..=600).contains(&value),
            &["search", "deadlines", key],
            "from 1 to 600 seconds",
        );
    }
}

/// The identity provider's rules, and the provider parsed.
fn auth_provider(settings: &Settings, checks: &mut Checks) -> Option<AuthProvider> {
    let auth = &settings.auth;
    match auth.provider {
        AuthProviderKind::None => Some(AuthProvider::None),
        AuthProviderKind::Embedded => {
            checks.check(
                settings.profile != super::Profile::Production,
                &["auth", "provider"],
                "oidc or scalekit in the production profile: the embedded authorization server \
                 is for development (anyone who reaches its consent page can approve)",
            );
            let embedded = &auth.embedded;
            checks.check(
                (60..=86_400).contains(&embedded.access_token_ttl_secs),
                &["auth", "embedded", "access_token_ttl_secs"],
                "between 60 and 86400 seconds",
            );
            checks.check(
                (60..=366 * 86_400).contains(&embedded.refresh_token_ttl_secs),
                &["auth", "embedded", "refresh_token_ttl_secs"],
                "between 60 seconds and 366 days",
            );
            checks.check(
                (1..=600).contains(&embedded.code_ttl_secs),
                &["auth", "embedded", "code_ttl_secs"],
                "between 1 and 600 seconds (OAuth 2.1 recommends at most 600)",
            );
            checks.check(
                !embedded.subject.trim().is_empty() && embedded.subject.len() <= 255,
                &["auth", "embedded", "subject"],
                "a non-empty name of at most 255 bytes",
            );
            Some(AuthProvider::Embedded)
        }
        AuthProviderKind::Oidc => {
            let issuer = checks.require(
                auth.oidc.issuer.as_deref().and_then(OidcIssuer::parse),
                &["auth", "oidc", "issuer"],
                "the issuer URL of your OpenID Connect provider when auth.provider is oidc; set \
                 SEARCHGATE_AUTH__OIDC__ISSUER",
            );
            let introspection = match auth.oidc.validation {
                TokenValidation::Jwt => Some(None),
                TokenValidation::Introspection => {
                    let client_id = checks.require(
                        not_blank(auth.oidc.client_id.as_deref()),
                        &["auth", "oidc", "client_id"],
                        "searchgate's client id at the provider when auth.oidc.validation is \
                         introspection; set SEARCHGATE_AUTH__OIDC__CLIENT_ID",
                    );
                    let client_secret = checks.require(
                        auth.oidc
                            .client_secret
                            .clone()
                            .filter(|s| !s.expose().is_empty()),
                        &["auth", "oidc", "client_secret"],
                        "searchgate's client secret at the provider when auth.oidc.validation \
                         is introspection; set SEARCHGATE_AUTH__OIDC__CLIENT_SECRET",
                    );
                    client_id
                        .zip(client_secret)
                        .map(|(client_id, client_secret)| {
                            Some(IntrospectionClient {
                                client_id: client_id.to_owned(),
                                client_secret,
                            })
                        })
                }
            };
            Some(AuthProvider::Oidc(OidcProvider {
                issuer: issuer?,
                introspection: introspection?,
            }))
        }
        AuthProviderKind::Scalekit => {
            let environment_url = checks.require(
                auth.scalekit
                    .environment_url
                    .clone()
                    .filter(is_plain_http_url),
                &["auth", "scalekit", "environment_url"],
                "your Scalekit environment URL (https://<env>.scalekit.com) when auth.provider is \
                 scalekit; set SEARCHGATE_AUTH__SCALEKIT__ENVIRONMENT_URL or SCALEKIT_ENVIRONMENT_URL",
            );
            let resource_id = checks.require(
                not_blank(auth.scalekit.resource_id.as_deref()),
                &["auth", "scalekit", "resource_id"],
                "the MCP server's resource id from the Scalekit dashboard (res_…) when \
                 auth.provider is scalekit; set SEARCHGATE_AUTH__SCALEKIT__RESOURCE_ID or \
                 RESOURCE_IDENTIFIER",
            );
            Some(AuthProvider::Scalekit(ScalekitProvider {
                environment_url: environment_url?,
                resource_id: resource_id?.trim().to_owned(),
            }))
        }
    }
}

/// The registration rules; the static client when `registration.mode` is `static`
/// (`Some(None)` otherwise), `None` when it is incomplete.
fn check_registration(settings: &Settings, checks: &mut Checks) -> Option<Option<StaticClient>> {
    let registration = &settings.registration;
    checks.check(
        (1..=10_000).contains(&registration.rate_limit_per_minute),
        &["registration", "rate_limit_per_minute"],
        "between 1 and 10000",
    );
    let static_client = static_client(registration, checks);
    checks.check(
        !(registration.mode == RegistrationMode::Embedded
            && settings.auth.provider != AuthProviderKind::Embedded),
        &["registration", "mode"],
        "embedded only with auth.provider = embedded",
    );
    static_client
}

fn static_client(
    registration: &RegistrationSettings,
    checks: &mut Checks,
) -> Option<Option<StaticClient>> {
    if registration.mode != RegistrationMode::Static {
        return Some(None);
    }
    let client = &registration.static_client;
    let client_id = checks.require(
        not_blank(client.client_id.as_deref()),
        &["registration", "static", "client_id"],
        "the client id you registered at your IdP when registration.mode is static; set \
         SEARCHGATE_REGISTRATION__STATIC__CLIENT_ID",
    );
    let redirect_patterns = checks.require(
        (!client.redirect_patterns.is_empty()).then(|| client.redirect_patterns.clone()),
        &["registration", "static", "redirect_patterns"],
        "the redirect URIs registered with that client (comma-separated; * matches a port \
         or one path segment), such as http://127.0.0.1:*/callback; set \
         SEARCHGATE_REGISTRATION__STATIC__REDIRECT_PATTERNS",
    );
    Some(Some(StaticClient {
        client_id: client_id?.to_owned(),
        redirect_patterns: redirect_patterns?,
    }))
}

fn check_scopes(auth: &AuthSettings, checks: &mut Checks) {
    let is_scope = |s: &String| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
    };
    checks.check(
        auth.tool_scopes.values().flatten().all(is_scope),
        &["auth", "tool_scopes"],
        "scope names without spaces or quotes, such as web_search = [\"web-search:read\"]",
    );
    checks.check(
        auth.scope_implications
            .iter()
            .all(|(k, v)| is_scope(k) && v.iter().all(is_scope)),
        &["auth", "scope_implications"],
        "broader scopes mapped to the narrower scopes they imply, such as \
         \"web-search:admin\" = [\"web-search:read\"]",
    );
    checks.check(
        is_scope(&auth.admin_scope),
        &["auth", "admin_scope"],
        "one scope name without spaces or quotes, such as searchgate:admin",
    );
    // MCP 2026-07-28: resource servers SHOULD NOT advertise offline_access.
    checks.check(
        auth.scopes_supported
            .iter()
            .all(|s| is_scope(s) && s != "offline_access"),
        &["auth", "scopes_supported"],
        "scope names without spaces, not including offline_access (refresh is the client's \
         business with its authorization server)",
    );
    checks.check(
        auth.leeway_secs <= 600,
        &["auth", "leeway_secs"],
        "at most 600 seconds",
    );
    checks.check(
        (30..=86_400).contains(&auth.jwks_ttl_secs),
        &["auth", "jwks_ttl_secs"],
        "from 30 to 86400 seconds",
    );
    checks.check(
        auth.token_cache_max_ttl_secs <= 3600,
        &["auth", "token_cache_max_ttl_secs"],
        "at most 3600 seconds (0 turns the cache off)",
    );
}

fn check_audit_and_telemetry(settings: &Settings, checks: &mut Checks) {
    checks.check(
        settings.audit.queue_capacity >= 1,
        &["audit", "queue_capacity"],
        "at least 1",
    );
    checks.check(
        (1..=10_000).contains(&settings.audit.batch_size),
        &["audit", "batch_size"],
        "from 1 to 10000",
    );
    checks.check(
        settings.audit.flush_interval_ms <= 1000,
        &["audit", "flush_interval_ms"],
        "at most 1000 milliseconds",
    );
    checks.check(
        (1..=300).contains(&settings.audit.enqueue_timeout_secs),
        &["audit", "enqueue_timeout_secs"],
        "from 1 to 300 seconds",
    );
    checks.check(
        tracing_subscriber::EnvFilter::try_new(&settings.telemetry.level).is_ok(),
        &["telemetry", "level"],
        "a tracing filter such as info, debug or searchgate=debug,info",
    );
    checks.check(
        are_networks(&settings.telemetry.metrics_allowed_from),
        &["telemetry", "metrics_allowed_from"],
        "IP addresses or CIDR networks of your Prometheus servers, such as 10.0.0.0/8 or \
         127.0.0.1 (comma-separated in the environment)",
    );
    if let Some(endpoint) = &settings.telemetry.otlp_endpoint {
        checks.check(
            is_plain_http_url(endpoint),
            &["telemetry", "otlp_endpoint"],
            "an http:// or https:// URL of an OTLP/HTTP collector (port 4318 by default) without \
             query, fragment or credentials; headers go in OTEL_EXPORTER_OTLP_HEADERS",
        );
    }
}

/// Whether every entry is an IP address or a CIDR network.
fn are_networks(entries: &[String]) -> bool {
    entries.iter().all(|entry| {
        let entry = entry.trim();
        entry.parse::<ipnet::IpNet>().is_ok() || entry.parse::<std::net::IpAddr>().is_ok()
    })
}

/// `value` unless it is missing or only white space.
fn not_blank(value: Option<&str>) -> Option<&str> {
    value.filter(|v| !v.trim().is_empty())
}

pub(super) fn is_plain_http_url(url: &Url) -> bool {
    matches!(url.scheme(), "http" | "https")
        && url.host_str().is_some_and(|h| !h.is_empty())
        && url.query().is_none()
        && url.fragment().is_none()
        && url.username().is_empty()
        && url.password().is_none()
}

fn is_valid_mcp_path(path: &str) -> bool {
    path.len() > 1
        && path.len() <= 200
        && path.starts_with('/')
        && !path.ends_with('/')
        && !path.contains("//")
        && path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~/".contains(&b))
        && !RESERVED_PREFIXES
            .iter()
            .any(|p| path == *p || path.starts_with(&format!("{p}/")))
}

/// `null`, or `scheme://host[:port|:*]` with no path.
pub(crate) fn is_valid_origin(origin: &str) -> bool {
    if origin == "null" {
        return true;
    }
    let Some((scheme, rest)) = origin.split_once("://") else {
        return false;
    };
    let authority = rest.strip_suffix(":*").unwrap_or(rest);
    matches!(scheme, "http" | "https")
        && !authority.is_empty()
        && !authority.contains(['/', '?', '#', ' ', '@'])
        && http::uri::Authority::try_from(authority).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::load_env;

    fn settings_problems(env: &[(&str, &str)]) -> Vec<String> {
        match load_env(env) {
            Ok(_) => Vec::new(),
            Err(e) => e.problems.into_iter().map(|p| p.setting).collect(),
        }
    }

    #[test]
    fn a_network_bind_needs_a_provider_that_checks_tokens() {
        let remote = [
            ("SEARCHGATE_SERVER__BIND", "0.0.0.0:10000"),
            (
                "SEARCHGATE_SERVER__PUBLIC_URL",
                "https://search.example.com",
            ),
        ];
        assert_eq!(
            settings_problems(&remote),
            ["server.bind"],
            "the default checks no tokens"
        );
        let unnamed = [
            ("SEARCHGATE_SERVER__BIND", "0.0.0.0:10000"),
            ("SEARCHGATE_AUTH__PROVIDER", "oidc"),
            ("SEARCHGATE_AUTH__OIDC__ISSUER", "https://idp.example.com"),
        ];
        assert_eq!(
            settings_problems(&unnamed),
            ["server.public_url"],
            "0.0.0.0 is no URL for clients"
        );
        let oidc = [
            ("SEARCHGATE_SERVER__BIND", "0.0.0.0:10000"),
            (
                "SEARCHGATE_SERVER__PUBLIC_URL",
                "https://search.example.com",
            ),
            ("SEARCHGATE_AUTH__PROVIDER", "oidc"),
            ("SEARCHGATE_AUTH__OIDC__ISSUER", "https://idp.example.com"),
        ];
        assert!(
            settings_problems(&oidc).is_empty(),
            "with an IdP the restriction is lifted"
        );
        let mut settings = Settings::default();
        settings.server.bind = "0.0.0.0:10000".parse().unwrap();
        settings.server.public_url = Some("https://search.example.com".parse().unwrap());
        assert!(settings.validate().is_err());
        assert!(
            settings.validate_with(true).is_ok(),
            "a program's own authorization server counts"
        );
    }

    #[test]
    fn each_rule_names_its_setting() {
        let cases: &[(&str, &str, &str, &str)] = &[
            (
                "SEARCHGATE_SERVER__BIND",
                "0.0.0.0:10000",
                "server.bind",
                "non-loopback refused without token checks",
            ),
            (
                "SEARCHGATE_AUTH__SCOPES_SUPPORTED",
                "web-search:read,offline_access",
                "auth.scopes_supported",
                "offline_access is not advertised",
            ),
            (
                "SEARCHGATE_AUTH__LEEWAY_SECS",
                "3600",
                "auth.leeway_secs",
                "an hour of skew",
            ),
            (
                "SEARCHGATE_AUTH__TOOL_SCOPES__WEB_SEARCH",
                "bad scope",
                "auth.tool_scopes",
                "a scope with a space",
            ),
            (
                "SEARCHGATE_SERVER__BIND",
                "nonsense",
                "server.bind",
                "not a socket address",
            ),
            (
                "SEARCHGATE_SERVER__PUBLIC_URL",
                "ftp://x.example",
                "server.public_url",
                "ftp is not http(s)",
            ),
            (
                "SEARCHGATE_SERVER__PUBLIC_URL",
                "not a url",
                "server.public_url",
                "unparseable URL",
            ),
            (
                "SEARCHGATE_SERVER__MCP_PATH",
                "mcp",
                "server.mcp_path",
                "no leading slash",
            ),
            (
                "SEARCHGATE_SERVER__MCP_PATH",
                "/mcp/",
                "server.mcp_path",
                "trailing slash",
            ),
            (
                "SEARCHGATE_SERVER__MCP_PATH",
                "/healthz",
                "server.mcp_path",
                "shadows health",
            ),
            (
                "SEARCHGATE_SERVER__ALLOWED_ORIGINS",
                "evil",
                "server.allowed_origins",
                "not an origin",
            ),
            (
                "SEARCHGATE_SERVER__MAX_BODY_BYTES",
                "10",
                "server.max_body_bytes",
                "too small",
            ),
            (
                "SEARCHGATE_SERVER__HEADER_TIMEOUT_SECS",
                "0",
                "server.header_timeout_secs",
                "no time to send headers",
            ),
            (
                "SEARCHGATE_SERVER__MAX_CONNECTIONS",
                "0",
                "server.max_connections",
                "no connection allowed",
            ),
            (
                "SEARCHGATE_DATABASE__URL",
                "mysql://x",
                "database.url",
                "unsupported database",
            ),
            (
                "SEARCHGATE_DATABASE__MIN_CONNECTIONS",
                "9",
                "database.min_connections",
                "more idle connections than the pool holds",
            ),
            (
                "SEARCHGATE_DATABASE__ACQUIRE_TIMEOUT_SECS",
                "0",
                "database.acquire_timeout_secs",
                "no time to connect",
            ),
            (
                "SEARCHGATE_SEARCH__PROVIDER",
                "tavily",
                "search.tavily.api_key",
                "tavily needs a key",
            ),
            (
                "SEARCHGATE_AUTH__PROVIDER",
                "oidc",
                "auth.oidc.issuer",
                "oidc needs an issuer",
            ),
            (
                "SEARCHGATE_SEARCH__DEADLINES__CRAWL_SECS",
                "0",
                "search.deadlines.crawl_secs",
                "a crawl needs some time",
            ),
            (
                "SEARCHGATE_SEARCH__CACHE_MAX_MB",
                "0",
                "search.cache_max_mb",
                "an empty cache",
            ),
            (
                "SEARCHGATE_SEARCH__CACHE_TTL_SECS",
                "999999",
                "search.cache_ttl_secs",
                "longer than a day",
            ),
            (
                "SEARCHGATE_SEARCH__RATE_LIMIT_PER_MINUTE",
                "-1",
                "search.rate_limit_per_minute",
                "negative",
            ),
            (
                "SEARCHGATE_AUTH__PROVIDER",
                "scalekit",
                "auth.scalekit.environment_url",
                "scalekit needs its environment",
            ),
            (
                "SEARCHGATE_AUTH__PROVIDER",
                "okta",
                "auth.provider",
                "unknown provider",
            ),
            (
                "SEARCHGATE_TELEMETRY__LEVEL",
                "loud=[",
                "telemetry.level",
                "bad filter",
            ),
            (
                "SEARCHGATE_TELEMETRY__OTLP_ENDPOINT",
                "grpc://collector:4317",
                "telemetry.otlp_endpoint",
                "OTLP over HTTP only",
            ),
            (
                "SEARCHGATE_TELEMETRY__METRICS_ALLOWED_FROM",
                "10.0.0.0/8,prometheus.internal",
                "telemetry.metrics_allowed_from",
                "names are not addresses",
            ),
            (
                "SEARCHGATE_AUDIT__BATCH_SIZE",
                "0",
                "audit.batch_size",
                "empty batches",
            ),
            (
                "SEARCHGATE_AUDIT__ENQUEUE_TIMEOUT_SECS",
                "0",
                "audit.enqueue_timeout_secs",
                "a request must be able to wait for the queue",
            ),
        ];
        for (var, value, setting, reason) in cases {
            let found = settings_problems(&[(var, value)]);
            assert!(
                found.iter().any(|s| s == setting),
                "{reason}: expected {setting} in {found:?}"
            );
        }
    }

    #[test]
    fn a_secret_is_never_echoed_in_an_error() {
        let err = load_env(&[("SEARCHGATE_SEARCH__TAVILY__API_KEY", "[\"tvly-leak\"]")])
            .expect_err("a list is not a key");
        let text = err.to_string();
        assert!(!text.contains("tvly-leak"), "the key leaked: {text}");
        assert!(text.contains("search.tavily.api_key"), "{text}");
    }

    #[test]
    fn a_tavily_key_that_cannot_be_sent_is_refused_without_echoing_it() {
        for key in ["tvly-abc def", "tvly-\u{e9}t\u{e9}", "tvly-abc\u{7}"] {
            let err = load_env(&[("TAVILY_API_KEY", key)]).expect_err("a key no header can carry");
            let problem = &err.problems[0];
            assert_eq!(problem.setting, "search.tavily.api_key", "{key:?}");
            assert_eq!(problem.source, "TAVILY_API_KEY", "the alias is named");
            assert!(
                problem.expected.contains("printable ASCII"),
                "says what is accepted: {}",
                problem.expected
            );
            assert!(!err.to_string().contains(key), "the key leaked: {err}");
        }
    }

    #[test]
    fn validation_returns_the_providers_parsed() {
        let providers = load_env(&[
            ("SEARCHGATE_AUTH__PROVIDER", "oidc"),
            ("SEARCHGATE_AUTH__OIDC__ISSUER", "https://idp.example.com"),
            ("SEARCHGATE_AUTH__OIDC__VALIDATION", "introspection"),
            ("SEARCHGATE_AUTH__OIDC__CLIENT_ID", "searchgate"),
            ("SEARCHGATE_AUTH__OIDC__CLIENT_SECRET", "s3cret"),
            ("TAVILY_API_KEY", "  tvly-abc  "),
        ])
        .expect("valid")
        .validate()
        .expect("valid");
        let AuthProvider::Oidc(oidc) = &providers.auth else {
            panic!("oidc was chosen: {:?}", providers.auth);
        };
        assert_eq!(
            oidc.issuer.as_str(),
            "https://idp.example.com",
            "the issuer stays exactly as written (discovery compares strings)"
        );
        assert_eq!(oidc.issuer.url().host_str(), Some("idp.example.com"));
        let client = oidc.introspection.as_ref().expect("introspection");
        assert_eq!(
            (client.client_id.as_str(), client.client_secret.expose()),
            ("searchgate", "s3cret")
        );
        assert_eq!(
            providers.search,
            [SearchBackend::Tavily {
                key: Secret::new("tvly-abc")
            }],
            "a Tavily key selects Tavily, trimmed"
        );
        assert_eq!(providers.static_client, None);
    }

    #[test]
    fn origins_and_paths_follow_their_grammar() {
        for (origin, ok) in [
            ("https://app.example.com", true),
            ("http://localhost:*", true),
            ("http://127.0.0.1:6274", true),
            ("null", true),
            ("https://app.example.com/path", false),
            ("app.example.com", false),
            ("https://", false),
        ] {
            assert_eq!(is_valid_origin(origin), ok, "{origin}");
        }
        for (path, ok) in [
            ("/web-search/mcp", true),
            ("/mcp", true),
            ("/", false),
            ("/a b", false),
            ("/api/v1/x", false),
            ("/apis", true),
        ] {
            assert_eq!(is_valid_mcp_path(path), ok, "{path}");
        }
    }
}
