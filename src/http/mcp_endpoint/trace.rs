//! The span of one MCP request, with the attribute names of the OpenTelemetry MCP and GenAI
//! semantic conventions (`mcp.method.name`, `mcp.protocol.version`, `jsonrpc.request.id`; for
//! `tools/call` `gen_ai.operation.name = execute_tool` and `gen_ai.tool.name`; `error.type` is
//! recorded by the audit layer once the outcome is known).
//!
//! Its parent is the trace context in `params._meta` when the client sent one (the MCP request
//! is the finer scope: a client that sends both names its call there), linked to the HTTP server
//! span; else the HTTP server span, itself parented to the `traceparent` header.

use poem::Request;
use serde_json::Value;
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::body_reader::Envelope;
use crate::{domain::TRACE_TARGET, http::request_id::HttpSpan, telemetry::context};

/// The longest `MCP-Protocol-Version` recorded (revisions are dates: 10 characters).
const MAX_VERSION_CHARS: usize = 32;

/// The MCP request's span (disabled when traces are off) and the trace id the request's audit
/// row carries when it differs from the HTTP request's: the exported span's, or with export off
/// the one `params._meta.traceparent` names.
pub(super) fn mcp_span(req: &Request, envelope: &Envelope) -> (tracing::Span, Option<String>) {
    let meta_parent = envelope
        .traceparent
        .as_deref()
        .and_then(|parent| context::remote_parent(parent, envelope.tracestate.as_deref()));
    if !context::traces_on() {
        return (
            tracing::Span::none(),
            meta_parent.as_ref().and_then(context::trace_id),
        );
    }
    let method = envelope.method.as_deref().unwrap_or("response");
    let name = match &envelope.tool {
        Some(tool) => format!("{method} {tool}"),
        None => method.to_owned(),
    };
    let span = tracing::info_span!(
        target: TRACE_TARGET,
        "mcp request",
        otel.name = name,
        otel.kind = "server",
        otel.status_code = Empty,
        mcp.method.name = method,
        mcp.protocol.version = Empty,
        jsonrpc.request.id = Empty,
        gen_ai.operation.name = Empty,
        gen_ai.tool.name = Empty,
        error.type = Empty,
    );
    if let Some(version) = req
        .header("mcp-protocol-version")
        .filter(|v| v.len() <= MAX_VERSION_CHARS)
    {
        span.record("mcp.protocol.version", version);
    }
    match &envelope.id {
        Some(Value::String(id)) => {
            span.record("jsonrpc.request.id", id.as_str());
        }
        Some(Value::Number(id)) => {
            span.record("jsonrpc.request.id", tracing::field::display(id));
        }
        _ => {}
    }
    if let Some(tool) = &envelope.tool {
        span.record("gen_ai.operation.name", "execute_tool");
        span.record("gen_ai.tool.name", tool.as_str());
    }
    if let Some(parent) = meta_parent {
        if let Some(HttpSpan(http)) = req.extensions().get::<HttpSpan>() {
            use opentelemetry::trace::TraceContextExt;
            span.add_link(http.context().span().span_context().clone());
        }
        let _ = span.set_parent(parent);
    }
    let trace_id = context::span_trace_id(&span);
    (span, trace_id)
}
