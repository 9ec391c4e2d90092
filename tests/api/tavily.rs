//! Contract: with the Tavily provider, every web tool sends Tavily exactly the options the caller
//! set, authenticated with searchgate's own key and never the client's token; every upstream
//! fault becomes a tool error with a code and advice (never an HTTP 500); transient faults are
//! tried twice at most within the tool's deadline; identical calls are answered from the cache;
//! each principal is rate limited; long crawls report progress. A loopback fake (wiremock)
//! stands in for Tavily and records what it received.

use searchgate::config::{SearchProviderKind, Secret, Settings};
use serde_json::{Value, json};
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{body_json, header, method, path},
};

use crate::{
    helpers::{TestApp, free_port, searchgate, spawn_binary, spawn_with, tool_call},
    idp::Idp,
};

const KEY: &str = "tvly-test-key";

/// A fake Tavily and a searchgate using it with short deadlines.
async fn stack(configure: impl FnOnce(&mut Settings)) -> (MockServer, TestApp) {
    let tavily = MockServer::start().await;
    let base_url = tavily.uri().parse().unwrap();
    let app = spawn_with(
        |s| {
            s.search.provider = vec![SearchProviderKind::Tavily];
            s.search.tavily.api_key = Some(Secret::new(KEY));
            s.search.tavily.base_url = base_url;
            s.search.deadlines.search_secs = 2;
            configure(s);
        },
        |b| b,
    )
    .await;
    (tavily, app)
}

/// `tools/call` of `tool` and the JSON-RPC `result`.
async fn call(app: &TestApp, tool: &str, arguments: Value) -> Value {
    let (status, body) = app.rpc(tool_call(1, tool, arguments)).await;
    assert_eq!(
        status, 200,
        "upstream faults never change the HTTP status: {body}"
    );
    body["result"].clone()
}

fn text(result: &Value) -> &str {
    result["content"][0]["text"].as_str().unwrap_or_default()
}

fn error_code(result: &Value) -> &str {
    result["_meta"]["searchgate/error"]["code"]
        .as_str()
        .unwrap_or_default()
}

/// A documented `/search` answer with every optional part.
fn full_search_answer() -> Value {
    json!({
        "query": "rust async runtimes",
        "answer": "Tokio is the most used runtime.",
        "images": [
            "https://img.example/1.png",
            { "url": "https://img.example/2.png", "description": "a crab" }
        ],
        "results": [{
            "title": "Tokio", "url": "https://tokio.rs", "content": "An async runtime.",
            "score": 0.93, "raw_content": "# Tokio\nFull text.", "published_date": "2025-01-02",
            "favicon": "https://tokio.rs/favicon.ico", "id": "r1",
            "images": [{ "url": "https://tokio.rs/logo.svg", "description": "logo" }]
        }],
        "auto_parameters": { "topic": "general", "search_depth": "advanced" },
        "response_time": 1.5,
        "usage": { "credits": 2 },
        "request_id": "req-tavily-1",
        "follow_up_questions": null
    })
}

#[tokio::test]
async fn search_sends_exactly_the_options_set_with_searchgates_key() {
    let (tavily, app) = stack(|_| {}).await;
    Mock::given(method("POST"))
        .and(path("/search"))
        .and(header("authorization", &*format!("Bearer {KEY}")))
        .and(header("content-type", "application/json"))
        .and(body_json(json!({
            "query": "rust async runtimes",
            "max_results": 3,
            "include_usage": true,
            "search_depth": "advanced",
            "topic": "general",
            "start_date": "2025-01-01",
            "end_date": "2025-06-30",
            "chunks_per_source": 2,
            "include_answer": "advanced",
            "include_raw_content": "markdown",
            "include_images": true,
            "include_image_descriptions": true,
            "include_favicon": true,
            "include_domains": ["tokio.rs", "*.rs"],
            "exclude_domains": ["pinterest.com"],
            "country": "united states",
            "auto_parameters": true,
            "exact_match": true
        })))
        .respond_with(ResponseTemplate::new(200).set_body_json(full_search_answer()))
        .expect(1)
        .mount(&tavily)
        .await;
    let result = call(
        &app,
        "web_search",
        json!({
            "query": " rust async runtimes ", "max_results": 3, "search_depth": "advanced",
            "topic": "general", "start_date": "2025-01-01", "end_date": "2025-06-30",
            "chunks_per_source": 2, "include_answer": "advanced", "include_raw_content": true,
            "include_images": true, "include_image_descriptions": true, "include_favicon": true,
            "include_domains": ["https://Tokio.rs/", "*.rs"], "exclude_domains": ["pinterest.com"],
            "country": "United States", "auto_parameters": true, "exact_match": true
        }),
    )
    .await;
    assert_eq!(result["isError"], false, "{result}");
    let output = &result["structuredContent"];
    assert_eq!(output["provider"], "tavily");
    assert_eq!(output["answer"], "Tokio is the most used runtime.");
    assert_eq!(
        output["images"],
        json!([
            { "url": "https://img.example/1.png" },
            { "url": "https://img.example/2.png", "description": "a crab" }
        ]),
        "images arrive as strings or objects"
    );
    let hit = &output["results"][0];
    assert_eq!(hit["published_date"], "2025-01-02");
    assert_eq!(hit["favicon"], "https://tokio.rs/favicon.ico");
    assert_eq!(hit["raw_content"], "# Tokio\nFull text.");
    assert_eq!(hit["images"][0]["description"], "logo");
    assert_eq!(output["credits"], 2.0);
    assert_eq!(output["request_id"], "req-tavily-1");
    assert_eq!(output["cached"], false);
    assert!(text(&result).contains("Answer: Tokio"), "{}", text(&result));
}

#[tokio::test]
async fn a_minimal_search_sends_only_the_deliberate_defaults() {
    let (tavily, app) = stack(|_| {}).await;
    Mock::given(path("/search"))
        .and(body_json(
            json!({ "query": "otters", "max_results": 5, "include_usage": true }),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "query": "otters", "results": [], "response_time": "0.4", "request_id": "r"
        })))
        .expect(1)
        .mount(&tavily)
        .await;
    let result = call(&app, "web_search", json!({ "query": "otters" })).await;
    assert_eq!(result["isError"], false, "{result}");
    assert_eq!(result["structuredContent"]["results"], json!([]));
}

#[tokio::test]
async fn each_upstream_error_status_becomes_its_tool_error() {
    let (tavily, app) = stack(|_| {}).await;
    /// Status, `retry-after`, body, expected code, phrase in the text, upstream attempts.
    type Case = (
        u16,
        Option<&'static str>,
        Value,
        &'static str,
        &'static str,
        usize,
    );
    let cases: &[Case] = &[
        (
            400,
            None,
            json!({ "detail": { "error": "Invalid topic. Must be general, news or finance." } }),
            "upstream_rejected",
            "Invalid topic. Must be general, news or finance.",
            1,
        ),
        (
            401,
            None,
            json!({ "detail": { "error": "Your API key is wrong or missing." } }),
            "upstream_unauthorized",
            "rejected searchgate's API key",
            1,
        ),
        (
            403,
            None,
            json!({}),
            "upstream_unauthorized",
            "rejected searchgate's API key",
            1,
        ),
        (
            429,
            Some("30"),
            json!({ "detail": { "error": "Your request has been blocked due to excessive requests." } }),
            "upstream_rate_limited",
            "Retry in 30 seconds",
            1,
        ),
        (
            432,
            None,
            json!({ "detail": { "error": "This request exceeds your plan's set usage limit." } }),
            "upstream_quota_exhausted",
            "credits are used up",
            1,
        ),
        (
            433,
            None,
            json!({ "detail": { "error": "This request exceeds the pay-as-you-go limit." } }),
            "upstream_quota_exhausted",
            "credits are used up",
            1,
        ),
        (
            500,
            None,
            json!({}),
            "upstream_unavailable",
            "Retry in a few seconds",
            2,
        ),
        (
            502,
            None,
            json!({}),
            "upstream_unavailable",
            "Retry in a few seconds",
            2,
        ),
    ];
    for (n, (status, retry_after, body, code, phrase, attempts)) in cases.iter().enumerate() {
        tavily.reset().await;
        let mut response = ResponseTemplate::new(*status).set_body_json(body);
        if let Some(secs) = retry_after {
            response = response.insert_header("retry-after", *secs);
        }
        Mock::given(path("/search"))
            .respond_with(response)
            .mount(&tavily)
            .await;
        let result = call(&app, "web_search", json!({ "query": format!("case {n}") })).await;
        assert_eq!(result["isError"], true, "HTTP {status}: {result}");
        assert_eq!(error_code(&result), *code, "HTTP {status}");
        assert!(
            text(&result).contains(phrase),
            "HTTP {status}: {}",
            text(&result)
        );
        let seen = tavily.received_requests().await.unwrap().len();
        assert_eq!(seen, *attempts, "HTTP {status}: upstream attempts");
    }
    let rows = app.stop().await.rows;
    assert!(
        rows.iter()
            .all(|r| r.outcome == "tool_error" && r.http_status == 200),
        "audited as tool errors, never as failures"
    );
}

#[tokio::test]
async fn an_oversized_answer_asks_the_model_for_less() {
    let (tavily, app) = stack(|_| {}).await;
    let huge = "x".repeat(9 * 1024 * 1024);
    Mock::given(path("/search"))
        .respond_with(ResponseTemplate::new(200).set_body_string(huge))
        .mount(&tavily)
        .await;
    let result = call(&app, "web_search", json!({ "query": "everything" })).await;
    assert_eq!(error_code(&result), "upstream_rejected", "{result}");
    assert!(
        text(&result).contains("ask for fewer results"),
        "{}",
        text(&result)
    );
}

#[tokio::test]
async fn a_short_retry_after_is_retried_once() {
    let (tavily, app) = stack(|_| {}).await;
    Mock::given(path("/search"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "1"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&tavily)
        .await;
    Mock::given(path("/search"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({ "query": "q", "results": [] })),
        )
        .mount(&tavily)
        .await;
    let result = call(&app, "web_search", json!({ "query": "q" })).await;
    assert_eq!(result["isError"], false, "the retry succeeded: {result}");
    assert_eq!(tavily.received_requests().await.unwrap().len(), 2);
}

#[tokio::test]
async fn a_hanging_backend_hits_the_deadline() {
    let (tavily, app) = stack(|s| s.search.deadlines.search_secs = 1).await;
    Mock::given(path("/search"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({ "results": [] }))
                .set_delay(std::time::Duration::from_secs(30)),
        )
        .mount(&tavily)
        .await;
    let result = call(&app, "web_search", json!({ "query": "slow" })).await;
    assert_eq!(error_code(&result), "upstream_timeout", "{result}");
    assert!(text(&result).contains("did not answer in time"));
    assert_eq!(
        tavily.received_requests().await.unwrap().len(),
        1,
        "the deadline covers the retries too"
    );
}

#[tokio::test]
async fn an_unreachable_backend_is_a_tool_error_not_a_crash() {
    let closed = free_port();
    let app = spawn_with(
        |s| {
            s.search.provider = vec![SearchProviderKind::Tavily];
            s.search.tavily.api_key = Some(Secret::new(KEY));
            s.search.tavily.base_url = format!("http://127.0.0.1:{closed}").parse().unwrap();
        },
        |b| b,
    )
    .await;
    let result = call(&app, "web_search", json!({ "query": "anyone there" })).await;
    assert_eq!(error_code(&result), "upstream_unavailable", "{result}");
    let health = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert!(health.status().is_success(), "searchgate stays up");
}

#[tokio::test]
async fn identical_searches_cost_one_upstream_request_and_hits_are_audited() {
    let (tavily, app) = stack(|_| {}).await;
    Mock::given(path("/search"))
        .respond_with(ResponseTemplate::new(200).set_body_json(full_search_answer()))
        .mount(&tavily)
        .await;
    let first = call(
        &app,
        "web_search",
        json!({ "query": "rust", "include_domains": ["a.com", "b.com"] }),
    )
    .await;
    let second = call(
        &app,
        "web_search",
        json!({ "query": "  rust ", "include_domains": ["b.com", "a.com"] }),
    )
    .await;
    assert_eq!(first["structuredContent"]["cached"], false);
    assert_eq!(
        second["structuredContent"]["cached"], true,
        "the same search, normalized"
    );
    assert_eq!(
        first["structuredContent"]["results"],
        second["structuredContent"]["results"]
    );
    assert_eq!(tavily.received_requests().await.unwrap().len(), 1);
    call(
        &app,
        "web_search",
        json!({ "query": "rust", "topic": "news" }),
    )
    .await;
    assert_eq!(
        tavily.received_requests().await.unwrap().len(),
        2,
        "different options are a different search"
    );
    let columns: Vec<_> = app
        .stop()
        .await
        .rows
        .into_iter()
        .map(|r| {
            (
                r.provider,
                r.cache_hit,
                r.upstream_attempts,
                r.upstream_request_id,
            )
        })
        .collect();
    assert_eq!(
        columns,
        vec![
            (
                Some("tavily".into()),
                Some(false),
                Some(1),
                Some("req-tavily-1".into())
            ),
            (
                Some("tavily".into()),
                Some(true),
                Some(0),
                Some("req-tavily-1".into())
            ),
            (
                Some("tavily".into()),
                Some(false),
                Some(1),
                Some("req-tavily-1".into())
            ),
        ]
    );
}

#[tokio::test]
async fn identical_searches_at_the_same_moment_share_one_upstream_request() {
    let (tavily, app) = stack(|_| {}).await;
    Mock::given(path("/search"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(full_search_answer())
                .set_delay(std::time::Duration::from_millis(300)),
        )
        .mount(&tavily)
        .await;
    let arguments = json!({ "query": "parallel agents" });
    let (a, b, c) = tokio::join!(
        call(&app, "web_search", arguments.clone()),
        call(&app, "web_search", arguments.clone()),
        call(&app, "web_search", arguments.clone()),
    );
    for result in [&a, &b, &c] {
        assert_eq!(result["isError"], false, "{result}");
    }
    assert_eq!(tavily.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_zero_ttl_turns_the_cache_off() {
    let (tavily, app) = stack(|s| s.search.cache_ttl_secs = 0).await;
    Mock::given(path("/search"))
        .respond_with(ResponseTemplate::new(200).set_body_json(full_search_answer()))
        .mount(&tavily)
        .await;
    for _ in 0..2 {
        call(&app, "web_search", json!({ "query": "rust" })).await;
    }
    assert_eq!(tavily.received_requests().await.unwrap().len(), 2);
}

#[tokio::test]
async fn the_rate_limit_says_when_to_retry_and_spares_the_backend() {
    let (tavily, app) = stack(|s| s.search.rate_limit_per_minute = 2).await;
    Mock::given(path("/search"))
        .respond_with(ResponseTemplate::new(200).set_body_json(full_search_answer()))
        .mount(&tavily)
        .await;
    for n in 0..2 {
        let ok = call(&app, "web_search", json!({ "query": format!("q{n}") })).await;
        assert_eq!(ok["isError"], false);
    }
    let refused = call(&app, "web_search", json!({ "query": "q2" })).await;
    assert_eq!(error_code(&refused), "rate_limited", "{refused}");
    let secs = refused["_meta"]["searchgate/error"]["retry_after_secs"]
        .as_u64()
        .expect("the retry time in seconds");
    assert!(
        (1..=30).contains(&secs),
        "two a minute refill every 30 s: {secs}"
    );
    assert!(
        text(&refused).contains(&format!("Retry in {secs} seconds")),
        "{}",
        text(&refused)
    );
    let other_tool = call(&app, "web_map", json!({ "url": "https://docs.rs" })).await;
    assert_eq!(
        error_code(&other_tool),
        "rate_limited",
        "the allowance covers every tool"
    );
    assert_eq!(tavily.received_requests().await.unwrap().len(), 2);
}

#[tokio::test]
async fn extract_crawl_and_map_send_their_options_and_map_the_answers() {
    let (tavily, app) = stack(|_| {}).await;
    let auth = format!("Bearer {KEY}");
    Mock::given(path("/extract"))
        .and(header("authorization", &*auth))
        .and(body_json(json!({
            "urls": ["https://docs.rs/tokio", "https://bad.example/x"],
            "include_usage": true,
            "extract_depth": "advanced",
            "format": "text",
            "include_images": true,
            "include_favicon": true,
            "query": "spawn tasks",
            "chunks_per_source": 2,
            "timeout": 20
        })))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "results": [{ "url": "https://docs.rs/tokio", "raw_content": "Tokio docs", "title": "tokio",
                          "images": ["https://docs.rs/i.png"], "favicon": "https://docs.rs/f.ico" }],
            "failed_results": [{ "url": "https://bad.example/x", "error": "404" }],
            "response_time": 0.9, "usage": { "credits": 1 }, "request_id": "ext-1"
        })))
        .expect(1)
        .mount(&tavily)
        .await;
    Mock::given(path("/crawl"))
        .and(header("authorization", &*auth))
        .and(body_json(json!({
            "url": "https://docs.rs",
            "include_usage": true,
            "max_depth": 2,
            "max_breadth": 10,
            "limit": 5,
            "instructions": "pages about runtimes",
            "select_paths": ["/tokio/.*"],
            "exclude_domains": ["^ads\\."],
            "allow_external": false,
            "extract_depth": "basic",
            "format": "markdown",
            "chunks_per_source": 3,
            "timeout": 60
        })))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "base_url": "https://docs.rs",
            "results": [{ "url": "https://docs.rs/tokio", "raw_content": "Tokio", "images": [] }],
            "response_time": 3.2, "usage": { "credits": 2 }, "request_id": "crawl-1"
        })))
        .expect(1)
        .mount(&tavily)
        .await;
    Mock::given(path("/map"))
        .and(header("authorization", &*auth))
        .and(body_json(json!({
            "url": "https://docs.rs",
            "include_usage": true,
            "limit": 2,
            "select_domains": ["^docs\\.rs$"]
        })))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "base_url": "docs.rs",
            "results": ["https://docs.rs/a", "https://docs.rs/b", "https://docs.rs/c"],
            "response_time": 1.0, "request_id": "map-1"
        })))
        .expect(1)
        .mount(&tavily)
        .await;

    let tools = app
        .rpc(json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/list" }))
        .await
        .1;
    let names: Vec<&str> = tools["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["web_search", "web_extract", "web_crawl", "web_map"]);

    let extract = call(
        &app,
        "web_extract",
        json!({
            "urls": ["https://docs.rs/tokio", "https://bad.example/x", "https://docs.rs/tokio"],
            "extract_depth": "advanced", "format": "text", "include_images": true,
            "include_favicon": true, "query": "spawn tasks", "chunks_per_source": 2, "timeout": 20
        }),
    )
    .await;
    assert_eq!(extract["isError"], false, "{extract}");
    let output = &extract["structuredContent"];
    assert_eq!(output["results"][0]["content"], "Tokio docs");
    assert_eq!(
        output["results"][0]["images"][0]["url"],
        "https://docs.rs/i.png"
    );
    assert_eq!(
        output["failed_results"][0],
        json!({ "url": "https://bad.example/x", "error": "404" })
    );
    assert_eq!(output["request_id"], "ext-1");

    let crawl = call(
        &app,
        "web_crawl",
        json!({
            "url": "https://docs.rs", "max_depth": 2, "max_breadth": 10, "limit": 5,
            "instructions": "pages about runtimes", "select_paths": ["/tokio/.*"],
            "exclude_domains": ["^ads\\."], "allow_external": false, "extract_depth": "basic",
            "format": "markdown", "chunks_per_source": 3, "timeout": 60
        }),
    )
    .await;
    assert_eq!(crawl["isError"], false, "{crawl}");
    assert_eq!(
        crawl["structuredContent"]["results"][0]["url"],
        "https://docs.rs/tokio"
    );
    assert_eq!(crawl["structuredContent"]["credits"], 2.0);

    let map = call(
        &app,
        "web_map",
        json!({ "url": "https://docs.rs", "limit": 2, "select_domains": ["^docs\\.rs$"] }),
    )
    .await;
    assert_eq!(map["isError"], false, "{map}");
    assert_eq!(
        map["structuredContent"]["urls"],
        json!(["https://docs.rs/a", "https://docs.rs/b"]),
        "never more URLs than the limit"
    );

    let bad = call(
        &app,
        "web_crawl",
        json!({ "url": "https://docs.rs", "max_depth": 9 }),
    )
    .await;
    assert_eq!(error_code(&bad), "invalid_argument");
    assert_eq!(bad["_meta"]["searchgate/error"]["field"], "max_depth");
}

#[tokio::test]
async fn a_crawl_with_a_progress_token_streams_progress_then_the_result() {
    let (tavily, app) = stack(|_| {}).await;
    Mock::given(path("/crawl"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "base_url": "https://docs.rs",
            "results": [{ "url": "https://docs.rs/a", "raw_content": "A" }]
        })))
        .mount(&tavily)
        .await;
    let mut message = tool_call(7, "web_crawl", json!({ "url": "https://docs.rs" }));
    message["params"]["_meta"] = json!({ "progressToken": "crawl-7" });
    let response = app.mcp_post().json(&message).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("text/event-stream"),
        "progress needs a stream: {content_type}"
    );
    let body = response.text().await.unwrap();
    let messages: Vec<Value> = body
        .lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .filter_map(|data| serde_json::from_str(data.trim()).ok())
        .collect();
    let progress: Vec<&Value> = messages
        .iter()
        .filter(|m| m["method"] == "notifications/progress")
        .collect();
    assert!(progress.len() >= 2, "start and finish are reported: {body}");
    assert!(
        progress
            .iter()
            .all(|p| p["params"]["progressToken"] == "crawl-7")
    );
    let values: Vec<f64> = progress
        .iter()
        .map(|p| p["params"]["progress"].as_f64().unwrap())
        .collect();
    assert!(
        values.windows(2).all(|w| w[0] < w[1]),
        "progress increases: {values:?}"
    );
    assert!(
        progress.last().unwrap()["params"]["message"]
            .as_str()
            .unwrap()
            .contains("1 pages"),
        "{body}"
    );
    let last = messages.last().unwrap();
    assert_eq!(last["id"], 7, "the result comes last: {body}");
    assert_eq!(
        last["result"]["structuredContent"]["results"][0]["url"],
        "https://docs.rs/a"
    );

    let plain = call(&app, "web_map", json!({ "url": "https://docs.rs" })).await;
    assert!(
        plain.is_object(),
        "without a token the answer is plain JSON"
    );
}

#[tokio::test]
async fn progress_also_streams_on_the_stateless_2026_07_28_wire() {
    let (tavily, app) = stack(|_| {}).await;
    Mock::given(path("/map"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "base_url": "https://docs.rs", "results": ["https://docs.rs/a"]
        })))
        .mount(&tavily)
        .await;
    let mut message = tool_call("m-1", "web_map", json!({ "url": "https://docs.rs" }));
    message["params"]["_meta"] = json!({
        "progressToken": 42,
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {}
    });
    let response = app
        .mcp_post_version(Some("2026-07-28"))
        .header("mcp-method", "tools/call")
        .header("mcp-name", "web_map")
        .json(&message)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body = response.text().await.unwrap();
    let progress = body
        .lines()
        .filter(|line| {
            line.contains("notifications/progress") && line.contains("\"progressToken\":42")
        })
        .count();
    assert!(progress >= 2, "{body}");
    assert!(
        body.contains("https://docs.rs/a"),
        "the result follows: {body}"
    );
}

#[tokio::test]
async fn the_real_binary_sends_its_own_key_and_never_the_clients_token() {
    let tavily = MockServer::start().await;
    Mock::given(path("/search"))
        .respond_with(ResponseTemplate::new(200).set_body_json(full_search_answer()))
        .mount(&tavily)
        .await;
    let port = free_port();
    let resource = format!("http://127.0.0.1:{port}/web-search/mcp");
    let idp = Idp::start(&resource, &resource, &[]).await;
    let dir = tempfile::tempdir().unwrap();
    let (port_text, issuer, base_url) = (port.to_string(), idp.issuer(), tavily.uri());
    let mut child = spawn_binary(
        dir.path(),
        port,
        &[
            ("PORT", &port_text),
            ("SEARCHGATE_AUTH__PROVIDER", "oidc"),
            ("SEARCHGATE_AUTH__OIDC__ISSUER", &issuer),
            ("TAVILY_API_KEY", "tvly-binary-key"),
            ("SEARCHGATE_SEARCH__TAVILY__BASE_URL", &base_url),
        ],
    )
    .await;
    let token = idp
        .client_token("searchgate-cc", &resource, Some("web-search:read"))
        .await;
    let response = reqwest::Client::new()
        .post(&resource)
        .bearer_auth(&token)
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .json(&tool_call(
            1,
            "web_search",
            json!({ "query": "rust async runtimes" }),
        ))
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["result"]["structuredContent"]["provider"], "tavily",
        "{body}"
    );
    let requests = tavily.received_requests().await.unwrap();
    assert_eq!(requests.len(), 1);
    for request in &requests {
        assert_eq!(
            request
                .headers
                .get("authorization")
                .map(|v| v.to_str().unwrap()),
            Some("Bearer tvly-binary-key"),
            "searchgate's key, nothing else"
        );
        for (name, value) in &request.headers {
            assert!(
                !value
                    .as_bytes()
                    .windows(token.len())
                    .any(|w| w == token.as_bytes()),
                "the client's token leaked in header {name}"
            );
        }
        assert!(
            !String::from_utf8_lossy(&request.body).contains(&token),
            "the client's token leaked in the body"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn check_config_verifies_the_key_with_usage() {
    let tavily = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/usage"))
        .and(header("authorization", "Bearer tvly-good"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "key": { "usage": 42, "limit": 1000 }, "account": { "current_plan": "Researcher" }
        })))
        .mount(&tavily)
        .await;
    Mock::given(path("/usage"))
        .respond_with(
            ResponseTemplate::new(401).set_body_json(
                json!({ "detail": { "error": "Your API key is wrong or missing." } }),
            ),
        )
        .mount(&tavily)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let base_url = tavily.uri();
    let check = |key: &str| {
        let output = searchgate(
            dir.path(),
            &[
                ("TAVILY_API_KEY", key),
                ("SEARCHGATE_SEARCH__TAVILY__BASE_URL", &base_url),
            ],
        )
        .arg("check-config")
        .output()
        .unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
        )
    };
    let (code, text) = check("tvly-good");
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains(
            "# ok      tavily backend: accepted; this key has used 42 credits (limit: 1000)"
        ),
        "{text}"
    );
    let (code, text) = check("tvly-bad");
    assert_eq!(code, Some(1), "a refused key is a problem: {text}");
    assert!(
        text.contains("# PROBLEM tavily backend: Tavily refused the API key"),
        "{text}"
    );
    assert!(!text.contains("tvly-bad"), "the key is never printed");
}
