//! The MCP endpoint as a pipeline of layers, outermost first:
//!
//! 1. audit: one audit row per request (CORS preflights excepted), written when the response
//!    is complete;
//! 2. transport guard: `Host` and `Origin` (403);
//! 3. CORS: preflights are answered here, before authentication;
//! 4. bearer guard (when an authorization server is configured): 401/400/503;
//! 5. body reader: at most `max_body_bytes` (413), and the JSON-RPC method and tool noted for
//!    the audit row;
//! 6. rmcp's Streamable HTTP service, which speaks every MCP revision.

use std::{
    borrow::Cow,
    net::SocketAddr,
    sync::Arc,
    time::{Instant, SystemTime},
};

use futures::StreamExt;
use http_body_util::BodyExt;
use poem::{
    Body, Endpoint, EndpointExt, IntoResponse, Middleware, Request, Response, Result,
    endpoint::BoxEndpoint,
    error::ReadBodyError,
    http::{Method, StatusCode},
    middleware::Cors,
};
use rmcp::transport::streamable_http_server::{
    StreamableHttpService, session::never::NeverSessionManager,
};
use serde::{Deserialize, de::IgnoredAny};

use super::{
    AppState, RequestId,
    bearer::{BearerGuard, Challenge, ScopeGuard},
    transport_guard::{HostPolicy, TransportGuard},
};
use crate::{
    domain::audit::{AuditEvent, AuditSink, Outcome},
    mcp::{CallInfo, CallRecord, McpServer},
};

/// Longest method or tool name kept in an audit row.
const MAX_NAME_CHARS: usize = 128;

/// Assembles the pipeline for `state`.
pub(super) fn endpoint(state: &AppState) -> BoxEndpoint<'static, Response> {
    let server = &state.settings.server;
    let mut mcp = McpServer::new(state.search.clone());
    if state.auth.is_some() {
        mcp = mcp.with_scope_policy(state.scopes.clone());
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
    let challenge = Arc::new(Challenge {
        resource_metadata: state.resource_metadata_url(),
        scope: state.scopes.supported().join(" "),
    });
    let body = BodyReader {
        max_bytes: server.max_body_bytes,
    };
    // Authorization comes before the body is read; the scope check needs the tool, so after.
    let authenticated = match &state.auth {
        Some(auth) => RmcpEndpoint { service }
            .with(ScopeGuard {
                policy: state.scopes.clone(),
                challenge: challenge.clone(),
            })
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
        let response = self.service.handle(http::Request::from(req)).await;
        let (parts, body) = response.into_parts();
        let body = body.map_err(|never| -> std::io::Error { match never {} });
        Ok(Response::from(http::Response::from_parts(parts, body)))
    }
}

/// Reads the body within the size limit and notes the JSON-RPC method and tool.
struct BodyReader {
    max_bytes: usize,
}

impl<E: Endpoint> Middleware<E> for BodyReader {
    type Output = BodyReaderEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        BodyReaderEndpoint {
            max_bytes: self.max_bytes,
            inner,
        }
    }
}

struct BodyReaderEndpoint<E> {
    max_bytes: usize,
    inner: E,
}

impl<E: Endpoint> Endpoint for BodyReaderEndpoint<E> {
    type Output = Response;

    async fn call(&self, mut req: Request) -> Result<Self::Output> {
        if req.method() == Method::POST {
            let bytes = match req.take_body().into_bytes_limit(self.max_bytes).await {
                Ok(bytes) => bytes,
                Err(ReadBodyError::PayloadTooLarge) => {
                    let message = format!(
                        "Payload Too Large: the request body exceeds {} bytes",
                        self.max_bytes
                    );
                    return Ok(jsonrpc_error(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        -32600,
                        &message,
                    ));
                }
                Err(error) => {
                    return Ok(jsonrpc_error(
                        StatusCode::BAD_REQUEST,
                        -32700,
                        &format!("cannot read the request body: {error}"),
                    ));
                }
            };
            // Every body that reaches dispatch has been read here: the scope check depends on
            // it, so nothing may slip past under a media type only rmcp would accept.
            if !is_json(req.content_type()) {
                return Ok(jsonrpc_error(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    -32600,
                    "Unsupported Media Type: Content-Type must be application/json",
                ));
            }
            match Envelope::read(&bytes) {
                Ok(envelope) => {
                    if let Some(record) = req.extensions().get::<CallRecord>() {
                        record.update(|info| {
                            info.method = envelope.method;
                            info.tool = envelope.tool;
                        });
                    }
                }
                Err((code, message)) => {
                    return Ok(jsonrpc_error(StatusCode::BAD_REQUEST, code, &message));
                }
            }
            req.set_body(bytes);
        }
        self.inner.call(req).await.map(IntoResponse::into_response)
    }
}

/// `application/json`, judged as rmcp judges it: the part before `;`, trimmed, any case.
fn is_json(content_type: Option<&str>) -> bool {
    content_type.is_some_and(|ct| {
        ct.split(';')
            .next()
            .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
    })
}

/// What the transport needs of a JSON-RPC message: its method and, for `tools/call`, the tool
/// (whole: the scope check needs the exact name; audit rows shorten it).
#[derive(Debug, PartialEq, Eq)]
struct Envelope {
    method: Option<String>,
    tool: Option<String>,
}

impl Envelope {
    /// Checks that `body` is one JSON-RPC 2.0 message and reads its method and tool. The error
    /// is the JSON-RPC code and message to answer with: -32700 for malformed JSON, -32600 for
    /// anything that is not a single JSON-RPC message (batches were removed in MCP 2025-06-18).
    fn read(body: &[u8]) -> Result<Self, (i64, String)> {
        #[derive(Deserialize)]
        struct Message<'a> {
            #[serde(borrow)]
            jsonrpc: Option<Cow<'a, str>>,
            #[serde(borrow)]
            method: Option<Cow<'a, str>>,
            #[serde(borrow)]
            params: Option<Params<'a>>,
            result: Option<IgnoredAny>,
            error: Option<IgnoredAny>,
        }
        #[derive(Deserialize)]
        struct Params<'a> {
            #[serde(borrow)]
            name: Option<Cow<'a, str>>,
        }
        let message = match serde_json::from_slice::<Message<'_>>(body) {
            Ok(message) => message,
            Err(error) if error.is_syntax() || error.is_eof() => {
                return Err((
                    -32700,
                    format!("Parse error: the body is not valid JSON ({error})"),
                ));
            }
            Err(_) if body.trim_ascii_start().starts_with(b"[") => {
                return Err((-32600, "Invalid Request: JSON-RPC batches are not supported; send one message per request".to_owned()));
            }
            Err(error) => {
                return Err((
                    -32600,
                    format!("Invalid Request: not a JSON-RPC message ({error})"),
                ));
            }
        };
        let is_message = message.jsonrpc.as_deref() == Some("2.0")
            && (message.method.is_some() || message.result.is_some() || message.error.is_some());
        if !is_message {
            return Err((
                -32600,
                "Invalid Request: expected a JSON-RPC 2.0 request, notification or response"
                    .to_owned(),
            ));
        }
        let tool = match message.method.as_deref() {
            Some("tools/call") => message.params.and_then(|p| p.name).map(Cow::into_owned),
            _ => None,
        };
        Ok(Self {
            method: message.method.map(Cow::into_owned),
            tool,
        })
    }
}

/// An audit row keeps at most [`MAX_NAME_CHARS`] of a method or tool name.
fn bounded(name: String) -> String {
    if name.chars().count() <= MAX_NAME_CHARS {
        name
    } else {
        name.chars().take(MAX_NAME_CHARS).collect()
    }
}

/// Writes one audit row per MCP request.
struct AuditLayer {
    sink: AuditSink,
    /// Whether rows keep what was searched for (`audit.record_queries`).
    record_queries: bool,
    metrics: Arc<super::Metrics>,
}

impl<E: Endpoint> Middleware<E> for AuditLayer {
    type Output = AuditEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        AuditEndpoint {
            sink: self.sink.clone(),
            record_queries: self.record_queries,
            metrics: self.metrics.clone(),
            inner,
        }
    }
}

struct AuditEndpoint<E> {
    sink: AuditSink,
    record_queries: bool,
    metrics: Arc<super::Metrics>,
    inner: E,
}

/// What is known about a request before it is served.
struct Pending {
    record: CallRecord,
    request_id: String,
    source_addr: Option<SocketAddr>,
    occurred_at: SystemTime,
    started: Instant,
    record_queries: bool,
    metrics: Arc<super::Metrics>,
}

impl Pending {
    fn finish(&self, status: StatusCode, rpc_error: Option<i64>) -> AuditEvent {
        let info = self.record.snapshot();
        let (outcome, error_code) = classify(status, &info, rpc_error);
        let principal = info.principal;
        let event = AuditEvent {
            occurred_at: self.occurred_at,
            request_id: self.request_id.clone(),
            method: info.method.map(bounded),
            tool: info.tool.map(bounded),
            outcome,
            http_status: status.as_u16(),
            error_code,
            latency: self.started.elapsed(),
            subject: principal.as_ref().map(|p| p.subject.clone()),
            client_id: principal.as_ref().and_then(|p| p.client_id.clone()),
            issuer: principal.as_ref().map(|p| p.issuer.clone()),
            token_hash_prefix: principal
                .map(|p| p.token_hash_prefix)
                .filter(|h| !h.is_empty()),
            source_addr: self.source_addr.map(|a| a.to_string()),
            provider: info.upstream.map(|u| u.provider.to_owned()),
            cache_hit: info.upstream.map(|u| u.cache_hit),
            upstream_attempts: info.upstream.map(|u| u.attempts),
            upstream_request_id: info.upstream_request_id,
            query_summary: info.query_summary.filter(|_| self.record_queries),
        };
        self.metrics.observe_call(&event);
        event
    }
}

impl<E: Endpoint> Endpoint for AuditEndpoint<E> {
    type Output = Response;

    async fn call(&self, mut req: Request) -> Result<Self::Output> {
        if req.method() == Method::OPTIONS {
            return self.inner.call(req).await.map(IntoResponse::into_response);
        }
        let request_id = req
            .extensions()
            .get::<RequestId>()
            .map(|id| id.0.clone())
            .unwrap_or_default();
        let record = CallRecord::new(&request_id);
        req.extensions_mut().insert(record.clone());
        let pending = Pending {
            record,
            request_id,
            source_addr: req.remote_addr().as_socket_addr().copied(),
            occurred_at: SystemTime::now(),
            started: Instant::now(),
            record_queries: self.record_queries,
            metrics: self.metrics.clone(),
        };
        let mut response = self.inner.get_response(req).await;
        let status = response.status();
        let content_type = response
            .content_type()
            .unwrap_or_default()
            .to_ascii_lowercase();
        if content_type.starts_with("text/event-stream") {
            // The outcome is known only when the stream ends (or the client goes away).
            let guard = AuditOnDrop {
                pending: Some(pending),
                sink: self.sink.clone(),
                status,
            };
            let stream = response.take_body().into_bytes_stream().map(move |chunk| {
                let _ = &guard;
                chunk
            });
            response.set_body(Body::from_bytes_stream(stream));
            return Ok(response);
        }
        let mut rpc_error = None;
        if content_type.starts_with("application/json") {
            // rmcp's JSON responses are already in memory; this takes the bytes, not a copy.
            let bytes = response.take_body().into_bytes().await.unwrap_or_default();
            rpc_error = jsonrpc_error_code(&bytes);
            response.set_body(bytes);
        }
        self.sink.record(pending.finish(status, rpc_error)).await;
        Ok(response)
    }
}

/// Records the audit row of a streamed response when its body is dropped.
struct AuditOnDrop {
    pending: Option<Pending>,
    sink: AuditSink,
    status: StatusCode,
}

impl Drop for AuditOnDrop {
    fn drop(&mut self) {
        if let Some(pending) = self.pending.take() {
            let event = pending.finish(self.status, None);
            let sink = self.sink.clone();
            // Drop cannot await; the spawned send still waits for queue room, so nothing is lost
            // while the runtime runs.
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => {
                    runtime.spawn(async move { sink.record(event).await });
                }
                Err(_) => {
                    tracing::error!(request_id = %event.request_id, "audit event of a stream that outlived the runtime was not stored")
                }
            }
        }
    }
}

/// The `error.code` of a JSON-RPC error response.
fn jsonrpc_error_code(body: &[u8]) -> Option<i64> {
    #[derive(Deserialize)]
    struct Reply {
        error: Option<ErrorObject>,
    }
    #[derive(Deserialize)]
    struct ErrorObject {
        code: i64,
    }
    serde_json::from_slice::<Reply>(body)
        .ok()?
        .error
        .map(|e| e.code)
}

/// The audit outcome and reason code of a finished request.
fn classify(
    status: StatusCode,
    info: &CallInfo,
    rpc_error: Option<i64>,
) -> (Outcome, Option<String>) {
    let rpc = |code: i64| Some(format!("jsonrpc_{code}"));
    let http = || Some(format!("http_{}", status.as_u16()));
    if let Some(reason) = info.auth_failure {
        let outcome = match status.as_u16() {
            403 => Outcome::Forbidden,
            500.. => Outcome::Failed,
            _ => Outcome::Unauthenticated,
        };
        return (outcome, Some(reason.to_owned()));
    }
    match status.as_u16() {
        401 => (Outcome::Unauthenticated, http()),
        // A 403 after authentication is a scope decision; before it, a transport refusal.
        403 if info.principal.is_some() => (Outcome::Forbidden, http()),
        // rmcp answers malformed or unroutable JSON-RPC with 400/404 and an error body.
        400 | 404 if rpc_error.is_some() => (Outcome::ProtocolError, rpc_error.and_then(rpc)),
        400..=499 => (Outcome::Rejected, http()),
        500.. => (Outcome::Failed, http()),
        _ => match (info.tool_result, rpc_error) {
            (Some(Some(code)), _) => (Outcome::ToolError, Some(code.to_owned())),
            (_, Some(code)) => (Outcome::ProtocolError, rpc(code)),
            _ => (Outcome::Success, None),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::auth::{Principal, ScopeSet};

    #[test]
    fn the_envelope_gives_method_and_tool_and_refuses_what_is_not_one_message() {
        let call = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"web_search","arguments":{"query":"x"}}}"#;
        let read = |body: &[u8]| Envelope::read(body);
        assert_eq!(
            read(call),
            Ok(Envelope {
                method: Some("tools/call".into()),
                tool: Some("web_search".into())
            })
        );
        let list = br#"{"jsonrpc":"2.0","id":2,"method":"tools/list","params":{"name":"ignored"}}"#;
        assert_eq!(read(list).unwrap().tool, None, "only tools/call has a tool");
        let response = br#"{"jsonrpc":"2.0","id":2,"result":{}}"#;
        assert_eq!(
            read(response).unwrap().method,
            None,
            "a response has no method and is valid"
        );
        for (body, code, why) in [
            (&b"{not json"[..], -32700, "syntax error"),
            (b"{\"jsonrpc\":\"2.0\",", -32700, "truncated"),
            (
                br#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#,
                -32600,
                "batch",
            ),
            (br#"{"id":1,"method":"ping"}"#, -32600, "no jsonrpc member"),
            (
                br#"{"jsonrpc":"2.0","id":1}"#,
                -32600,
                "neither method nor result",
            ),
            (
                br#"{"jsonrpc":"2.0","method":5}"#,
                -32600,
                "method is not a string",
            ),
            (br#""text""#, -32600, "not an object"),
        ] {
            assert_eq!(read(body).map_err(|e| e.0), Err(code), "{why}");
        }
        let long = format!(
            r#"{{"jsonrpc":"2.0","method":"tools/call","params":{{"name":"{}"}}}}"#,
            "t".repeat(500)
        );
        let tool = read(long.as_bytes()).unwrap().tool.unwrap();
        assert_eq!(tool.len(), 500, "the whole name, for the scope check");
        assert_eq!(
            bounded(tool).len(),
            MAX_NAME_CHARS,
            "audit rows keep a bounded prefix"
        );
    }

    #[test]
    fn json_is_recognised_as_rmcp_recognises_it() {
        for (value, json) in [
            (Some("application/json"), true),
            (Some(" Application/JSON ; charset=utf-8"), true),
            (Some("\tapplication/json"), true),
            (Some("application/jsonx"), false),
            (Some("text/plain"), false),
            (None, false),
        ] {
            assert_eq!(is_json(value), json, "{value:?}");
        }
    }

    #[test]
    fn outcomes_are_classified_from_status_body_and_tool() {
        let plain = CallInfo::default();
        let tool_failed = CallInfo {
            tool_result: Some(Some("invalid_argument")),
            ..CallInfo::default()
        };
        let tool_ok = CallInfo {
            tool_result: Some(None),
            ..CallInfo::default()
        };
        let signed_in = CallInfo {
            principal: Some(Principal {
                subject: "u".into(),
                client_id: None,
                issuer: "i".into(),
                scopes: ScopeSet::default(),
                ..Principal::default()
            }),
            ..CallInfo::default()
        };
        let failed = |code| CallInfo {
            auth_failure: Some(code),
            ..CallInfo::default()
        };
        let (expired, malformed) = (failed("token_expired"), failed("malformed_authorization"));
        let (no_scope, idp_down) = (failed("insufficient_scope"), failed("idp_unavailable"));
        let cases = [
            (200, &tool_ok, None, Outcome::Success, None),
            (
                200,
                &tool_failed,
                None,
                Outcome::ToolError,
                Some("invalid_argument"),
            ),
            (
                200,
                &plain,
                Some(-32602),
                Outcome::ProtocolError,
                Some("jsonrpc_-32602"),
            ),
            (202, &plain, None, Outcome::Success, None),
            (
                404,
                &plain,
                Some(-32601),
                Outcome::ProtocolError,
                Some("jsonrpc_-32601"),
            ),
            (
                400,
                &plain,
                Some(-32020),
                Outcome::ProtocolError,
                Some("jsonrpc_-32020"),
            ),
            (
                413,
                &plain,
                Some(-32600),
                Outcome::Rejected,
                Some("http_413"),
            ),
            (406, &plain, None, Outcome::Rejected, Some("http_406")),
            (
                403,
                &plain,
                Some(-32600),
                Outcome::Rejected,
                Some("http_403"),
            ),
            (403, &signed_in, None, Outcome::Forbidden, Some("http_403")),
            (
                401,
                &plain,
                None,
                Outcome::Unauthenticated,
                Some("http_401"),
            ),
            (503, &plain, None, Outcome::Failed, Some("http_503")),
            (
                401,
                &expired,
                None,
                Outcome::Unauthenticated,
                Some("token_expired"),
            ),
            (
                400,
                &malformed,
                None,
                Outcome::Unauthenticated,
                Some("malformed_authorization"),
            ),
            (
                403,
                &no_scope,
                None,
                Outcome::Forbidden,
                Some("insufficient_scope"),
            ),
            (
                503,
                &idp_down,
                None,
                Outcome::Failed,
                Some("idp_unavailable"),
            ),
        ];
        for (status, info, rpc, outcome, code) in cases {
            let got = classify(StatusCode::from_u16(status).unwrap(), info, rpc);
            assert_eq!(
                got,
                (outcome, code.map(str::to_owned)),
                "status {status} rpc {rpc:?}"
            );
        }
    }

    #[test]
    fn error_codes_are_read_from_json_rpc_errors_only() {
        assert_eq!(
            jsonrpc_error_code(
                br#"{"jsonrpc":"2.0","id":1,"error":{"code":-32601,"message":"x"}}"#
            ),
            Some(-32601)
        );
        assert_eq!(
            jsonrpc_error_code(br#"{"jsonrpc":"2.0","id":1,"result":{"error":{"code":1}}}"#),
            None
        );
    }
}
