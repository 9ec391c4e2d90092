//! The MCP endpoint's body reader: it owns every answer to a malformed body (size, content
//! type, JSON, envelope), so rmcp only ever sees requests it will accept, and it notes the
//! JSON-RPC method and tool for the scope check and the audit row. From the same reading it takes
//! what the MCP request's span needs: the JSON-RPC id and the W3C trace context a client may
//! send in `params._meta` (`traceparent`, `tracestate`).

use std::borrow::Cow;

use poem::{
    Endpoint, IntoResponse, Middleware, Request, Response, Result,
    error::ReadBodyError,
    http::{Method, StatusCode},
};
use rmcp::model::ClientJsonRpcMessage;
use serde::{Deserialize, de::IgnoredAny};
use serde_json::Value;
use tracing::Instrument;

// Longer method and tool names are refused here, so neither rmcp's logs nor the audit trail
// ever see them.
use super::{audit_layer::MAX_NAME_CHARS, jsonrpc_error};
use crate::{
    http::{
        Layered,
        body_guard::{content_length, is_timeout},
    },
    mcp::CallRecord,
};

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
            let too_large = || {
                let message = format!(
                    "Payload Too Large: the request body exceeds {} bytes",
                    self.layer.max_bytes
                );
                jsonrpc_error(StatusCode::PAYLOAD_TOO_LARGE, -32600, &message)
            };
            // A declared length over the limit is refused before the body is polled, so no
            // `100 Continue` invites the client to send it.
            if content_length(&req).is_some_and(|n| n > self.layer.max_bytes as u64) {
                return Ok(too_large());
            }
            let bytes = match req.take_body().into_bytes_limit(self.layer.max_bytes).await {
                Ok(bytes) => bytes,
                Err(ReadBodyError::PayloadTooLarge) => return Ok(too_large()),
                Err(ReadBodyError::Io(error)) if is_timeout(&error) => {
                    return Ok(jsonrpc_error(
                        StatusCode::REQUEST_TIMEOUT,
                        -32600,
                        "Request Timeout: the request body did not arrive in time",
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
            let envelope = match Envelope::read(&bytes) {
                Ok(envelope) => envelope,
                Err((code, message)) => {
                    return Ok(jsonrpc_error(StatusCode::BAD_REQUEST, code, &message));
                }
            };
            let record = req.extensions().get::<CallRecord>().cloned();
            let (span, trace_id) = super::trace::mcp_span(&req, &envelope);
            let trace_id = trace_id.or_else(|| {
                req.extensions()
                    .get::<crate::http::request_id::TraceId>()
                    .map(|t| t.0.clone())
            });
            if let Some(record) = &record {
                record.update(|info| {
                    info.method = envelope.method;
                    info.tool = envelope.tool;
                    info.span = (!span.is_disabled()).then(|| span.clone());
                    info.trace_id = trace_id;
                });
            }
            req.set_body(bytes.clone());
            let response = self.inner.call(req).instrument(span).await?.into_response();
            // The few bodies the shallow reading passes and rmcp cannot read get rmcp's plain
            // 415 (it has checked the media type already): answered as any refused body is.
            if response.status() == StatusCode::UNSUPPORTED_MEDIA_TYPE
                && !is_json(response.content_type())
            {
                if let Some(record) = &record {
                    record.update(|info| {
                        info.method = None;
                        info.tool = None;
                    });
                }
                let (code, message) = Envelope::refusal(&bytes);
                return Ok(jsonrpc_error(StatusCode::BAD_REQUEST, code, &message));
            }
            return Ok(response);
        }
        self.inner.call(req).await.map(IntoResponse::into_response)
    }
}

/// Reads an MCP request body as the endpoint does: its JSON-RPC method and, for `tools/call`,
/// its tool; public for the benchmark in `benches/`.
///
/// # Errors
/// The JSON-RPC error code and message the body is refused with.
#[doc(hidden)]
pub fn read_envelope(body: &[u8]) -> Result<(Option<String>, Option<String>), (i64, String)> {
    Envelope::read(body).map(|envelope| (envelope.method, envelope.tool))
}

/// `application/json`, judged as rmcp judges it: the part before `;`, trimmed, any case.
fn is_json(content_type: Option<&str>) -> bool {
    content_type.is_some_and(|ct| {
        ct.split(';')
            .next()
            .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
    })
}

/// The deepest nesting of arrays and objects a body may have. MCP messages need a handful of
/// levels; a limit far below serde_json's own (128) keeps a hostile body from reaching it.
pub(super) const MAX_NESTING: usize = 64;

/// A refusal: the JSON-RPC error code and message to answer with.
type Refusal = (i64, String);

/// What the transport needs of a JSON-RPC message: its method and, for `tools/call`, the tool;
/// for the request's span, its id and the trace context in `params._meta`.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Envelope {
    pub(super) method: Option<String>,
    pub(super) tool: Option<String>,
    /// The JSON-RPC id (a string or an integer).
    pub(super) id: Option<Value>,
    /// `params._meta.traceparent`, when a string.
    pub(super) traceparent: Option<String>,
    /// `params._meta.tracestate`, when a string.
    pub(super) tracestate: Option<String>,
}

impl Envelope {
    /// Checks that `body` is one JSON-RPC 2.0 message rmcp will accept and reads its method and
    /// tool. The error is the JSON-RPC code and message to answer with: -32700 for what is not
    /// JSON (invalid UTF-8 and lone surrogates included), -32600 for JSON that is not a valid
    /// message (batches were removed in MCP 2025-06-18; bad ids; nesting over [`MAX_NESTING`];
    /// a method over [`MAX_NAME_CHARS`]), -32602 for bad parameters (a tool name over
    /// [`MAX_NAME_CHARS`], arguments rmcp cannot represent).
    fn read(body: &[u8]) -> Result<Self, Refusal> {
        let text = std::str::from_utf8(body).map_err(|error| {
            (
                -32700,
                format!(
                    "Parse error: the body is not UTF-8 (invalid byte at offset {})",
                    error.valid_up_to()
                ),
            )
        })?;
        // Before parsing, so a deep body costs one linear scan and never serde's recursion.
        if nesting_exceeds(text, MAX_NESTING) {
            return Err((
                -32600,
                format!("Invalid Request: the body is nested deeper than {MAX_NESTING} levels"),
            ));
        }
        // The common case costs one shallow reading of the members the rules look at (rmcp
        // reads the message next, and what it cannot read is refused after all, see
        // `BodyReader`); anything else is judged on a parsed value below.
        // A refusal is always the whole reading's, which tells bad JSON from a bad message.
        if let Ok(members) = serde_json::from_str::<Members<'_>>(text) {
            let (name, meta) = match members.params {
                Some(params) => (Some(params.name), params.meta),
                None => (None, None),
            };
            if let Ok(mut envelope) = Self::rules(
                members.jsonrpc.as_deref(),
                members.method.as_deref(),
                members.id.as_ref(),
                members.result.is_some() || members.error.is_some(),
                name,
            ) {
                envelope.id = members.id;
                if let Some(meta) = meta {
                    envelope.traceparent = meta.traceparent.map(Cow::into_owned);
                    envelope.tracestate = meta.tracestate.map(Cow::into_owned);
                }
                return Ok(envelope);
            }
        }
        Self::judge(text)
    }

    /// Why a body rmcp could not read is refused: [`Envelope::judge`]'s verdict, which refuses
    /// every body rmcp refuses.
    fn refusal(body: &[u8]) -> Refusal {
        match std::str::from_utf8(body).map(Self::judge) {
            Ok(Err(refusal)) => refusal,
            _ => (
                -32600,
                "Invalid Request: the message cannot be read".to_owned(),
            ),
        }
    }

    /// The whole reading, on a parsed value: what [`Envelope::read`] does with every body its
    /// shallow reading does not settle.
    fn judge(text: &str) -> Result<Self, Refusal> {
        let value = match serde_json::from_str::<Value>(text) {
            Ok(value) => value,
            // RFC 8259 §6 lets a number exceed what an implementation represents: it is JSON,
            // but not a message rmcp can read.
            Err(error) if error.to_string().starts_with("number out of range") => {
                return Err(out_of_range(text));
            }
            Err(error) => {
                return Err((
                    -32700,
                    format!("Parse error: the body is not valid JSON ({error})"),
                ));
            }
        };
        let mut envelope = Self::check(&value)?;
        envelope.id = value.get("id").cloned();
        let meta = value.pointer("/params/_meta");
        let meta_text = |key: &str| {
            meta.and_then(|m| m.get(key))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        envelope.traceparent = meta_text("traceparent");
        envelope.tracestate = meta_text("tracestate");
        // The last word is rmcp's own reading of the text: whatever it would refuse is answered
        // here. Only a refused body is read again, as a value, to tell bad parameters from a
        // bad envelope.
        let Err(text_error) = serde_json::from_str::<ClientJsonRpcMessage>(text) else {
            return Ok(envelope);
        };
        if let Err(error) = ClientJsonRpcMessage::deserialize(&value) {
            let mut without_params = value.clone();
            let params_at_fault = without_params
                .as_object_mut()
                .and_then(|object| object.remove("params"))
                .is_some()
                && ClientJsonRpcMessage::deserialize(&without_params).is_ok();
            return Err(if params_at_fault {
                (
                    -32602,
                    format!("Invalid params: {}", bounded_text(&error.to_string())),
                )
            } else {
                (
                    -32600,
                    format!("Invalid Request: {}", bounded_text(&error.to_string())),
                )
            });
        }
        // rmcp reads the text, where a member may be written twice (the value above kept only
        // the last one, so it passed): a message rmcp cannot read is not a valid request.
        Err((
            -32600,
            format!("Invalid Request: {}", bounded_text(&text_error.to_string())),
        ))
    }

    /// The envelope rules, on a parsed body.
    fn check(value: &Value) -> Result<Self, Refusal> {
        let invalid = |message: &str| (-32600, format!("Invalid Request: {message}"));
        let message = match value {
            Value::Object(message) => message,
            Value::Array(_) => {
                return Err(invalid(
                    "JSON-RPC batches are not supported; send one message per request",
                ));
            }
            _ => return Err(invalid("not a JSON-RPC message (expected an object)")),
        };
        let method = match message.get("method") {
            None => None,
            Some(Value::String(method)) => Some(method.as_str()),
            Some(_) => return Err(invalid("method must be a string")),
        };
        let tool_name = match method {
            Some("tools/call") => Some(match message.get("params").and_then(|p| p.get("name")) {
                Some(Value::String(name)) => Some(Cow::Borrowed(name.as_str())),
                _ => None,
            }),
            _ => None,
        };
        Self::rules(
            message.get("jsonrpc").and_then(Value::as_str),
            method,
            message.get("id"),
            message.contains_key("result") || message.contains_key("error"),
            tool_name,
        )
    }

    /// The envelope rules on a message's members: `tool_name` is `params.name` when `params`
    /// is there (`None` inside when it is not a string).
    fn rules(
        jsonrpc: Option<&str>,
        method: Option<&str>,
        id: Option<&Value>,
        has_result_or_error: bool,
        tool_name: Option<Option<Cow<'_, str>>>,
    ) -> Result<Self, Refusal> {
        let invalid = |message: &str| (-32600, format!("Invalid Request: {message}"));
        if jsonrpc != Some("2.0") || (method.is_none() && !has_result_or_error) {
            return Err(invalid(
                "expected a JSON-RPC 2.0 request, notification or response",
            ));
        }
        if method.is_some_and(|m| m.chars().count() > MAX_NAME_CHARS) {
            return Err(invalid(&format!(
                "the method name is longer than {MAX_NAME_CHARS} characters"
            )));
        }
        if id.is_some_and(|id| !is_valid_id(id)) {
            return Err(invalid(
                "id must be a string or an integer between -2^63 and 2^63-1",
            ));
        }
        let tool = match method {
            Some("tools/call") => match tool_name.flatten() {
                Some(name) if name.chars().count() > MAX_NAME_CHARS => {
                    return Err((
                        -32602,
                        format!(
                            "Invalid params: the tool name is longer than {MAX_NAME_CHARS} characters"
                        ),
                    ));
                }
                Some(name) => Some(name.into_owned()),
                None => {
                    return Err((
                        -32602,
                        "Invalid params: tools/call needs params.name, a string".to_owned(),
                    ));
                }
            },
            _ => None,
        };
        Ok(Self {
            method: method.map(str::to_owned),
            tool,
            ..Self::default()
        })
    }
}

/// The members of a message the envelope rules read, borrowed from the body where they can
/// be; every other member is skipped unread. A body this does not fit (a member of another
/// type, one written twice) is judged on a parsed value instead.
#[derive(Deserialize)]
struct Members<'a> {
    #[serde(default, borrow)]
    jsonrpc: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    method: Option<Cow<'a, str>>,
    #[serde(default, deserialize_with = "present")]
    id: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    result: Option<IgnoredAny>,
    #[serde(default, deserialize_with = "present")]
    error: Option<IgnoredAny>,
    #[serde(default, borrow)]
    params: Option<Params<'a>>,
}

/// The part of `params` the rules read, and the trace context in its `_meta`.
#[derive(Deserialize)]
struct Params<'a> {
    #[serde(default, borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(default, borrow, rename = "_meta")]
    meta: Option<TraceMeta<'a>>,
}

/// The W3C trace context an MCP client may send in `params._meta`. Values of another type send
/// the body down the slower reading, which ignores them.
#[derive(Deserialize)]
struct TraceMeta<'a> {
    #[serde(default, borrow)]
    traceparent: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    tracestate: Option<Cow<'a, str>>,
}

/// A member that is there, even as `null` (serde reads `null` as an absent `Option`).
fn present<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<T>, D::Error> {
    T::deserialize(deserializer).map(Some)
}

/// Whether arrays and objects in `text` nest deeper than `limit` (brackets inside strings do
/// not count). Malformed JSON is left to the parser.
fn nesting_exceeds(text: &str, limit: usize) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for byte in text.bytes() {
        if in_string {
            match (escaped, byte) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > limit {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// The answer to a body holding a number too large to represent: -32602 when it is inside
/// `params` (the message is otherwise readable), -32600 when it is in the envelope (an id).
fn out_of_range(text: &str) -> Refusal {
    #[derive(Deserialize)]
    struct ParamsSkipped {
        // Skipped without converting its numbers, so only the rest of the message is judged.
        #[serde(rename = "params")]
        _params: Option<IgnoredAny>,
        #[serde(flatten)]
        _rest: serde_json::Map<String, Value>,
    }
    if serde_json::from_str::<ParamsSkipped>(text).is_ok() {
        (
            -32602,
            "Invalid params: a number is too large to represent".to_owned(),
        )
    } else {
        (
            -32600,
            "Invalid Request: a number is too large to represent".to_owned(),
        )
    }
}

/// A JSON-RPC id rmcp accepts: a string, or an integer that fits in an `i64` (written as an
/// integer, or as a float that stands for exactly one integer).
fn is_valid_id(id: &Value) -> bool {
    // 2^53: beyond it a float no longer names exactly one integer.
    const MAX_EXACT: f64 = 9_007_199_254_740_992.0;
    match id {
        Value::String(_) => true,
        Value::Number(n) => {
            n.as_i64().is_some()
                || n.as_f64()
                    .is_some_and(|f| f.fract() == 0.0 && f.abs() < MAX_EXACT)
        }
        _ => false,
    }
}

/// `text` cut to [`MAX_LOGGED_CHARS`] characters, marked with `…` when cut: for messages that
/// quote client input.
pub(super) fn bounded_text(text: &str) -> Cow<'_, str> {
    match text.char_indices().nth(MAX_LOGGED_CHARS) {
        None => Cow::Borrowed(text),
        Some((end, _)) => Cow::Owned(format!("{}…", &text[..end])),
    }
}

/// The most characters of client input an answer or a log line quotes.
pub(super) const MAX_LOGGED_CHARS: usize = 256;

#[cfg(test)]
mod tests {
    use super::*;

    /// What the endpoint answers `body` with: the reader's verdict, or, for a body it passes
    /// and rmcp cannot read, the refusal that replaces rmcp's 415.
    fn verdict(body: &[u8]) -> Result<Envelope, Refusal> {
        Envelope::read(body).and_then(|envelope| {
            match serde_json::from_slice::<ClientJsonRpcMessage>(body) {
                Ok(_) => Ok(envelope),
                Err(_) => Err(Envelope::refusal(body)),
            }
        })
    }

    #[test]
    fn the_trace_context_in_params_meta_is_read_on_both_readings() {
        let parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        let fast = format!(
            r#"{{"jsonrpc":"2.0","id":"a","method":"tools/call","params":{{"name":"web_search","_meta":{{"traceparent":"{parent}","tracestate":"v=1","progressToken":7}}}}}}"#
        );
        let envelope = verdict(fast.as_bytes()).expect("valid");
        assert_eq!(
            envelope.traceparent.as_deref(),
            Some(parent),
            "shallow reading"
        );
        assert_eq!(envelope.tracestate.as_deref(), Some("v=1"));
        assert_eq!(envelope.id, Some(serde_json::json!("a")));
        // A trace state that is not a string sends the body down the parsed reading.
        let slow = format!(
            r#"{{"jsonrpc":"2.0","id":3,"method":"tools/list","params":{{"_meta":{{"traceparent":"{parent}","tracestate":5}}}}}}"#
        );
        let envelope = Envelope::read(slow.as_bytes()).expect("valid");
        assert_eq!(
            envelope.traceparent.as_deref(),
            Some(parent),
            "parsed reading"
        );
        assert_eq!(envelope.tracestate, None, "a number is no trace state");
    }

    #[test]
    fn the_envelope_gives_method_and_tool_and_refuses_what_is_not_one_message() {
        let call = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"web_search","arguments":{"query":"x"}}}"#;
        let read = verdict;
        assert_eq!(
            read(call),
            Ok(Envelope {
                method: Some("tools/call".into()),
                tool: Some("web_search".into()),
                id: Some(serde_json::json!(1)),
                ..Envelope::default()
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
        let at_limit = format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"{}"}}}}"#,
            "t".repeat(MAX_NAME_CHARS)
        );
        assert_eq!(
            read(at_limit.as_bytes()).unwrap().tool.unwrap().len(),
            MAX_NAME_CHARS,
            "a name at the limit is read whole, for the scope check"
        );
        let long = at_limit.replace(r#""tt"#, r#""ttt"#);
        assert_eq!(
            read(long.as_bytes()).map_err(|e| e.0),
            Err(-32602),
            "over the limit"
        );
    }

    #[test]
    fn hostile_bodies_get_the_documented_code() {
        let call = |arguments: &str| {
            format!(
                r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"web_search","arguments":{arguments}}}}}"#
            )
            .into_bytes()
        };
        let with_id = |id: &str| format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"ping"}}"#);
        let mut bad_utf8 = call(r#"{"query":"XX"}"#);
        let at = bad_utf8.iter().position(|b| *b == b'X').unwrap();
        bad_utf8[at] = 0xff;
        let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
        let deep_in_arguments = call(&format!(
            r#"{{"q":{}1{}}}"#,
            "[".repeat(MAX_NESTING),
            "]".repeat(MAX_NESTING)
        ));
        for (body, code, why) in [
            (bad_utf8, -32700, "invalid UTF-8 in arguments"),
            (call(r#"{"query":"\ud800"}"#), -32700, "lone surrogate"),
            (
                call(r#"{"query":"q","max_results":1e309}"#),
                -32602,
                "1e309",
            ),
            (with_id("1e309").into_bytes(), -32600, "1e309 as the id"),
            (deep.into_bytes(), -32600, "5,000 levels"),
            (deep_in_arguments, -32600, "just over the limit"),
            (with_id("null").into_bytes(), -32600, "id null"),
            (with_id("{}").into_bytes(), -32600, "id object"),
            (
                with_id("147573952589676412928").into_bytes(),
                -32600,
                "id 2^67",
            ),
            (with_id("1.5").into_bytes(), -32600, "fractional id"),
            (
                br#"{"jsonrpc":"2.0","id":147573952589676412928,"id":0,"method":"ping"}"#.to_vec(),
                -32600,
                "an id written twice, the first out of range (found by the properties below)",
            ),
            (
                format!(
                    r#"{{"jsonrpc":"2.0","id":1,"method":"{}"}}"#,
                    "m".repeat(129)
                )
                .into_bytes(),
                -32600,
                "long method",
            ),
            (
                br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":5}}"#.to_vec(),
                -32602,
                "tool name not a string",
            ),
        ] {
            assert_eq!(verdict(&body).map_err(|e| e.0), Err(code), "{why}");
        }
        for (body, why) in [
            (
                call(r#"{"query":"\ud83d\ude00 [\"]"}"#),
                "a surrogate pair, brackets in strings",
            ),
            (with_id("\"abc\"").into_bytes(), "string id"),
            (with_id("9223372036854775807").into_bytes(), "i64::MAX id"),
            (with_id("2.0").into_bytes(), "an integer in float form"),
            (
                br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#.to_vec(),
                "notification",
            ),
        ] {
            assert!(verdict(&body).is_ok(), "{why}: {:?}", verdict(&body));
        }
    }

    #[test]
    fn bounded_text_marks_what_it_cuts() {
        assert_eq!(bounded_text("short"), "short");
        let cut = bounded_text(&"é".repeat(1000)).into_owned();
        assert_eq!(
            cut.chars().count(),
            MAX_LOGGED_CHARS + 1,
            "the prefix and the mark"
        );
        assert!(cut.ends_with('…'));
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

    /// Properties over generated bodies: the reader never panics, refuses only with the
    /// documented codes and statuses, and passes only what rmcp itself will read.
    mod properties {
        use poem::EndpointExt;
        use proptest::{collection, prelude::*};

        use super::*;

        /// A JSON value of a few levels, with the numbers and strings that trouble parsers.
        fn json() -> impl Strategy<Value = Value> {
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::from),
                any::<i64>().prop_map(Value::from),
                any::<u64>().prop_map(Value::from),
                any::<f64>().prop_map(Value::from),
                any::<String>().prop_map(Value::from),
                "[a-z/_]{0,8}".prop_map(Value::from),
            ];
            leaf.prop_recursive(4, 24, 4, |inner| {
                prop_oneof![
                    collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                    collection::btree_map("[a-z_]{1,8}", inner, 0..4)
                        .prop_map(|m| Value::Object(m.into_iter().collect())),
                ]
            })
        }

        /// Something close to a JSON-RPC message: each member present or not, well-typed or not.
        fn message() -> impl Strategy<Value = Value> {
            let method = prop_oneof![
                Just("tools/call".to_owned()),
                Just("tools/list".to_owned()),
                Just("ping".to_owned()),
                Just("initialize".to_owned()),
                Just("notifications/initialized".to_owned()),
                any::<String>(),
                (120..140usize).prop_map(|n| "m".repeat(n)),
            ];
            let name = prop_oneof![
                Just(Value::from("web_search")),
                (120..140usize).prop_map(|n| Value::from("t".repeat(n))),
                json(),
            ];
            let params = prop_oneof![
                json(),
                (name, json()).prop_map(|(name, arguments)| {
                    serde_json::json!({ "name": name, "arguments": arguments })
                }),
            ];
            (
                prop::option::of(prop_oneof![Just(Value::from("2.0")), json()]),
                prop::option::of(json()),
                prop::option::of(prop_oneof![method.prop_map(Value::from), json()]),
                prop::option::of(params),
                prop::option::of(json()),
            )
                .prop_map(|(jsonrpc, id, method, params, result)| {
                    let mut message = serde_json::Map::new();
                    for (key, value) in [
                        ("jsonrpc", jsonrpc),
                        ("id", id),
                        ("method", method),
                        ("params", params),
                        ("result", result),
                    ] {
                        if let Some(value) = value {
                            message.insert(key.to_owned(), value);
                        }
                    }
                    Value::Object(message)
                })
        }

        /// A message rmcp reads, mostly: a request or notification with well-typed members.
        fn well_formed() -> impl Strategy<Value = Value> {
            let method = prop_oneof![
                Just("tools/call".to_owned()),
                Just("tools/list".to_owned()),
                Just("ping".to_owned()),
                Just("notifications/initialized".to_owned()),
                (120..140usize).prop_map(|n| "m".repeat(n)),
            ];
            let name = prop_oneof![
                Just(Value::from("web_search")),
                (120..140usize).prop_map(|n| Value::from("t".repeat(n))),
                Just(Value::from(5)),
            ];
            let arguments = collection::btree_map("[a-z_]{1,8}", json(), 0..3)
                .prop_map(|m| Value::Object(m.into_iter().collect()));
            (
                prop::option::of(prop_oneof![
                    any::<i64>().prop_map(Value::from),
                    "[a-z0-9]{0,8}".prop_map(Value::from)
                ]),
                method,
                prop::option::of((prop::option::of(name), arguments)),
            )
                .prop_map(|(id, method, params)| {
                    let mut message = serde_json::json!({ "jsonrpc": "2.0", "method": method });
                    if let Some(id) = id {
                        message["id"] = id;
                    }
                    if let Some((name, arguments)) = params {
                        let mut params = serde_json::json!({ "arguments": arguments });
                        if let Some(name) = name {
                            params["name"] = name;
                        }
                        message["params"] = params;
                    }
                    message
                })
        }

        /// Text a serializer never writes but a client may.
        const FRAGMENTS: &[&str] = &[
            r#""id":1e309,"#,
            r#""id":147573952589676412928,"#,
            r#""id":null,"#,
            r#""jsonrpc":"2.0","#,
            r#""method":"ping","#,
            r#""x":"\ud800","#,
            r#""x":1e309,"#,
            r#""x":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]],"#,
        ];

        /// A message's text, perhaps damaged: cut short, a byte changed, or a fragment (a
        /// repeated member among them) put in after the opening brace.
        fn body() -> impl Strategy<Value = Vec<u8>> {
            let text = || {
                // Boxed: the nested strategy types otherwise overflow a debug test's stack.
                prop_oneof![message().boxed(), well_formed().boxed()]
                    .prop_map(|m| m.to_string().into_bytes())
                    .boxed()
            };
            prop_oneof![
                2 => text(),
                1 => (text(), any::<prop::sample::Index>())
                    .prop_map(|(mut t, at)| { t.truncate(at.index(t.len() + 1)); t }),
                1 => (text(), any::<prop::sample::Index>(), any::<u8>())
                    .prop_map(|(mut t, at, byte)| { let i = at.index(t.len()); t[i] = byte; t }),
                2 => (text(), prop::sample::select(FRAGMENTS))
                    .prop_map(|(t, fragment)| {
                        let rest = if t.len() > 2 { &t[1..] } else { b"}" };
                        [b"{", fragment.as_bytes(), rest].concat()
                    }),
                1 => collection::vec(any::<u8>(), 0..64),
            ]
        }

        /// The reader's verdict on `body` is one a client can rely on.
        fn verdict_holds(body: &[u8]) -> Result<(), TestCaseError> {
            match Envelope::read(body) {
                Ok(envelope) => {
                    if serde_json::from_slice::<ClientJsonRpcMessage>(body).is_err() {
                        // rmcp's text/plain 415 is replaced by this refusal.
                        let (code, _) = Envelope::refusal(body);
                        prop_assert!([-32700, -32600, -32602].contains(&code), "code {}", code);
                    }
                    for name in [&envelope.method, &envelope.tool].into_iter().flatten() {
                        prop_assert!(name.chars().count() <= MAX_NAME_CHARS);
                    }
                    prop_assert_eq!(
                        envelope.tool.is_some(),
                        envelope.method.as_deref() == Some("tools/call")
                    );
                }
                Err((code, message)) => {
                    prop_assert!([-32700, -32600, -32602].contains(&code), "code {}", code);
                    prop_assert!(
                        message.chars().count() <= MAX_LOGGED_CHARS + 128,
                        "the message quotes a bounded part of the body"
                    );
                }
            }
            Ok(())
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            #[test]
            fn the_envelope_reader_answers_every_body_with_a_documented_verdict(body in body()) {
                verdict_holds(&body)?;
            }

            #[test]
            fn the_shallow_reading_agrees_with_the_whole_one(body in body()) {
                if let Ok(text) = std::str::from_utf8(&body)
                    && !nesting_exceeds(text, MAX_NESTING)
                {
                    match (Envelope::read(&body), Envelope::judge(text)) {
                        // It may pass what rmcp cannot read: rmcp's 415 is then replaced by
                        // the whole reading's refusal.
                        (Ok(_), Err(refusal)) => {
                            prop_assert!(
                                serde_json::from_str::<ClientJsonRpcMessage>(text).is_err()
                            );
                            prop_assert_eq!(Envelope::refusal(&body), refusal);
                        }
                        (shallow, whole) => prop_assert_eq!(shallow, whole),
                    }
                }
            }

            #[test]
            fn the_body_reader_answers_400_413_or_415_with_a_json_rpc_error(
                content_type in prop::option::of(prop_oneof![
                    Just("application/json".to_owned()),
                    Just("application/json; charset=utf-8".to_owned()),
                    "[ -~]{0,24}",
                ]),
                body in prop_oneof![body(), collection::vec(any::<u8>(), 0..1200)],
            ) {
                let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
                // Stands in for rmcp: it serves what it can read and answers anything else
                // with a plain-text 415, as rmcp does.
                let rmcp = poem::endpoint::make(|mut req: Request| async move {
                    let body = req.take_body().into_bytes().await.unwrap_or_default();
                    if serde_json::from_slice::<ClientJsonRpcMessage>(&body).is_ok() {
                        "passed".into_response()
                    } else {
                        Response::builder()
                            .status(StatusCode::UNSUPPORTED_MEDIA_TYPE)
                            .content_type("text/plain")
                            .body("Unsupported Media Type")
                    }
                });
                let endpoint = rmcp.with(BodyReader { max_bytes: 1024 });
                let mut request = Request::builder().method(Method::POST);
                if let Some(content_type) = &content_type {
                    request = request.content_type(content_type);
                }
                let response = runtime
                    .block_on(endpoint.call(request.body(body.clone())))
                    .unwrap()
                    .into_response();
                let status = response.status();
                let text = runtime.block_on(response.into_body().into_string()).unwrap();
                if status == StatusCode::OK {
                    prop_assert_eq!(text, "passed");
                    prop_assert!(is_json(content_type.as_deref()) && body.len() <= 1024);
                    prop_assert!(Envelope::read(&body).is_ok());
                } else {
                    let answer: Value = serde_json::from_str(&text).unwrap();
                    let code = answer["error"]["code"].as_i64().unwrap();
                    prop_assert_eq!(&answer["jsonrpc"], "2.0");
                    prop_assert!(
                        matches!(
                            (status.as_u16(), code),
                            (400, -32700 | -32600 | -32602) | (413 | 415, -32600)
                        ),
                        "{} {}", status, code
                    );
                }
            }
        }
    }
}
