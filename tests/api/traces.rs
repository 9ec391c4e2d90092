//! OpenTelemetry traces, through the real binary (tracing's subscriber is process-wide): a
//! loopback OTLP/HTTP receiver decodes what searchgate exports with the collector's own
//! protobuf types. One `tools/call` gives the span tree HTTP server → token check, MCP request →
//! search backend → HTTP client, with the semantic-convention attributes, parented to the
//! client's `traceparent` (header or `params._meta`), and its trace id in the audit row. A
//! collector that is down changes nothing for the client and is logged once.

use std::{
    collections::HashMap,
    path::Path,
    process::Child,
    time::{Duration, Instant},
};

use opentelemetry_proto::tonic::{
    collector::trace::v1::ExportTraceServiceRequest,
    common::v1::{AnyValue, any_value::Value as Any},
    trace::v1::span::SpanKind,
};
use prost::Message;
use serde_json::{Value, json};
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{method, path},
};

use crate::helpers::{AuditTable, free_port, searchgate, spawn_binary, tool_call};

const CLIENT_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CLIENT_SPAN: &str = "00f067aa0ba902b7";

/// One exported span, flattened.
#[derive(Debug, Clone)]
struct Seen {
    name: String,
    trace_id: String,
    span_id: String,
    parent: String,
    kind: i32,
    attributes: HashMap<String, String>,
    links: Vec<(String, String)>,
}

impl Seen {
    fn attr(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).map(String::as_str)
    }
}

fn text(value: Option<&AnyValue>) -> String {
    match value.and_then(|v| v.value.as_ref()) {
        Some(Any::StringValue(s)) => s.clone(),
        Some(Any::IntValue(i)) => i.to_string(),
        Some(Any::BoolValue(b)) => b.to_string(),
        Some(Any::DoubleValue(d)) => d.to_string(),
        other => format!("{other:?}"),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Every span the receiver has been sent so far, and the resources' attributes.
async fn received(collector: &MockServer) -> (Vec<Seen>, Vec<HashMap<String, String>>) {
    let mut spans = Vec::new();
    let mut resources = Vec::new();
    for request in collector.received_requests().await.unwrap_or_default() {
        assert_eq!(
            request
                .headers
                .get("content-type")
                .map(|v| v.to_str().unwrap()),
            Some("application/x-protobuf"),
            "OTLP/HTTP with protobuf"
        );
        let export = ExportTraceServiceRequest::decode(request.body.as_slice())
            .expect("an OTLP trace export");
        for resource_spans in export.resource_spans {
            if let Some(resource) = &resource_spans.resource {
                resources.push(
                    resource
                        .attributes
                        .iter()
                        .map(|kv| (kv.key.clone(), text(kv.value.as_ref())))
                        .collect(),
                );
            }
            for scope in resource_spans.scope_spans {
                for span in scope.spans {
                    spans.push(Seen {
                        name: span.name.clone(),
                        trace_id: hex(&span.trace_id),
                        span_id: hex(&span.span_id),
                        parent: hex(&span.parent_span_id),
                        kind: span.kind,
                        attributes: span
                            .attributes
                            .iter()
                            .map(|kv| (kv.key.clone(), text(kv.value.as_ref())))
                            .collect(),
                        links: span
                            .links
                            .iter()
                            .map(|l| (hex(&l.trace_id), hex(&l.span_id)))
                            .collect(),
                    });
                }
            }
        }
    }
    (spans, resources)
}

/// Waits (bounded) until the receiver holds a span named `name`.
async fn wait_for(collector: &MockServer, name: &str) -> Vec<Seen> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (spans, _) = received(collector).await;
        if spans.iter().any(|s| s.name == name) || Instant::now() > deadline {
            return spans;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn one<'a>(spans: &'a [Seen], name: &str) -> &'a Seen {
    let found: Vec<_> = spans.iter().filter(|s| s.name == name).collect();
    assert_eq!(found.len(), 1, "one span {name:?} in {spans:#?}");
    found[0]
}

/// A Tavily stand-in answering every search.
async fn tavily() -> MockServer {
    let tavily = MockServer::start().await;
    Mock::given(path("/search"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "query": "q", "results": [
                { "title": "T", "url": "https://example.com/", "content": "c", "score": 0.5 }
            ], "response_time": 0.1
        })))
        .mount(&tavily)
        .await;
    tavily
}

/// A receiver accepting every trace export.
async fn collector() -> MockServer {
    let collector = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/traces"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&collector)
        .await;
    collector
}

/// The binary with the embedded authorization server, Tavily at `tavily`, traces to
/// `endpoint`, and a token for it.
async fn start(dir: &Path, tavily: &MockServer, endpoint: &str) -> (Child, String, String) {
    let port = free_port();
    let port_text = port.to_string();
    let base_url = tavily.uri();
    let child = spawn_binary(
        dir,
        port,
        &[
            ("PORT", &port_text),
            ("TAVILY_API_KEY", "tvly-trace-key"),
            ("SEARCHGATE_SEARCH__TAVILY__BASE_URL", &base_url),
            ("SEARCHGATE_TELEMETRY__OTLP_ENDPOINT", endpoint),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ],
    )
    .await;
    let token = searchgate(dir, &[("PORT", &port_text)])
        .args(["token", "--scope", "web-search:read"])
        .output()
        .unwrap();
    assert!(token.status.success(), "a token for the embedded server");
    let token = String::from_utf8(token.stdout).unwrap().trim().to_owned();
    (
        child,
        format!("http://127.0.0.1:{port}/web-search/mcp"),
        token,
    )
}

/// Stops the binary as an operator does (SIGTERM) and returns what it wrote to stderr.
fn stop(child: Child) -> String {
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "a graceful exit");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

async fn search(url: &str, token: &str, body: &Value, traceparent: Option<&str>) -> Value {
    let mut request = reqwest::Client::new()
        .post(url)
        .bearer_auth(token)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-06-18")
        .json(body);
    if let Some(traceparent) = traceparent {
        request = request
            .header("traceparent", traceparent)
            .header("tracestate", "client=1");
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["result"]["isError"], false, "{body}");
    body
}

#[tokio::test]
async fn a_tools_call_is_one_trace_under_the_clients_traceparent_header() {
    let (tavily, collector) = (tavily().await, collector().await);
    let dir = tempfile::tempdir().unwrap();
    let (child, url, token) = start(dir.path(), &tavily, &collector.uri()).await;
    let traceparent = format!("00-{CLIENT_TRACE}-{CLIENT_SPAN}-01");
    search(
        &url,
        &token,
        &tool_call(7, "web_search", json!({ "query": "rust tracing" })),
        Some(&traceparent),
    )
    .await;
    let spans = wait_for(&collector, "tools/call web_search").await;
    let stderr = stop(child);
    let spans: Vec<_> = spans
        .into_iter()
        .filter(|s| s.trace_id == CLIENT_TRACE)
        .collect();

    let server = one(&spans, "POST /web-search/mcp");
    assert_eq!(server.parent, CLIENT_SPAN, "parented to the header's span");
    assert_eq!(server.kind, SpanKind::Server as i32);
    assert_eq!(server.attr("http.request.method"), Some("POST"));
    assert_eq!(server.attr("url.path"), Some("/web-search/mcp"));
    assert_eq!(server.attr("http.route"), Some("/web-search/mcp"));
    assert_eq!(server.attr("http.response.status_code"), Some("200"));
    assert_eq!(server.attr("server.address"), Some("127.0.0.1"));
    assert_eq!(server.attr("client.address"), Some("127.0.0.1"));

    let check = one(&spans, "token check");
    assert_eq!(
        check.parent, server.span_id,
        "the token check is the request's"
    );
    assert!(
        check.attr("searchgate.token_cache.hit").is_some(),
        "{check:?}"
    );
    assert!(
        check.attributes.values().all(|v| !v.contains(&token)),
        "never the token"
    );

    let mcp = one(&spans, "tools/call web_search");
    assert_eq!(
        mcp.parent, server.span_id,
        "the MCP request is in the HTTP one"
    );
    assert_eq!(mcp.attr("mcp.method.name"), Some("tools/call"));
    assert_eq!(mcp.attr("mcp.protocol.version"), Some("2025-06-18"));
    assert_eq!(mcp.attr("jsonrpc.request.id"), Some("7"));
    assert_eq!(mcp.attr("gen_ai.operation.name"), Some("execute_tool"));
    assert_eq!(mcp.attr("gen_ai.tool.name"), Some("web_search"));
    assert_eq!(mcp.attr("error.type"), None, "it succeeded");

    let backend = one(&spans, "search backend");
    assert_eq!(
        backend.parent, mcp.span_id,
        "the backend call is the tool's"
    );
    assert_eq!(backend.attr("searchgate.provider"), Some("tavily"));
    assert_eq!(backend.attr("searchgate.attempt"), Some("1"));
    assert_eq!(backend.attr("searchgate.fallback"), Some("false"));

    let client = one(&spans, "POST");
    assert_eq!(
        client.parent, backend.span_id,
        "the HTTP request of that call"
    );
    assert_eq!(client.kind, SpanKind::Client as i32);
    assert_eq!(client.attr("http.request.method"), Some("POST"));
    assert_eq!(client.attr("http.response.status_code"), Some("200"));
    assert_eq!(client.attr("server.address"), Some("127.0.0.1"));
    let full = format!("{}/search", tavily.uri());
    assert_eq!(client.attr("url.full"), Some(full.as_str()));
    assert!(
        spans
            .iter()
            .flat_map(|s| s.attributes.values())
            .all(|v| !v.contains("tvly-trace-key")),
        "the backend key is in no attribute"
    );

    // The audit write is a trace of its own, flushed at shutdown at the latest.
    let (all, resources) = received(&collector).await;
    assert!(
        all.iter()
            .any(|s| s.name == "audit write" && s.attr("searchgate.audit.events").is_some()),
        "{all:#?}"
    );
    assert!(
        resources
            .iter()
            .all(|r| r.get("service.name").map(String::as_str) == Some("searchgate")),
        "the default service name: {resources:?}"
    );
    let rows = AuditTable::read(&dir.path().join("searchgate.db"))
        .await
        .rows;
    let row = rows
        .iter()
        .find(|r| r.tool.as_deref() == Some("web_search"))
        .expect("the call's row");
    assert_eq!(
        row.trace_id.as_deref(),
        Some(CLIENT_TRACE),
        "the audit row leads to the trace"
    );
    assert!(
        stderr.contains(&format!("trace_id={CLIENT_TRACE}")),
        "the log lines carry the trace id: {stderr}"
    );
    assert!(
        !stderr.contains("mcp request") && !stderr.contains("http.request.method"),
        "the trace spans stay out of the log lines: {stderr}"
    );
}

#[tokio::test]
async fn a_traceparent_in_params_meta_parents_the_mcp_request() {
    let (tavily, collector) = (tavily().await, collector().await);
    let dir = tempfile::tempdir().unwrap();
    let (child, url, token) = start(dir.path(), &tavily, &collector.uri()).await;
    let meta_trace = "0af7651916cd43dd8448eb211c80319c";
    let meta_span = "b7ad6b7169203331";
    let mut body = tool_call("call-1", "web_search", json!({ "query": "meta" }));
    body["params"]["_meta"] = json!({
        "traceparent": format!("00-{meta_trace}-{meta_span}-01"),
        "tracestate": "client=2",
    });
    search(&url, &token, &body, None).await;
    let spans = wait_for(&collector, "tools/call web_search").await;
    stop(child);

    let mcp = one(&spans, "tools/call web_search");
    assert_eq!(mcp.trace_id, meta_trace, "the _meta trace context wins");
    assert_eq!(mcp.parent, meta_span, "parented to the span _meta names");
    assert_eq!(mcp.attr("jsonrpc.request.id"), Some("call-1"));
    let server = one(&spans, "POST /web-search/mcp");
    assert_eq!(
        mcp.links,
        vec![(server.trace_id.clone(), server.span_id.clone())],
        "linked to the HTTP request it came in"
    );
    let client = one(&spans, "POST");
    assert_eq!(client.trace_id, meta_trace, "the tool's spans follow");
    let rows = AuditTable::read(&dir.path().join("searchgate.db"))
        .await
        .rows;
    let row = rows
        .iter()
        .find(|r| r.tool.as_deref() == Some("web_search"))
        .expect("the call's row");
    assert_eq!(row.trace_id.as_deref(), Some(meta_trace));
}

#[tokio::test]
async fn a_dead_collector_changes_nothing_for_the_client_and_is_logged_once() {
    let tavily = tavily().await;
    let dir = tempfile::tempdir().unwrap();
    // A port nothing listens on.
    let dead = format!("http://127.0.0.1:{}", free_port());
    let (child, url, token) = start(dir.path(), &tavily, &dead).await;
    let metrics_url = url.replace("/web-search/mcp", "/metrics");
    for n in 0..4 {
        search(
            &url,
            &token,
            &tool_call(n, "web_search", json!({ "query": format!("q{n}") })),
            None,
        )
        .await;
        // Past the batch delay, so each call's spans go in an export of their own.
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    let dropped = loop {
        let metrics = reqwest::get(&metrics_url)
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let dropped = metrics
            .lines()
            .find(|l| {
                l.starts_with("searchgate_otlp_spans_dropped_total{reason=\"export_failed\"}")
            })
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        if dropped > 0 || Instant::now() > deadline {
            break dropped;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let stderr = stop(child);
    assert!(dropped > 0, "the lost spans are counted");
    assert_eq!(
        stderr.matches("cannot export traces").count(),
        1,
        "logged once, not per batch: {stderr}"
    );
    let rows = AuditTable::read(&dir.path().join("searchgate.db"))
        .await
        .rows;
    assert_eq!(
        rows.iter().filter(|r| r.outcome == "success").count(),
        4,
        "every call served and audited"
    );
}
