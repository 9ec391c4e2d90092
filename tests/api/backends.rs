//! Contract: several search backends are tried in the operator's order. A backend whose credits
//! are spent rests and the next answers, saying who failed first (in the result, the audit row
//! and the metrics); an argument the answering backend cannot honour is listed, never dropped
//! silently, and refused when the caller named that backend. Without a backend that reads
//! pages, `web_extract` is served by the built-in reader. Loopback fakes stand in for Tavily,
//! Brave and SearXNG and check what they receive.

use rmcp::{
    ServiceExt,
    model::{CallToolRequestParams, ClientCapabilities, Implementation, InitializeRequestParams},
    transport::StreamableHttpClientTransport,
};
use searchgate::config::{SearchProviderKind, Secret, Settings};
use serde_json::{Value, json};
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{header, method, path, query_param},
};

use crate::helpers::{TestApp, free_port, spawn_binary, spawn_with, tool_call};

/// A Brave answer with one result.
fn brave_answer() -> Value {
    json!({
        "type": "search",
        "query": { "original": "rust", "more_results_available": false },
        "web": { "type": "search", "results": [{
            "title": "The Rust Programming Language",
            "url": "https://www.rust-lang.org/",
            "description": "A language empowering everyone.",
            "page_age": "2026-09-01T00:00:00"
        }]}
    })
}

/// A SearXNG answer with one result.
fn searxng_answer() -> Value {
    json!({
        "query": "rust", "number_of_results": 0,
        "results": [{
            "url": "https://doc.rust-lang.org/book/", "title": "The Book",
            "content": "Learn Rust.", "engine": "duckduckgo", "score": 2.0
        }],
        "answers": [], "corrections": [], "infoboxes": [], "suggestions": [],
        "unresponsive_engines": []
    })
}

async fn fake(endpoint: &str, status: u16, body: Value) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(path(endpoint))
        .respond_with(ResponseTemplate::new(status).set_body_json(body))
        .mount(&server)
        .await;
    server
}

fn use_backends(
    s: &mut Settings,
    kinds: &[SearchProviderKind],
    tavily: &MockServer,
    brave: &MockServer,
    searxng: &MockServer,
) {
    s.search.provider = kinds.to_vec();
    s.search.tavily.api_key = Some(Secret::new("tvly-test"));
    s.search.tavily.base_url = tavily.uri().parse().unwrap();
    s.search.brave.api_key = Some(Secret::new("brave-test"));
    s.search.brave.base_url = brave.uri().parse().unwrap();
    s.search.searxng.base_url = Some(searxng.uri().parse().unwrap());
    s.search.cache_ttl_secs = 0;
    s.search.deadlines.search_secs = 5;
}

async fn call(app: &TestApp, arguments: Value) -> Value {
    let (status, body) = app.rpc(tool_call(1, "web_search", arguments)).await;
    assert_eq!(status, 200, "{body}");
    body["result"].clone()
}

#[tokio::test]
async fn spent_tavily_credits_hand_the_call_to_brave_and_tavily_rests() {
    let tavily = fake(
        "/search",
        432,
        json!({ "detail": { "error": "This request exceeds your plan's set usage limit." } }),
    )
    .await;
    let brave = fake("/res/v1/web/search", 200, brave_answer()).await;
    let searxng = fake("/search", 200, searxng_answer()).await;
    let app = spawn_with(
        |s| {
            use_backends(
                s,
                &[SearchProviderKind::Tavily, SearchProviderKind::Brave],
                &tavily,
                &brave,
                &searxng,
            )
        },
        |b| b,
    )
    .await;
    let first = call(&app, json!({ "query": "rust" })).await;
    let output = &first["structuredContent"];
    assert_eq!(output["provider"], "brave", "{first}");
    assert_eq!(
        output["fallback_from"],
        json!([{ "provider": "tavily", "error": "upstream_quota_exhausted" }])
    );
    assert_eq!(output["results"][0]["url"], "https://www.rust-lang.org/");
    let second = call(&app, json!({ "query": "rust" })).await;
    assert_eq!(second["structuredContent"]["provider"], "brave");
    assert!(
        second["structuredContent"].get("fallback_from").is_none(),
        "tavily rests: {second}"
    );
    assert_eq!(
        tavily.received_requests().await.unwrap().len(),
        1,
        "a resting backend is not asked (or billed) again"
    );
    let metrics = app.metrics().await;
    assert!(
        metrics.contains(
            "searchgate_upstream_fallbacks_total{provider=\"tavily\",tool=\"web_search\",\
             error=\"upstream_quota_exhausted\"} 1"
        ),
        "{metrics}"
    );
    let audit = app.stop().await;
    let rows: Vec<_> = audit
        .rows
        .iter()
        .filter(|r| r.tool.as_deref() == Some("web_search"))
        .map(|r| (r.provider.clone(), r.fallback_from.clone()))
        .collect();
    assert_eq!(
        rows,
        [
            (
                Some("brave".to_owned()),
                Some("tavily:upstream_quota_exhausted".to_owned())
            ),
            (Some("brave".to_owned()), None)
        ]
    );
}

#[tokio::test]
async fn arguments_a_backend_cannot_honour_are_listed_or_refused_when_it_was_named() {
    let tavily = fake("/search", 500, json!({})).await;
    let brave = fake("/res/v1/web/search", 500, json!({})).await;
    let searxng = fake("/search", 200, searxng_answer()).await;
    let app = spawn_with(
        |s| {
            use_backends(
                s,
                &[SearchProviderKind::Searxng, SearchProviderKind::Tavily],
                &tavily,
                &brave,
                &searxng,
            )
        },
        |b| b,
    )
    .await;
    let listed = call(&app, json!({ "query": "rust", "exact_match": true })).await;
    assert_eq!(listed["isError"], false, "{listed}");
    assert_eq!(listed["structuredContent"]["provider"], "searxng");
    assert_eq!(
        listed["structuredContent"]["unsupported"],
        json!(["exact_match"])
    );
    let text = listed["content"][0]["text"].as_str().unwrap();
    assert!(
        text.contains("searxng backend cannot honour exact_match"),
        "{text}"
    );
    let refused = call(
        &app,
        json!({ "query": "rust", "exact_match": true, "provider": "searxng" }),
    )
    .await;
    assert_eq!(refused["isError"], true);
    assert_eq!(
        refused["_meta"]["searchgate/error"],
        json!({ "code": "invalid_argument", "field": "exact_match" })
    );
    let unknown = call(&app, json!({ "query": "rust", "provider": "brave" })).await;
    assert_eq!(
        unknown["_meta"]["searchgate/error"]["field"], "provider",
        "brave is not configured here: {unknown}"
    );
    let named = call(&app, json!({ "query": "rust", "provider": "tavily" })).await;
    assert_eq!(
        named["_meta"]["searchgate/error"]["code"], "upstream_unavailable",
        "a named backend never falls back: {named}"
    );
    assert_eq!(searxng.received_requests().await.unwrap().len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn when_every_backend_fails_one_error_names_each_reason() {
    let tavily = fake("/search", 401, json!({ "detail": { "error": "bad key" } })).await;
    let brave = fake("/res/v1/web/search", 503, json!({})).await;
    let searxng = fake("/search", 200, searxng_answer()).await;
    let app = spawn_with(
        |s| {
            use_backends(
                s,
                &[SearchProviderKind::Tavily, SearchProviderKind::Brave],
                &tavily,
                &brave,
                &searxng,
            );
            s.search.rate_limit_per_minute = 0;
        },
        |b| b,
    )
    .await;
    let failed = call(&app, json!({ "query": "rust" })).await;
    assert_eq!(failed["isError"], true);
    let error = &failed["_meta"]["searchgate/error"];
    assert_eq!(error["code"], "upstream_all_failed");
    assert_eq!(
        error["failures"],
        json!([
            { "provider": "tavily", "code": "upstream_unauthorized" },
            { "provider": "brave", "code": "upstream_unavailable" }
        ])
    );
    let text = failed["content"][0]["text"].as_str().unwrap();
    assert!(
        text.contains("tavily (upstream_unauthorized")
            && text.contains("brave (upstream_unavailable"),
        "{text}"
    );
    app.stop().await;
}

/// An article page with navigation and a script around it, for the reader.
const ARTICLE: &str = "<!doctype html><html><head><title>Ferris</title>\
    <script>var tracking = 'SCRIPT-TEXT';</script></head><body>\
    <nav><a href='/'>Home</a> <a href='/about'>NAV-LINK-TEXT</a></nav>\
    <article><h1>Ferris the crab</h1><p>Ferris is the unofficial mascot of the Rust \
    programming language, a friendly orange crab who appears in books, stickers and error \
    messages all over the community.</p><p>Many Rustaceans have a Ferris plush on their \
    desk, and the crab shows up at conferences around the world every year.</p></article>\
    <footer>FOOTER-TEXT</footer></body></html>";

#[tokio::test(flavor = "multi_thread")]
async fn the_real_binary_searches_brave_then_searxng_and_reads_pages_itself() {
    let brave = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/res/v1/web/search"))
        .and(header("x-subscription-token", "brave-binary-key"))
        .and(query_param("q", "rust"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&brave)
        .await;
    let searxng = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/search"))
        .and(query_param("format", "json"))
        .and(query_param("q", "rust"))
        .respond_with(ResponseTemplate::new(200).set_body_json(searxng_answer()))
        .mount(&searxng)
        .await;
    let pages = MockServer::start().await;
    Mock::given(path("/ferris"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(ARTICLE, "text/html; charset=utf-8"))
        .mount(&pages)
        .await;
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let (port_text, brave_url, searxng_url) = (port.to_string(), brave.uri(), searxng.uri());
    let mut child = spawn_binary(
        dir.path(),
        port,
        &[
            ("PORT", &port_text),
            ("SEARCHGATE_AUTH__PROVIDER", "none"),
            ("SEARCHGATE_SEARCH__PROVIDER", "brave,searxng"),
            ("BRAVE_API_KEY", "brave-binary-key"),
            ("SEARCHGATE_SEARCH__BRAVE__BASE_URL", &brave_url),
            ("SEARXNG_URL", &searxng_url),
            ("SEARCHGATE_SEARCH__READER__ALLOW_PRIVATE_ADDRESSES", "true"),
        ],
    )
    .await;
    let url = format!("http://127.0.0.1:{port}/web-search/mcp");
    let client = InitializeRequestParams::new(
        ClientCapabilities::default(),
        Implementation::new("backends-test", "1.0"),
    )
    .serve(StreamableHttpClientTransport::from_uri(url.as_str()))
    .await
    .expect("the handshake succeeds");
    let tools = client.list_all_tools().await.expect("tools/list");
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    assert_eq!(
        names,
        ["web_search", "web_extract"],
        "search from the backends, extract from the reader"
    );
    assert_eq!(
        tools[0].input_schema["properties"]["provider"]["enum"],
        json!(["brave", "searxng"])
    );
    let searched = client
        .call_tool(
            CallToolRequestParams::new("web_search")
                .with_arguments(json!({ "query": "rust" }).as_object().unwrap().clone()),
        )
        .await
        .expect("tools/call");
    let output = searched.structured_content.expect("structured content");
    assert_eq!(output["provider"], "searxng", "{output}");
    assert_eq!(
        output["fallback_from"],
        json!([{ "provider": "brave", "error": "upstream_unavailable" }])
    );
    assert_eq!(
        output["results"][0]["url"],
        "https://doc.rust-lang.org/book/"
    );
    assert_eq!(
        brave.received_requests().await.unwrap().len(),
        2,
        "an outage is retried once before the next backend"
    );
    let read = client
        .call_tool(
            CallToolRequestParams::new("web_extract").with_arguments(
                json!({ "urls": [format!("{}/ferris", pages.uri())] })
                    .as_object()
                    .unwrap()
                    .clone(),
            ),
        )
        .await
        .expect("tools/call");
    let output = read.structured_content.expect("structured content");
    let _ = client.cancel().await;
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(output["provider"], "reader", "{output}");
    let content = output["results"][0]["content"].as_str().unwrap();
    assert!(content.contains("unofficial mascot"), "{content}");
    for noise in ["SCRIPT-TEXT", "NAV-LINK-TEXT", "FOOTER-TEXT"] {
        assert!(!content.contains(noise), "{noise} in {content}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn check_config_probes_every_configured_backend() {
    let brave = MockServer::start().await;
    Mock::given(path("/res/v1/web/search"))
        .and(header("x-subscription-token", "brave-probe-key"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("X-RateLimit-Limit", "1, 15000")
                .set_body_json(brave_answer()),
        )
        .mount(&brave)
        .await;
    let searxng = fake("/search", 403, json!({})).await;
    let dir = tempfile::tempdir().unwrap();
    let (brave_url, searxng_url) = (brave.uri(), searxng.uri());
    let output = crate::helpers::searchgate(
        dir.path(),
        &[
            ("BRAVE_API_KEY", "brave-probe-key"),
            ("SEARCHGATE_SEARCH__BRAVE__BASE_URL", &brave_url),
            ("SEARXNG_URL", &searxng_url),
        ],
    )
    .arg("check-config")
    .output()
    .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "a failed probe: {text}");
    assert!(
        text.contains("provider = [\n    \"brave\",\n    \"searxng\",\n]"),
        "{text}"
    );
    assert!(text.contains("# ok      brave backend: "), "{text}");
    assert!(text.contains("# PROBLEM searxng backend: "), "{text}");
    assert!(text.contains("settings.yml"), "says what to fix: {text}");
    assert!(text.contains("# ok      page reader: "), "{text}");
    assert!(
        !text.contains("brave-probe-key"),
        "the key is never printed"
    );
    assert_eq!(brave.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn searxng_with_every_engine_failed_is_a_failure_the_next_backend_covers() {
    let tavily = fake("/search", 500, json!({})).await;
    let brave = fake("/res/v1/web/search", 200, brave_answer()).await;
    let searxng = fake(
        "/search",
        200,
        json!({
            "query": "rust", "number_of_results": 0, "results": [],
            "unresponsive_engines": [["google", "timeout"], ["duckduckgo", "CAPTCHA"]]
        }),
    )
    .await;
    let app = spawn_with(
        |s| {
            use_backends(
                s,
                &[SearchProviderKind::Searxng, SearchProviderKind::Brave],
                &tavily,
                &brave,
                &searxng,
            )
        },
        |b| b,
    )
    .await;
    let result = call(&app, json!({ "query": "rust" })).await;
    assert_eq!(result["structuredContent"]["provider"], "brave", "{result}");
    assert_eq!(
        result["structuredContent"]["fallback_from"],
        json!([{ "provider": "searxng", "error": "upstream_unavailable" }]),
        "an empty page with failed engines is not \"no results\""
    );
    app.stop().await;
}
