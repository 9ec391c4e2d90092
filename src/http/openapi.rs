//! The OpenAPI document of the plain HTTP surface, served at `/openapi.json`, printed by
//! `searchgate openapi`, and committed under `openapi/` (a test fails when it drifts).

use std::sync::Arc;

use async_trait::async_trait;
use poem_openapi::OpenApiService;

use super::{
    admin::{AdminApi, AdminGuard},
    bearer::Challenge,
    health::HealthApi,
    oauth::OAuthApi,
    registration::RegistrationApi,
};
use crate::domain::{
    audit::{AuditError, AuditEvent, AuditLog, AuditSink},
    auth::ScopePolicy,
};

/// The poem-openapi service for the documented endpoints.
pub fn service(
    health: HealthApi,
    oauth: OAuthApi,
    registration: RegistrationApi,
    admin: AdminApi,
) -> OpenApiService<(HealthApi, OAuthApi, RegistrationApi, AdminApi), ()> {
    OpenApiService::new(
        (health, oauth, registration, admin),
        "searchgate",
        env!("CARGO_PKG_VERSION"),
    )
    .description(
        "The plain HTTP surface of searchgate, a self-hosted MCP server that gives AI agents web \
         search behind OAuth 2.1. The MCP endpoint itself speaks JSON-RPC over Streamable HTTP.",
    )
}

/// The document as pretty JSON, without a `servers` entry (it is the same for every deployment).
pub fn document_json() -> String {
    service(
        HealthApi::new(Arc::new(DocumentOnly), "disabled"),
        OAuthApi::new(None, None, None),
        RegistrationApi::new(None, 1, AuditSink::detached()),
        AdminApi::new(
            AdminGuard {
                auth: None,
                scope: String::new(),
                scopes: Arc::new(ScopePolicy::default()),
                challenge: Challenge {
                    resource_metadata: String::new(),
                    scope: String::new(),
                },
            },
            None,
            None,
            AuditSink::detached(),
        ),
    )
    .spec()
}

/// Stands in for the audit store while rendering the document; never serves a request.
struct DocumentOnly;

#[async_trait]
impl AuditLog for DocumentOnly {
    async fn append(&self, _: &[AuditEvent]) -> Result<(), AuditError> {
        Err(AuditError::Unavailable("document rendering only".into()))
    }

    async fn check(&self) -> Result<(), AuditError> {
        Err(AuditError::Unavailable("document rendering only".into()))
    }
}
