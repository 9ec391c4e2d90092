//! OAuth discovery documents on searchgate's origin: the RFC 9728 protected-resource metadata
//! (at the root and path-suffixed well-known URLs), and, for MCP 2025-03-26 clients, the
//! authorization server's own metadata forwarded as published. All of it is built from
//! configuration, never from request headers (a proxy's Host must not change the resource).

use std::sync::Arc;

use poem::{Request, Response, handler, http::StatusCode, web::Data};
use poem_openapi::{ApiResponse, Object, OpenApi, Tags, payload::Json, types::Example};

use crate::domain::auth::{AuthError, AuthorizationServer};

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

/// An error body in the OAuth shape.
#[derive(Debug, Object)]
pub struct OAuthError {
    /// A snake_case code.
    pub error: String,
    /// What happened, for a person.
    pub error_description: String,
}

impl OAuthError {
    fn new(error: &str, description: impl Into<String>) -> Json<Self> {
        Json(Self {
            error: error.to_owned(),
            error_description: description.into(),
        })
    }
}

/// Answers for the protected-resource metadata.
#[derive(ApiResponse)]
pub enum ResourceMetadataResponse {
    /// The metadata.
    #[oai(status = 200)]
    Ok(
        Json<ProtectedResourceMetadata>,
        #[oai(header = "Cache-Control")] String,
    ),
    /// Authentication is off (`auth.provider` is `none` or `embedded`), so there is nothing to discover.
    #[oai(status = 404)]
    NotFound(Json<OAuthError>),
}

/// Answers for the forwarded authorization server metadata.
#[derive(ApiResponse)]
pub enum ServerMetadataResponse {
    /// The authorization server's metadata, as it publishes it.
    #[oai(status = 200)]
    Ok(
        Json<serde_json::Value>,
        #[oai(header = "Cache-Control")] String,
    ),
    /// No authorization server is configured, or it publishes no metadata.
    #[oai(status = 404)]
    NotFound(Json<OAuthError>),
    /// The authorization server answered with something unusable (such as another issuer).
    #[oai(status = 502)]
    BadGateway(Json<OAuthError>),
    /// The authorization server cannot be reached and nothing is cached.
    #[oai(status = 503)]
    Unavailable(Json<OAuthError>, #[oai(header = "Retry-After")] u64),
}

/// The discovery documents.
pub struct OAuthApi {
    metadata: Option<ProtectedResourceMetadata>,
    auth: Option<Arc<dyn AuthorizationServer>>,
    registration_endpoint: Option<String>,
}

impl OAuthApi {
    /// Documents for `auth` (none when authentication is off).
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
    pub fn resource_metadata(&self) -> ResourceMetadataResponse {
        match &self.metadata {
            Some(metadata) => {
                ResourceMetadataResponse::Ok(Json(metadata.clone()), "public, max-age=300".into())
            }
            None => ResourceMetadataResponse::NotFound(OAuthError::new(
                "not_found",
                "authentication is off on this server, so it has no protected-resource metadata",
            )),
        }
    }

    async fn server_metadata(&self) -> ServerMetadataResponse {
        let Some(auth) = &self.auth else {
            return ServerMetadataResponse::NotFound(OAuthError::new(
                "not_found",
                "no authorization server is configured",
            ));
        };
        match auth.metadata().await {
            Ok(Some(document)) => {
                let mut document = document.0.as_ref().clone();
                if let (Some(endpoint), Some(fields)) =
                    (&self.registration_endpoint, document.as_object_mut())
                {
                    fields.insert("registration_endpoint".into(), endpoint.clone().into());
                }
                ServerMetadataResponse::Ok(Json(document), "public, max-age=300".into())
            }
            Ok(None) => ServerMetadataResponse::NotFound(OAuthError::new(
                "not_found",
                "the authorization server publishes no metadata through searchgate",
            )),
            Err(AuthError::Unavailable {
                detail,
                retry_after,
            }) => {
                tracing::warn!(detail = %detail, "cannot fetch the authorization server's metadata");
                ServerMetadataResponse::Unavailable(
                    OAuthError::new(
                        "temporarily_unavailable",
                        "the authorization server cannot be reached; retry shortly",
                    ),
                    retry_after.map_or(5, |d| d.as_secs().max(1)),
                )
            }
            Err(error) => {
                tracing::error!(error = %error, "the authorization server's metadata is unusable");
                ServerMetadataResponse::BadGateway(OAuthError::new(
                    "bad_gateway",
                    error.to_string(),
                ))
            }
        }
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
    async fn protected_resource(&self) -> ResourceMetadataResponse {
        self.resource_metadata()
    }

    /// The authorization server's metadata (RFC 8414), forwarded for MCP 2025-03-26 clients,
    /// which look for it on the MCP server's origin.
    #[oai(
        path = "/.well-known/oauth-authorization-server",
        method = "get",
        operation_id = "authorization_server_metadata"
    )]
    async fn authorization_server(&self) -> ServerMetadataResponse {
        self.server_metadata().await
    }

    /// The authorization server's OpenID Connect discovery document, forwarded likewise.
    #[oai(
        path = "/.well-known/openid-configuration",
        method = "get",
        operation_id = "openid_configuration"
    )]
    async fn openid_configuration(&self) -> ServerMetadataResponse {
        self.server_metadata().await
    }
}

/// The path-suffixed protected-resource metadata (RFC 9728 §3.1), outside poem-openapi because
/// its path comes from configuration.
#[handler]
pub fn suffixed_resource_metadata(_req: &Request, api: Data<&Arc<OAuthApi>>) -> Response {
    use poem::IntoResponse;
    match api.resource_metadata() {
        ResourceMetadataResponse::Ok(body, cache) => {
            let mut response = body.into_response();
            if let Ok(value) = cache.parse() {
                response
                    .headers_mut()
                    .insert(poem::http::header::CACHE_CONTROL, value);
            }
            response
        }
        ResourceMetadataResponse::NotFound(body) => (StatusCode::NOT_FOUND, body).into_response(),
    }
}
