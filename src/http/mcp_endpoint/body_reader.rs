//! The MCP endpoint's body reader: it owns every answer to a malformed body (size, content
//! type, JSON, envelope), so rmcp only ever sees requests it will accept, and it notes the
//! JSON-RPC method and tool for the scope check and the audit row.

use std::borrow::Cow;

use poem::{
    Endpoint, IntoResponse, Middleware, Request, Response, Result,
    error::ReadBodyError,
    http::{Method, StatusCode},
};
use serde::{Deserialize, de::IgnoredAny};

use super::jsonrpc_error;
use crate::{http::Layered, mcp::CallRecord};

/// Reads the body within the size limit and notes the JSON-RPC method and tool.
#[derive(Clone)]
pub(super) struct BodyReader {
    /// The largest body read.
    pub(super) max_bytes: usize,
}

impl<E: Endpoint> Middleware<E> for BodyReader {
    type Output = Layered<Self, E>;

    fn transform(&self, inner: E) -> Self::Output {
        Layered::new(self.clone(), inner)
    }
}

impl<E: Endpoint> Endpoint for Layered<BodyReader, E> {
    type Output = Response;

    async fn call(&self, mut req: Request) -> Result<Self::Output> {
        if req.method() == Method::POST {
            let bytes = match req.take_body().into_bytes_limit(self.layer.max_bytes).await {
                Ok(bytes) => bytes,
                Err(ReadBodyError::PayloadTooLarge) => {
                    let message = format!(
                        "Payload Too Large: the request body exceeds {} bytes",
                        self.layer.max_bytes
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::mcp_endpoint::audit_layer::{MAX_NAME_CHARS, bounded};

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
}
