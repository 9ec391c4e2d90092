//! The HTTP surface: poem routes for health and the OpenAPI document (poem-openapi), and the MCP
//! endpoint with its transport guards. Depends on the domain ports and the resolved settings,
//! never on a concrete adapter.

mod admin;
mod audit_gate;
mod audit_view;
mod bearer;
mod body_guard;
mod client_addr;
mod connections;
mod error;
mod health;
mod mcp_endpoint;
mod metrics;
mod oauth;
pub mod openapi;
mod registration;
mod request_id;
pub mod tls;
mod transport_guard;

use std::sync::Arc;

use poem::{Endpoint, EndpointExt, Response, Route, endpoint::BoxEndpoint, middleware::Cors};
use tokio_util::sync::CancellationToken;
use url::Url;

pub use audit_view::{AuditEventView, rfc3339};
pub use bearer::{Challenge, ClientGate};
pub use client_addr::{ClientAddr, Networks};
pub use connections::{ConnectionLimits, Connections, GuardedAcceptor, GuardedStream, Tracker};
pub use error::{ApiError, ErrorBody};
#[doc(hidden)]
pub use mcp_endpoint::read_envelope;
pub use metrics::Metrics;
pub use oauth::ProtectedResourceMetadata;
pub use request_id::RequestId;
pub use transport_guard::HostPolicy;

use crate::{
    config::Settings,
    domain::{
        audit::{AuditLog, AuditSink},
        auth::{AuthorizationServer, ScopePolicy},
        clients::{ClientStore, Registrar},
        search::SearchService,
    },
};

/// Everything the HTTP layer needs, shared by all requests.
#[derive(Clone)]
pub struct AppState {
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// Settings with derived values filled in for the bound address.
    pub settings: Arc<Settings>,
    /// `public_url + mcp_path`: the MCP resource identifier.
    pub resource_url: Url,
    /// The web tools' core (cache, rate limit, retries, deadlines) over the search backend.
    pub search: Arc<SearchService>,
    /// The MCP handler with the tools the settings offer.
    pub mcp: crate::mcp::McpServer,
    /// Verifies access tokens (core's token cache in front); `None` serves unauthenticated
    /// (loopback only).
    pub auth: Option<Arc<dyn AuthorizationServer>>,
    /// Which scopes each tool needs.
    pub scopes: Arc<ScopePolicy>,
    /// The audit store, for readiness.
    pub audit_log: Arc<dyn AuditLog>,
    /// The audit writer's queue.
    pub audit: AuditSink,
    /// Cancelled at shutdown so open MCP streams end.
    pub shutdown: CancellationToken,
    /// Registers clients at `/oauth/register`; `None` when registration is off.
    pub registrar: Option<Arc<Registrar>>,
    /// The registered-client cache, for the admin API.
    pub client_store: Option<Arc<dyn ClientStore>>,
    /// The client policy and last-seen tracker, applied to every verified token.
    pub client_gate: Option<ClientGate>,
}

impl AppState {
    /// The path-suffixed protected-resource metadata URL (RFC 9728 §3.1), named in challenges.
    pub fn resource_metadata_url(&self) -> String {
        let origin = self.resource_url.origin().ascii_serialization();
        format!("{origin}{}", self.resource_metadata_path())
    }

    /// The public URL without a trailing slash (`https://host[/prefix]`).
    pub fn public_origin_url(&self) -> String {
        self.settings
            .server
            .public_url_or(self.settings.server.bind)
            .as_str()
            .trim_end_matches('/')
            .to_owned()
    }

    /// RFC 9728 §3.1: the well-known segment goes between the host and the resource's whole
    /// path, so a public URL with a path prefix (behind a proxy) keeps the prefix after it.
    fn resource_metadata_path(&self) -> String {
        format!("{WELL_KNOWN_RESOURCE}{}", self.resource_url.path())
    }

    /// The protected-resource metadata, when authentication is on.
    fn resource_metadata(&self) -> Option<ProtectedResourceMetadata> {
        let auth = self.auth.as_ref()?;
        Some(ProtectedResourceMetadata {
            resource: self.resource_url.as_str().to_owned(),
            authorization_servers: auth.authorization_servers(),
            scopes_supported: self.scopes.supported().to_vec(),
            bearer_methods_supported: vec!["header".to_owned()],
            resource_name: self.settings.auth.resource_name.clone(),
            resource_documentation: self
                .settings
                .auth
                .resource_documentation
                .as_ref()
                .map(|u| u.to_string()),
        })
    }

    /// How requests are authenticated, for readiness and logs.
    pub fn auth_mode(&self) -> &'static str {
        if self.auth.is_some() {
            self.settings.auth.provider.as_str()
        } else {
            "disabled"
        }
    }
}

/// The endpoint of each middleware in this module: the middleware itself (its settings, cloned
/// once per route) around what it wraps. A middleware writes its `call` on `Layered<Itself, E>`
/// and reads its settings from `self.layer`, instead of copying them into an endpoint type of
/// its own.
pub struct Layered<L, E> {
    layer: L,
    inner: E,
}

impl<L, E> Layered<L, E> {
    fn new(layer: L, inner: E) -> Self {
        Self { layer, inner }
    }
}

/// Extra routes an adapter serves on searchgate's origin (the embedded authorization server).
/// They get the `Host` check (DNS rebinding) and, when `cors`, CORS for the allowed browser
/// origins (token endpoints and discovery documents are called by browser clients such as MCP
/// Inspector).
pub struct Mount {
    /// Where: an exact path, or a prefix when `nested`.
    pub path: String,
    /// Whether `path` is a prefix for the endpoint's own routes.
    pub nested: bool,
    /// Whether browsers on the allowed origins may call it cross-origin.
    pub cors: bool,
    /// What answers.
    pub endpoint: BoxEndpoint<'static, Response>,
}

/// RFC 9728's well-known prefix.
const WELL_KNOWN_RESOURCE: &str = "/.well-known/oauth-protected-resource";

/// Clients that read the authorization server's metadata on searchgate's origin register
/// through searchgate (the embedded server names it in its own metadata).
fn registration_endpoint(state: &AppState) -> Option<String> {
    state
        .registrar
        .as_ref()
        .map(|_| format!("{}/oauth/register", state.public_origin_url()))
}

/// The documented HTTP API (poem-openapi) over `state`.
fn documented_api(
    state: &AppState,
) -> poem_openapi::OpenApiService<
    (
        health::HealthApi,
        oauth::OAuthApi,
        registration::RegistrationApi,
        admin::AdminApi,
    ),
    (),
> {
    let oauth = oauth::OAuthApi::new(
        state.resource_metadata(),
        state.auth.clone(),
        registration_endpoint(state),
    );
    let admin = admin::AdminApi::new(
        admin::AdminGuard {
            auth: state.auth.clone(),
            scope: state.settings.auth.admin_scope.clone(),
            scopes: state.scopes.clone(),
            challenge: Challenge {
                resource_metadata: state.resource_metadata_url(),
                scope: state.settings.auth.admin_scope.clone(),
            },
            policy: state.client_gate.as_ref().map(|g| g.policy.clone()),
        },
        state.client_store.clone(),
        state.client_gate.as_ref().map(|g| g.policy.clone()),
        state.audit.clone(),
        Some(state.audit_log.clone()),
    );
    openapi::service(
        health::HealthApi::new(
            state.audit_log.clone(),
            state.audit.clone(),
            state.auth_mode(),
        ),
        oauth,
        registration::RegistrationApi::new(
            state.registrar.clone(),
            state.settings.registration.rate_limit_per_minute,
            state.audit.clone(),
        ),
        admin,
    )
}

/// The whole application: every route, and `mounts`, with request ids and access logging.
pub fn routes(state: &AppState, mounts: Vec<Mount>) -> impl Endpoint + 'static {
    let metadata = state.resource_metadata();
    let registration_endpoint = registration_endpoint(state);
    let api = documented_api(state);
    // The served document is poem-openapi's, finished with what it cannot express (the bearer
    // scheme, the MCP operation); the browsable UI shows the same.
    let raw = api.spec();
    let document = openapi::finish(&raw, &state.settings.server.mcp_path);
    let json = serde_json::to_string_pretty(&document).unwrap_or_default();
    let yaml = serde_yaml::to_string(&document).unwrap_or_default();
    // The browsable UI embeds the whole of Swagger UI (1.6 MB): made at the first visit rather
    // than held by every idle replica.
    let docs_document = serde_json::to_string(&document).unwrap_or_default();
    let docs_state = state.clone();
    let docs_html = std::sync::OnceLock::<bytes::Bytes>::new();
    let spec = poem::endpoint::make_sync(move |_| {
        Response::builder()
            .content_type("application/json; charset=utf-8")
            .body(json.clone())
    });
    let spec_yaml = poem::endpoint::make_sync(move |_| {
        Response::builder()
            .content_type("application/yaml; charset=utf-8")
            .body(yaml.clone())
    });
    let docs = poem::endpoint::make_sync(move |_| {
        let html = docs_html.get_or_init(|| {
            let api = documented_api(&docs_state);
            api.swagger_ui_html()
                .replacen(&api.spec(), &docs_document, 1)
                .into()
        });
        Response::builder()
            .content_type("text/html; charset=utf-8")
            .body(html.clone())
    });
    let suffixed = state.resource_metadata_path();
    let suffixed_api = Arc::new(oauth::OAuthApi::new(
        metadata,
        state.auth.clone(),
        registration_endpoint,
    ));
    // Discovery documents and probes are public; browser clients (MCP Inspector) fetch the
    // discovery documents cross-origin.
    let public_cors = || Cors::new().allow_methods([poem::http::Method::GET]);
    let hosts = Arc::new(HostPolicy::new(
        &state.settings.server.allowed_hosts,
        &state.settings.server.allowed_origins,
    ));
    let mut route = Route::new();
    for mount in mounts {
        let guard = transport_guard::TransportGuard::hosts_only(hosts.clone());
        let endpoint = if mount.cors {
            let policy = hosts.clone();
            mount
                .endpoint
                .with(
                    Cors::new()
                        .allow_origins_fn(move |origin| policy.origin_allowed(origin))
                        .allow_methods([poem::http::Method::GET, poem::http::Method::POST]),
                )
                .with(guard)
                .boxed()
        } else {
            mount.endpoint.with(guard).boxed()
        };
        route = if mount.nested {
            route.nest(&mount.path, endpoint)
        } else {
            route.at(&mount.path, endpoint)
        };
    }
    route
        .at(
            &state.settings.server.mcp_path,
            mcp_endpoint::endpoint(state),
        )
        .at(
            &suffixed,
            oauth::suffixed_resource_metadata
                .data(suffixed_api)
                .with(public_cors()),
        )
        .at(
            crate::mcp::server_info::ICON_PATH,
            poem::get(poem::endpoint::make_sync(|_| {
                poem::Response::builder()
                    .content_type("image/svg+xml")
                    .header("cache-control", "public, max-age=86400")
                    .body(crate::mcp::server_info::ICON_SVG)
            }))
            .with(public_cors()),
        )
        .at("/openapi.json", spec.with(public_cors()))
        .at("/openapi.yaml", spec_yaml.with(public_cors()))
        .at("/docs", docs)
        .at(
            "/metrics",
            metrics::metrics_endpoint
                .data(state.metrics.clone())
                .data(Arc::new(Networks::new(
                    &state.settings.telemetry.metrics_allowed_from,
                ))),
        )
        .nest(
            "/",
            split_cors(api, &hosts, &state.audit).with(RegistrationLimit),
        )
        .with(body_guard::BodyGuard {
            mcp_path: state.settings.server.mcp_path.clone(),
            body_timeout: std::time::Duration::from_secs(state.settings.server.body_timeout_secs),
        })
        .with(transport_guard::SingleHost)
        .with(metrics::MetricsLayer {
            metrics: state.metrics.clone(),
            mcp_path: state.settings.server.mcp_path.clone(),
        })
        .with(request_id::RequestIdLayer)
        .with(client_addr::ClientAddrLayer {
            trusted: Arc::new(Networks::new(&state.settings.server.trusted_proxies)),
            header: state.settings.server.forwarded_header,
            metrics: state.metrics.clone(),
        })
}

/// Paths of the documented API that change state: browsers may call them cross-origin only
/// from the allowed origins (MCP Inspector on loopback), while the discovery documents and
/// probes are readable from anywhere.
const STATE_CHANGING_PREFIXES: &[&str] = &["/oauth/register", "/api/"];

/// Largest registration request read.
const MAX_REGISTRATION_BYTES: usize = 16 * 1024;

/// The documented API behind CORS: the state-changing paths get the strict policy (and the
/// `Host` check, and the audit gate: they are the audited ones), the rest the open one.
fn split_cors(
    api: impl poem::IntoEndpoint<Endpoint: 'static>,
    hosts: &Arc<HostPolicy>,
    audit: &AuditSink,
) -> SplitCors {
    let inner = Arc::new(api.into_endpoint().map_to_response());
    let policy = hosts.clone();
    SplitCors {
        open: inner
            .clone()
            .with(Cors::new().allow_methods([poem::http::Method::GET]))
            .boxed(),
        // Registration and the admin API also check `Host` (DNS rebinding); the discovery
        // documents are built from configuration and served whatever `Host` a proxy sends.
        strict: inner
            .with(audit_gate::AuditGate {
                sink: audit.clone(),
            })
            .with(transport_guard::TransportGuard::hosts_only(hosts.clone()))
            .with(
                Cors::new()
                    .allow_origins_fn(move |origin| policy.origin_allowed(origin))
                    .allow_methods([
                        poem::http::Method::GET,
                        poem::http::Method::POST,
                        poem::http::Method::DELETE,
                    ])
                    .expose_headers(["www-authenticate", "retry-after", "x-request-id"]),
            )
            .boxed(),
    }
}

/// See [`split_cors`]: picks the CORS policy by path.
struct SplitCors {
    open: BoxEndpoint<'static, Response>,
    strict: BoxEndpoint<'static, Response>,
}

impl Endpoint for SplitCors {
    type Output = Response;

    async fn call(&self, req: poem::Request) -> poem::Result<Response> {
        let path = req.uri().path();
        if STATE_CHANGING_PREFIXES.iter().any(|p| path.starts_with(p)) {
            self.strict.call(req).await
        } else {
            self.open.call(req).await
        }
    }
}

/// Registration is unauthenticated: its body is bounded before anything reads it, CORS and the
/// `Host` check included (hyper holds
/// a body to its Content-Length, so the header is the bound).
struct RegistrationLimit;

impl<E: Endpoint> poem::Middleware<E> for RegistrationLimit {
    type Output = RegistrationLimitEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        RegistrationLimitEndpoint(inner)
    }
}

/// See [`RegistrationLimit`].
struct RegistrationLimitEndpoint<E>(E);

impl<E: Endpoint> Endpoint for RegistrationLimitEndpoint<E> {
    type Output = Response;

    async fn call(&self, req: poem::Request) -> poem::Result<Response> {
        if req.uri().path() == "/oauth/register" && req.method() == poem::http::Method::POST {
            let length = req
                .headers()
                .get(poem::http::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<usize>().ok());
            let refusal = match length {
                None => Some((
                    poem::http::StatusCode::LENGTH_REQUIRED,
                    "send the client metadata with a Content-Length",
                )),
                Some(n) if n > MAX_REGISTRATION_BYTES => Some((
                    poem::http::StatusCode::PAYLOAD_TOO_LARGE,
                    "the client metadata exceeds 16 KiB",
                )),
                Some(_) => None,
            };
            if let Some((status, description)) = refusal {
                return Ok(ErrorBody::new("invalid_client_metadata", description).response(status));
            }
        }
        self.0
            .call(req)
            .await
            .map(poem::IntoResponse::into_response)
    }
}
