//! OAuth discovery documents on searchgate's origin: the RFC 9728 protected-resource metadata
//! (at the root and path-suffixed well-known URLs), and, for MCP 2025-03-26 clients, the
//! authorization server's own metadata forwarded as published. All of it is built from
//! configuration, never from request headers (a proxy's Host must not change the resource).

use std::sync::Arc;

use poem::{IntoResponse, Request, Response, handler, web::Data};
use poem_openapi::{ApiResponse, Object, OpenApi, Tags, payload::Json, types::Example};

use super::error::{ApiError, Reply};
use crate::domain::auth::AuthorizationServer;

#[derive(Tags)]
enum ApiTags {
    /// OAuth discovery: how clients find searchgate's authorization server.
    OAuth,
}

/// RFC 9728 protected-resource metadata.
#[derive(Debug, Clone, Object)]
#[oai(example = true)]
pub struct ProtectedResourceMetadata {
    /// The MCP endpoint's URL; access tokens must name it (or an accepted alias) in `aud`.
    pub resource: String,
    /// Issuer identifiers of the authorization servers that issue tokens for it.
    pub authorization_servers: Vec<String>,
    /// The minimal scopes for basic use; tools needing more answer 403 with the scope to add.
    pub scopes_supported: Vec<String>,
    /// Tokens go in the `Authorization: Bearer` header, nowhere else.
    pub bearer_methods_supported: Vec<String>,
    /// A human-readable name.
    pub resource_name: String,
    /// Documentation for developers.
    #[oai(skip_serializing_if_is_none)]
    pub resource_documentation: Option<String>,
}

impl Example for ProtectedResourceMetadata {
    fn example() -> Self {
        Self {
            resource: "https://search.example.com/web-search/mcp".into(),
            authorization_servers: vec!["https://acme.scalekit.com/resources/res_123".into()],
            scopes_supported: vec!["web-search:read".into()],
            bearer_methods_supported: vec!["header".into()],
            resource_name: "searchgate web search".into(),
            resource_documentation: None,
        }
    }
}

/// The protected-resource metadata, cacheable for five minutes.
#[derive(ApiResponse)]
pub enum ResourceMetadata {
    /// The metadata.
    #[oai(status = 200)]
    Ok(
        Json<ProtectedResourceMetadata>,
        #[oai(header = "Cache-Control")] String,
    ),
}

/// The authorization server's metadata, as it publishes it, cacheable for five minutes.
#[derive(ApiResponse)]
pub enum ServerMetadata {
    /// The authorization server's metadata, as it publishes it.
    #[oai(status = 200)]
    Ok(
        Json<serde_json::Value>,
        #[oai(header = "Cache-Control")] String,
    ),
}

/// How long clients may keep a discovery document.
const CACHE_CONTROL: &str = "public, max-age=300";

/// The discovery documents.
pub struct OAuthApi {
    metadata: Option<ProtectedResourceMetadata>,
    auth: Option<Arc<dyn AuthorizationServer>>,
    registration_endpoint: Option<String>,
}

impl OAuthApi {
    /// Documents for `auth` (none when authentication is off); the forwarded authorization
    /// server metadata names `registration_endpoint` (searchgate's `/oauth/register`) when
    /// registration goes through searchgate.
    pub fn new(
        metadata: Option<ProtectedResourceMetadata>,
        auth: Option<Arc<dyn AuthorizationServer>>,
        registration_endpoint: Option<String>,
    ) -> Self {
        Self {
            metadata,
            auth,
            registration_endpoint,
        }
    }

    /// The protected-resource metadata response (also served at the path-suffixed URL).
    ///
    /// # Errors
    /// 404 when authentication is off.
    pub fn resource_metadata(&self) -> Result<ResourceMetadata, ApiError> {
        let metadata = self.metadata.as_ref().ok_or_else(|| {
            ApiError::not_found(
                "authentication is off on this server, so it has no protected-resource metadata",
            )
        })?;
        Ok(ResourceMetadata::Ok(
            Json(metadata.clone()),
            CACHE_CONTROL.into(),
        ))
    }

    async fn server_metadata(&self) -> Result<ServerMetadata, ApiError> {
        let auth = self
            .auth
            .as_ref()
            .ok_or_else(|| ApiError::not_found("no authorization server is configured"))?;
        let document = auth.metadata().await?.ok_or_else(|| {
            ApiError::not_found("the authorization server publishes no metadata through searchgate")
        })?;
        let mut document = document.0.as_ref().clone();
        if let (Some(endpoint), Some(fields)) =
            (&self.registration_endpoint, document.as_object_mut())
        {
            fields.insert("registration_endpoint".into(), endpoint.clone().into());
        }
        Ok(ServerMetadata::Ok(Json(document), CACHE_CONTROL.into()))
    }
}

#[OpenApi(tag = "ApiTags::OAuth")]
impl OAuthApi {
    /// Protected-resource metadata (RFC 9728). The same document is served at the path-suffixed
    /// URL `/.well-known/oauth-protected-resource<mcp_path>`, which MCP clients try first.
    #[oai(
        path = "/.well-known/oauth-protected-resource",
        method = "get",
        operation_id = "protected_resource_metadata"
    )]
    async fn protected_resource(&self) -> Reply<ResourceMetadata, 404> {
        self.resource_metadata().into()
    }

    /// The authorization server's metadata (RFC 8414), forwarded for MCP 2025-03-26 clients,
    /// which look for it on the MCP server's origin.
    #[oai(
        path = "/.well-known/oauth-authorization-server",
        method = "get",
        operation_id = "authorization_server_metadata"
    )]
    async fn authorization_server(&self) -> Reply<ServerMetadata, 404, 502, 503> {
        self.server_metadata().await.into()
    }

    /// The authorization server's OpenID Connect discovery document, forwarded likewise.
    #[oai(
        path = "/.well-known/openid-configuration",
        method = "get",
        operation_id = "openid_configuration"
    )]
    async fn openid_configuration(&self) -> Reply<ServerMetadata, 404, 502, 503> {
        self.server_metadata().await.into()
    }
}

/// The path-suffixed protected-resource metadata (RFC 9728 §3.1), outside poem-openapi because
/// its path comes from configuration.
#[handler]
pub fn suffixed_resource_metadata(_req: &Request, api: Data<&Arc<OAuthApi>>) -> Response {
    match api.resource_metadata() {
        Ok(metadata) => metadata.into_response(),
        Err(error) => error.into_response(),
    }
}
