//! The HTTP surface: poem routes for health and the OpenAPI document (poem-openapi), and the MCP
//! endpoint with its transport guards. Depends on the domain ports and the resolved settings,
//! never on a concrete adapter.

mod bearer;
mod health;
mod mcp_endpoint;
mod oauth;
pub mod openapi;
mod request_id;
mod transport_guard;

use std::sync::Arc;

use poem::{Endpoint, EndpointExt, Route, middleware::Cors};
use tokio_util::sync::CancellationToken;
use url::Url;

pub use bearer::Challenge;
pub use oauth::ProtectedResourceMetadata;
pub use request_id::RequestId;
pub use transport_guard::HostPolicy;

use crate::{
    config::Settings,
    domain::{
        audit::{AuditLog, AuditSink},
        auth::{AuthorizationServer, ScopePolicy},
        search::SearchService,
    },
};

/// Everything the HTTP layer needs, shared by all requests.
#[derive(Clone)]
pub struct AppState {
    /// Settings with derived values filled in for the bound address.
    pub settings: Arc<Settings>,
    /// `public_url + mcp_path`: the MCP resource identifier.
    pub resource_url: Url,
    /// The web tools' core (cache, rate limit, retries, deadlines) over the search backend.
    pub search: Arc<SearchService>,
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
}

impl AppState {
    /// The path-suffixed protected-resource metadata URL (RFC 9728 §3.1), named in challenges.
    pub fn resource_metadata_url(&self) -> String {
        let origin = self.resource_url.origin().ascii_serialization();
        format!("{origin}{}", self.resource_metadata_path())
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

/// RFC 9728's well-known prefix.
const WELL_KNOWN_RESOURCE: &str = "/.well-known/oauth-protected-resource";

/// The whole application: every route with request ids and access logging.
pub fn routes(state: &AppState) -> impl Endpoint + 'static {
    let metadata = state.resource_metadata();
    let oauth = oauth::OAuthApi::new(metadata.clone(), state.auth.clone());
    let api = openapi::service(
        health::HealthApi::new(state.audit_log.clone(), state.auth_mode()),
        oauth,
    );
    let spec = api.spec_endpoint();
    let suffixed = state.resource_metadata_path();
    let suffixed_api = Arc::new(oauth::OAuthApi::new(metadata, state.auth.clone()));
    // Discovery documents and probes are public; browser clients (MCP Inspector) fetch the
    // discovery documents cross-origin.
    let public_cors = || Cors::new().allow_methods([poem::http::Method::GET]);
    Route::new()
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
        .at("/openapi.json", spec)
        .nest("/", api.with(public_cors()))
        .with(request_id::RequestIdLayer)
}
