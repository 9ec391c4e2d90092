//! The HTTP surface: poem routes for health and the OpenAPI document (poem-openapi), and the MCP
//! endpoint with its transport guards. Depends on the domain ports and the resolved settings,
//! never on a concrete adapter.

mod bearer;
mod health;
mod mcp_endpoint;
pub mod openapi;
mod request_id;
mod transport_guard;

use std::sync::Arc;

use poem::{Endpoint, EndpointExt, Route};
use tokio_util::sync::CancellationToken;
use url::Url;

pub use request_id::RequestId;
pub use transport_guard::HostPolicy;

use crate::{
    config::Settings,
    domain::{
        audit::{AuditLog, AuditSink},
        auth::AuthorizationServer,
        search::SearchProvider,
    },
};

/// Everything the HTTP layer needs, shared by all requests.
#[derive(Clone)]
pub struct AppState {
    /// Settings with derived values filled in for the bound address.
    pub settings: Arc<Settings>,
    /// `public_url + mcp_path`: the MCP resource identifier.
    pub resource_url: Url,
    /// The search backend the tools call.
    pub search: Arc<dyn SearchProvider>,
    /// Verifies access tokens; `None` serves unauthenticated (loopback only).
    pub auth: Option<Arc<dyn AuthorizationServer>>,
    /// The audit store, for readiness.
    pub audit_log: Arc<dyn AuditLog>,
    /// The audit writer's queue.
    pub audit: AuditSink,
    /// Cancelled at shutdown so open MCP streams end.
    pub shutdown: CancellationToken,
}

/// The whole application: every route with request ids and access logging.
pub fn routes(state: &AppState) -> impl Endpoint + 'static {
    let api = openapi::service(health::HealthApi::new(state.audit_log.clone()));
    let spec = api.spec_endpoint();
    Route::new()
        .at(
            &state.settings.server.mcp_path,
            mcp_endpoint::endpoint(state),
        )
        .at("/openapi.json", spec)
        .nest("/", api)
        .with(request_id::RequestIdLayer)
}
