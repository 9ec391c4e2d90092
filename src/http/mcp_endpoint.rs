//! The MCP endpoint as a pipeline of layers, outermost first:
//!
//! 1. audit (`audit_layer`): one audit row per request (CORS preflights excepted), written
//!    when the response is complete;
//! 2. transport guard: `Host` and `Origin` (403);
//! 3. CORS: preflights are answered here, before authentication;
//! 4. bearer guard (when an authorization server is configured): 401/400/503;
//! 5. body reader (`body_reader`): at most `max_body_bytes` (413); every body rmcp would refuse
//!    (not JSON, nested over 64 levels, a bad id, names over 128 characters) answered with a 400
//!    JSON-RPC error; the JSON-RPC method and tool noted for the audit row;
//! 6. rmcp's Streamable HTTP service, which speaks every MCP revision.

mod audit_layer;
mod body_reader;
mod trace;

use std::sync::Arc;

use http_body_util::BodyExt;
use poem::{
    Endpoint, EndpointExt, Request, Response, Result,
    endpoint::BoxEndpoint,
    http::{Method, StatusCode},
    middleware::Cors,
};
use rmcp::transport::streamable_http_server::{
    StreamableHttpService, session::never::NeverSessionManager,
};

pub use self::body_reader::read_envelope;
use self::{audit_layer::AuditLayer, body_reader::BodyReader};
use super::{
    AppState,
    bearer::{BearerGuard, Challenge, ScopeGuard},
    transport_guard::{HostPolicy, TransportGuard},
};
use crate::{config::ScopeRefusal, mcp::McpServer};

/// Assembles the pipeline for `state`.
pub(super) fn endpoint(state: &AppState) -> BoxEndpoint<'static, Response> {
    let server = &state.settings.server;
    let challenge = Arc::new(Challenge {
        resource_metadata: state.resource_metadata_url(),
        scope: state.scopes.supported().join(" "),
    });
    // With `tool_error` refusals the handler answers a missing scope itself (with the same
    // challenge), so the HTTP scope guard stands aside.
    let refuse_in_tool = state.settings.auth.scope_refusal == ScopeRefusal::ToolError;
    let mut mcp = state.mcp.clone().with_identity(
        &state.settings.server.public_url_or(server.bind),
        state.settings.mcp.website_url.as_ref(),
    );
    if state.auth.is_some() {
        mcp = mcp.with_scope_policy(state.scopes.clone());
        if refuse_in_tool {
            mcp = mcp.with_refusal_challenge(challenge.clone());
        }
    }
    let service = mcp.into_service(server.max_body_bytes, state.shutdown.clone());
    let policy = Arc::new(HostPolicy::new(
        &server.allowed_hosts,
        &server.allowed_origins,
    ));
    let cors = {
        let policy = policy.clone();
        Cors::new()
            .allow_origins_fn(move |origin| policy.origin_allowed(origin))
            .allow_methods([Method::POST, Method::GET, Method::DELETE])
            // Browsers must see the challenge and the MCP headers (user-asks §6).
            .expose_headers([
                "www-authenticate",
                "mcp-session-id",
                "mcp-protocol-version",
                "x-request-id",
            ])
            .max_age(600)
    };
    let body = BodyReader {
        max_bytes: server.max_body_bytes,
    };
    // Authorization comes before the body is read; the scope check needs the tool, so after.
    let authenticated = match &state.auth {
        Some(auth) => RmcpEndpoint { service }
            .with_if(
                !refuse_in_tool,
                ScopeGuard {
                    policy: state.scopes.clone(),
                    challenge: challenge.clone(),
                },
            )
            .with(body)
            .with(BearerGuard {
                auth: auth.clone(),
                challenge,
                clients: state.client_gate.clone(),
            })
            .boxed(),
        None => RmcpEndpoint { service }.with(body).boxed(),
    };
    authenticated
        .with(cors)
        .with(TransportGuard::new(policy))
        .with(AuditLayer {
            sink: state.audit.clone(),
            record_queries: state.settings.audit.record_queries,
            metrics: state.metrics.clone(),
        })
        .boxed()
}

/// A JSON-RPC error response without an id, for requests turned away before dispatch.
pub(super) fn jsonrpc_error(status: StatusCode, code: i64, message: &str) -> Response {
    let body = serde_json::json!({ "jsonrpc": "2.0", "id": null, "error": { "code": code, "message": message } });
    Response::builder()
        .status(status)
        .content_type("application/json")
        .body(body.to_string())
}

/// Hands the request to rmcp (http 1 types on both sides, so the conversion is direct).
struct RmcpEndpoint {
    service: StreamableHttpService<McpServer, NeverSessionManager>,
}

impl Endpoint for RmcpEndpoint {
    type Output = Response;

    async fn call(&self, req: Request) -> Result<Self::Output> {
        let lists_tools = req
            .extensions()
            .get::<crate::mcp::CallRecord>()
            .is_some_and(|record| record.read(|info| info.method.as_deref() == Some("tools/list")));
        // On the heap: each layer above would otherwise hold (and move) rmcp's whole future.
        let response = Box::pin(self.service.handle(http::Request::from(req))).await;
        let (parts, body) = response.into_parts();
        // Boxed as poem's body as it is (poem's own conversion maps it frame by frame, which
        // loses its length), so a JSON answer goes out with its `Content-Length`.
        let body = body.map_err(|never| -> std::io::Error { match never {} });
        let mut response = Response::from(poem::Body::from(body.boxed()));
        response.set_status(parts.status);
        response.set_version(parts.version);
        *response.headers_mut() = parts.headers;
        *response.extensions_mut() = parts.extensions;
        if lists_tools && response.status() == StatusCode::OK {
            return Ok(with_top_level_security_schemes(response).await);
        }
        Ok(response)
    }
}

/// The OpenAI Apps SDK reads a tool's OAuth requirement from a `securitySchemes` field of the
/// tool, with `_meta.securitySchemes` as the mirror for clients that read only `_meta`; rmcp's
/// typed `Tool` has no such field, so the list it wrote gets it here, copied from `_meta`. Only
/// `tools/list` answers (searchgate's own, a few kilobytes) are rewritten.
async fn with_top_level_security_schemes(response: Response) -> Response {
    let (parts, body) = response.into_parts();
    let Ok(bytes) = body.into_bytes().await else {
        return Response::from_parts(parts, poem::Body::empty());
    };
    let rewritten = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|mut message| {
            let tools = message.pointer_mut("/result/tools")?.as_array_mut()?;
            for tool in tools
                .iter_mut()
                .filter_map(serde_json::Value::as_object_mut)
            {
                if let Some(schemes) = tool
                    .get("_meta")
                    .and_then(|meta| meta.get("securitySchemes"))
                    .cloned()
                {
                    tool.insert("securitySchemes".to_owned(), schemes);
                }
            }
            serde_json::to_vec(&message).ok()
        });
    let mut parts = parts;
    // The length changed with the body.
    parts.headers.remove(http::header::CONTENT_LENGTH);
    Response::from_parts(
        parts,
        poem::Body::from(rewritten.unwrap_or_else(|| bytes.to_vec())),
    )
}
