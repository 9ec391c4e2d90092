//! The OpenAPI document of the plain HTTP surface, served at `/openapi.json`, printed by
//! `searchgate openapi`, and committed under `openapi/` (a test fails when it drifts).

use std::sync::Arc;

use async_trait::async_trait;
use poem_openapi::OpenApiService;
use serde_json::json;

use super::{
    admin::{AdminApi, AdminGuard},
    bearer::Challenge,
    health::HealthApi,
    oauth::OAuthApi,
    registration::RegistrationApi,
};
use crate::domain::{
    audit::{AuditError, AuditLog, AuditSink, BoundedEvent},
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
    let raw = service(
        HealthApi::new(Arc::new(DocumentOnly), AuditSink::detached(), "disabled"),
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
                policy: None,
            },
            None,
            None,
            AuditSink::detached(),
            None,
        ),
    )
    .spec();
    serde_json::to_string_pretty(&finish(&raw, DEFAULT_MCP_PATH)).unwrap_or(raw)
}

/// The MCP path the committed document describes.
const DEFAULT_MCP_PATH: &str = "/web-search/mcp";

/// The served document: poem-openapi's, plus what it cannot express itself: the bearer
/// security scheme with its 401/403 answers on the admin API, and the MCP endpoint at
/// `mcp_path` as an operation.
///
/// Why not poem-openapi's `#[derive(SecurityScheme)]`: its bearer extractor refuses a missing
/// or malformed header with its own bare 401, before the handler runs. Ours answers per RFC
/// 6750 and the MCP checklist: a `WWW-Authenticate` challenge naming `resource_metadata` and
/// `scope`, 400 for a token in the query string or two `Authorization` headers, 503 when the
/// identity provider is down, and an audit row for every refusal. So the scheme is described
/// here, and its error bodies use the one [`super::ErrorBody`] schema.
pub fn finish(raw: &str, mcp_path: &str) -> serde_json::Value {
    let mut doc: serde_json::Value = match serde_json::from_str(raw) {
        Ok(doc) => doc,
        Err(error) => {
            tracing::error!(error = %error, "the generated OpenAPI document is not JSON");
            return serde_json::Value::Null;
        }
    };
    doc["components"]["securitySchemes"]["bearer"] = json!({
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "An OAuth 2.1 access token from searchgate's authorization server (see \
            /.well-known/oauth-protected-resource). The admin API needs the admin scope \
            (auth.admin_scope, default searchgate:admin)."
    });
    let challenge = |description: &str, example: &str| {
        json!({
            "description": description,
            "headers": { "WWW-Authenticate": {
                "description": "RFC 6750 challenge naming resource_metadata and scope",
                "schema": { "type": "string", "example": example }
            }},
            "content": { "application/json": { "schema": { "$ref": "#/components/schemas/ErrorBody" } } }
        })
    };
    let unauthorized = challenge(
        "No token, or an invalid one (`invalid_token`)",
        "Bearer resource_metadata=\"https://search.example.com/.well-known/oauth-protected-resource/web-search/mcp\", scope=\"web-search:read\"",
    );
    let forbidden = challenge(
        "The token lacks the scope (`insufficient_scope`), or its client is denied (`access_denied`)",
        "Bearer error=\"insufficient_scope\", error_description=\"…\", scope=\"searchgate:admin\"",
    );
    if let Some(paths) = doc["paths"].as_object_mut() {
        for (path, item) in paths.iter_mut() {
            if !path.starts_with("/api/") {
                continue;
            }
            for operation in item
                .as_object_mut()
                .into_iter()
                .flat_map(|o| o.values_mut())
            {
                operation["security"] = json!([{ "bearer": [] }]);
                operation["responses"]["401"] = unauthorized.clone();
                operation["responses"]["403"] = forbidden.clone();
            }
        }
        paths.insert(mcp_path.to_owned(), mcp_operation(unauthorized, forbidden));
        for (path, item) in served_outside_openapi() {
            paths.insert(path.to_owned(), item);
        }
    }
    doc
}

/// Endpoints served by plain poem handlers: metrics, the documents themselves, and the
/// embedded authorization server (present when `auth.provider = embedded`).
fn served_outside_openapi() -> Vec<(&'static str, serde_json::Value)> {
    let get = |tag: &str, id: &str, summary: &str, content_type: &str| {
        json!({ "get": { "tags": [tag], "operationId": id, "summary": summary,
            "responses": { "200": { "description": "OK", "content": { content_type: {} } } } } })
    };
    let idp = "Embedded authorization server";
    let oauth_error = json!({ "description": "An OAuth error (RFC 6749 §5.2)",
        "content": { "application/json": { "schema": { "$ref": "#/components/schemas/ErrorBody" },
            "example": { "error": "invalid_grant", "error_description": "the PKCE code_verifier does not match the code_challenge" } } } });
    let authorize_parameters: Vec<serde_json::Value> = [
        "response_type",
        "client_id",
        "redirect_uri",
        "code_challenge",
        "code_challenge_method",
        "scope",
        "state",
        "resource",
    ]
    .iter()
    .map(|name| json!({ "name": name, "in": "query", "required": false, "schema": { "type": "string" } }))
    .collect();
    vec![
        ("/metrics", {
            let mut metrics = get(
                "Operations",
                "metrics",
                "Prometheus metrics (OpenMetrics text)",
                "application/openmetrics-text",
            );
            metrics["get"]["responses"]["403"] = json!({
                "description": "The client is not in telemetry.metrics_allowed_from",
                "content": { "text/plain": {} } });
            metrics
        }),
        (
            "/openapi.yaml",
            get(
                "Operations",
                "openapi_yaml",
                "This document as YAML",
                "application/yaml",
            ),
        ),
        (
            "/docs",
            get(
                "Operations",
                "docs",
                "This document, browsable (Swagger UI)",
                "text/html",
            ),
        ),
        (
            "/idp/jwks",
            get(
                idp,
                "idp_jwks",
                "The signing keys (JWKS) of the embedded authorization server",
                "application/json",
            ),
        ),
        (
            "/idp/.well-known/openid-configuration",
            get(
                idp,
                "idp_openid_configuration",
                "Its metadata (also at /.well-known/oauth-authorization-server/idp and /.well-known/openid-configuration/idp)",
                "application/json",
            ),
        ),
        (
            "/idp/authorize",
            json!({
                "get": { "tags": [idp], "operationId": "idp_authorize",
                    "summary": "The consent page (authorization code with PKCE S256)",
                    "parameters": authorize_parameters,
                    "responses": {
                        "200": { "description": "The consent page", "content": { "text/html": {} } },
                        "400": { "description": "Any error in the request (an unknown client, an unregistered redirect URI, a bad response_type, scope, PKCE or resource), shown on the page and never redirected before the operator decides", "content": { "text/html": {} } },
                        "403": { "description": "A client the client policy denies, shown on the page", "content": { "text/html": {} } },
                        "503": { "description": "The database or the client's metadata document cannot be reached; try again", "content": { "text/html": {} } }
                    } },
                "post": { "tags": [idp], "operationId": "idp_decide",
                    "summary": "The operator's decision (posted by the consent page only)",
                    "requestBody": { "content": { "application/x-www-form-urlencoded": { "schema": { "type": "object",
                        "properties": { "ticket": { "type": "string" }, "decision": { "type": "string", "enum": ["approve", "deny"] } } } } } },
                    "responses": {
                        "303": { "description": "Back to the client with a code (or access_denied), state and iss" },
                        "400": { "description": "An expired, forged or already used form", "content": { "text/html": {} } },
                        "403": { "description": "Posted from another site, or a client denied since the page was shown", "content": { "text/html": {} } },
                        "503": { "description": "The decision cannot be recorded right now; try again", "content": { "text/html": {} } }
                    } }
            }),
        ),
        (
            "/idp/token",
            json!({ "post": { "tags": [idp], "operationId": "idp_token",
            "summary": "Tokens: authorization_code (with code_verifier), refresh_token (rotating), client_credentials",
            "requestBody": { "content": { "application/x-www-form-urlencoded": { "schema": { "type": "object",
                "properties": { "grant_type": { "type": "string" }, "code": { "type": "string" }, "code_verifier": { "type": "string" },
                    "redirect_uri": { "type": "string" }, "refresh_token": { "type": "string" }, "client_id": { "type": "string" },
                    "client_secret": { "type": "string" }, "scope": { "type": "string" }, "resource": { "type": "string" } } } } } },
            "responses": {
                "200": { "description": "An access token (RS256 at+jwt) and, for refreshable grants, a new refresh token",
                    "content": { "application/json": { "example": { "access_token": "eyJ…", "token_type": "Bearer", "expires_in": 3600, "scope": "web-search:read", "refresh_token": "…" } } } },
                "400": oauth_error.clone(),
                "401": { "description": "invalid_client (with WWW-Authenticate: Basic when Basic was used)" },
                "503": { "description": "The database cannot be used; retry" }
            } } }),
        ),
    ]
}

/// The MCP endpoint, described for integrators (the protocol itself is JSON-RPC 2.0 over MCP
/// Streamable HTTP).
fn mcp_operation(
    unauthorized: serde_json::Value,
    forbidden: serde_json::Value,
) -> serde_json::Value {
    json!({ "post": {
        "tags": ["MCP"],
        "operationId": "mcp",
        "summary": "The MCP endpoint (Streamable HTTP, stateless)",
        "description": "One JSON-RPC 2.0 message per request (MCP revisions 2025-03-26 to 2026-07-28): \
            initialize, ping, tools/list, tools/call (web_search, web_extract, web_crawl, web_map). \
            No session is kept. Requests need `Accept: application/json, text/event-stream`; \
            answers are JSON, or an event stream when the tool reports progress. Every tools/call \
            needs the tool's scopes (403 insufficient_scope names them). GET and DELETE answer 405.",
        "security": [{ "bearer": [] }],
        "parameters": [
            { "name": "MCP-Protocol-Version", "in": "header", "required": false,
              "schema": { "type": "string", "example": "2025-11-25" } }
        ],
        "requestBody": { "required": true, "content": { "application/json": {
            "schema": { "type": "object", "required": ["jsonrpc", "method"],
                "properties": {
                    "jsonrpc": { "type": "string", "enum": ["2.0"] },
                    "id": { "oneOf": [{ "type": "string" }, { "type": "integer" }] },
                    "method": { "type": "string" },
                    "params": { "type": "object" }
                }},
            "example": { "jsonrpc": "2.0", "id": 1, "method": "tools/call",
                "params": { "name": "web_search", "arguments": { "query": "rust async runtimes", "max_results": 3 } } }
        }}},
        "responses": {
            "200": { "description": "The JSON-RPC response (tool errors are results with isError)",
                "content": {
                    "application/json": { "schema": { "type": "object" } },
                    "text/event-stream": { "schema": { "type": "string" } }
                }},
            "202": { "description": "A notification or response was accepted" },
            "400": { "description": "Not a JSON-RPC message, or a malformed Authorization header" },
            "401": unauthorized,
            "403": forbidden,
            "406": { "description": "Accept does not name both application/json and text/event-stream" },
            "408": { "description": "The body did not arrive within server.body_timeout_secs" },
            "413": { "description": "The body exceeds server.max_body_bytes" },
            "415": { "description": "The body is not application/json" },
            "503": { "description": "The identity provider cannot be reached; retry after Retry-After" }
        }
    }})
}

/// Stands in for the audit store while rendering the document; never serves a request.
struct DocumentOnly;

#[async_trait]
impl AuditLog for DocumentOnly {
    async fn append(&self, _: &[BoundedEvent]) -> Result<(), AuditError> {
        Err(AuditError::Unavailable("document rendering only".into()))
    }

    async fn check(&self) -> Result<(), AuditError> {
        Err(AuditError::Unavailable("document rendering only".into()))
    }
}
