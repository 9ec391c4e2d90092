//! Contract: bad input gets a precise answer and never a 500 — argument problems are tool errors
//! naming the field, protocol problems are JSON-RPC errors, transport problems are 4xx.

use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app, tool_call};

async fn tool_error(app: &TestApp, arguments: Value) -> (String, Value) {
    let result = app.web_search(arguments).await;
    assert_eq!(
        result["isError"], true,
        "an argument problem is a tool error: {result}"
    );
    assert!(
        result.get("structuredContent").is_none(),
        "errors carry no structured content"
    );
    let text = result["content"][0]["text"]
        .as_str()
        .expect("an explanation")
        .to_owned();
    (text, result["_meta"]["searchgate/error"].clone())
}

#[tokio::test]
async fn argument_errors_are_tool_errors_naming_the_field() {
    let app = spawn_app().await;
    let long = "a".repeat(401);
    let cases = [
        (json!({ "query": "" }), "query", "must not be empty"),
        (json!({ "query": "   " }), "query", "must not be empty"),
        (
            json!({ "query": long }),
            "query",
            "must be at most 400 characters after trimming; got 401",
        ),
        (
            json!({ "query": "q", "max_results": -1 }),
            "max_results",
            "must be between 0 and 20; got -1",
        ),
        (
            json!({ "query": "q", "max_results": 21 }),
            "max_results",
            "must be between 0 and 20; got 21",
        ),
        (
            json!({ "query": "q", "search_depth": "deep" }),
            "search_depth",
            "is not one of: basic, advanced, fast, ultra-fast",
        ),
        (
            json!({ "max_results": 3 }),
            "query",
            "missing field `query`",
        ),
    ];
    for (arguments, field, phrase) in cases {
        let (text, meta) = tool_error(&app, arguments.clone()).await;
        assert!(
            text.starts_with(&format!("Invalid argument `{field}`")),
            "{arguments}: {text}"
        );
        assert!(text.contains(phrase), "{arguments}: {text}");
        assert_eq!(
            meta,
            json!({ "code": "invalid_argument", "field": field }),
            "{arguments}"
        );
    }
    let rows = app.stop().await.rows;
    assert!(
        rows.iter()
            .all(|r| r.outcome == "tool_error"
                && r.error_code.as_deref() == Some("invalid_argument"))
    );
}

#[tokio::test]
async fn backend_failures_are_tool_errors_that_say_when_to_retry() {
    let app = spawn_app().await;
    let (text, meta) = tool_error(&app, json!({ "query": "mock-error:rate_limited" })).await;
    assert_eq!(
        meta,
        json!({ "code": "upstream_rate_limited", "retry_after_secs": 30 })
    );
    assert!(text.contains("Retry in 30 seconds"), "{text}");
    let (_, meta) = tool_error(&app, json!({ "query": "mock-error:unauthorized" })).await;
    assert_eq!(meta["code"], "upstream_unauthorized");
    app.stop().await;
}

#[tokio::test]
async fn an_unknown_tool_is_a_json_rpc_error() {
    let app = spawn_app().await;
    let (status, body) = app.rpc(tool_call(7, "web_sarch", json!({}))).await;
    assert_eq!(status, 200);
    assert_eq!(body["id"], 7);
    assert_eq!(body["error"]["code"], -32602);
    assert_eq!(body["error"]["message"], "Unknown tool: web_sarch");
    let rows = app.stop().await.rows;
    assert_eq!(rows[0].outcome, "protocol_error");
    assert_eq!(rows[0].tool.as_deref(), Some("web_sarch"));
}

#[tokio::test]
async fn malformed_json_is_a_400_parse_error() {
    let app = spawn_app().await;
    let response = app
        .mcp_post()
        .body(r#"{"jsonrpc":"2.0","id":1,"method":"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], -32700);
    app.stop().await;
}

#[tokio::test]
async fn a_batch_is_a_400_invalid_request() {
    let app = spawn_app().await;
    let response = app
        .mcp_post()
        .body(r#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], -32600);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("batches")
    );
    app.stop().await;
}

#[tokio::test]
async fn a_body_over_one_mebibyte_is_413() {
    let app = spawn_app().await;
    let padding = "x".repeat(1024 * 1024);
    let body =
        json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": { "pad": padding } });
    let response = app.mcp_post().json(&body).send().await.unwrap();
    assert_eq!(response.status(), 413);
    let rows = app.stop().await.rows;
    assert_eq!(
        (rows[0].outcome.as_str(), rows[0].http_status),
        ("rejected", 413)
    );
}

#[tokio::test]
async fn a_foreign_host_is_403_before_anything_else() {
    let app = spawn_app().await;
    let response = app
        .mcp_post()
        .header("host", "evil.example.com")
        .json(&json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/list" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let response = app
        .mcp_post()
        .header("origin", "http://evil.example.com")
        .json(&json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/list" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403, "a foreign Origin is refused too");
    let local = app
        .mcp_post()
        .header("host", format!("localhost:{}", app.addr.port()))
        .header("origin", "http://localhost:6274")
        .json(&json!({ "jsonrpc": "2.0", "id": 1, "method": "ping" }))
        .send()
        .await
        .unwrap();
    assert_eq!(local.status(), 200, "loopback names and origins are served");
    assert_eq!(
        local.headers()["access-control-allow-origin"],
        "http://localhost:6274"
    );
    app.stop().await;
}

#[tokio::test]
async fn missing_accept_types_are_406() {
    let app = spawn_app().await;
    for accept in [None, Some("application/json"), Some("text/event-stream")] {
        let mut request = app
            .http
            .post(&app.mcp_url)
            .header("content-type", "application/json")
            .header("mcp-protocol-version", "2025-11-25");
        if let Some(accept) = accept {
            request = request.header("accept", accept);
        }
        let response = request
            .json(&json!({ "jsonrpc": "2.0", "id": 1, "method": "ping" }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 406, "Accept {accept:?}");
    }
    app.stop().await;
}

#[tokio::test]
async fn get_and_delete_are_405_because_there_are_no_sessions() {
    let app = spawn_app().await;
    let get = app
        .http
        .get(&app.mcp_url)
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), 405);
    let delete = app.http.delete(&app.mcp_url).send().await.unwrap();
    assert_eq!(delete.status(), 405);
    app.stop().await;
}

#[tokio::test]
async fn an_unsupported_protocol_version_header_is_400() {
    let app = spawn_app().await;
    let response = app
        .mcp_post_version(Some("1999-01-01"))
        .json(&json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/list" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    app.stop().await;
}

#[tokio::test]
async fn cors_preflight_is_answered_for_allowed_origins_only() {
    let app = spawn_app().await;
    let preflight = |origin: &'static str| {
        app.http
            .request(reqwest::Method::OPTIONS, &app.mcp_url)
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization, content-type, mcp-protocol-version",
            )
            .send()
    };
    let allowed = preflight("http://127.0.0.1:6274").await.unwrap();
    assert_eq!(allowed.status(), 200);
    let expose = allowed.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        expose.contains("www-authenticate"),
        "browsers must see challenges: {expose}"
    );
    assert_eq!(
        preflight("https://evil.example.com")
            .await
            .unwrap()
            .status(),
        403
    );
    let rows = app.stop().await.rows;
    assert!(
        rows.is_empty(),
        "preflights are not MCP requests and are not audited: {rows:?}"
    );
}
