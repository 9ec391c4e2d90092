//! Contract: every body the MCP endpoint cannot serve gets a `400` with a JSON-RPC error —
//! `-32700` for what is not JSON, `-32600` for JSON that is not a valid request, `-32602` for
//! bad parameters — and never rmcp's `415 text/plain`; names over 128 characters are refused
//! before dispatch, so nothing downstream (rmcp's logs included) sees them.

use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app};

/// POSTs raw `body` bytes to the MCP endpoint; the status, content type and JSON body.
async fn post(app: &TestApp, body: Vec<u8>) -> (u16, String, Value) {
    let response = app.mcp_post().body(body).send().await.expect("sent");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let text = response.text().await.expect("a body");
    (
        status,
        content_type,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn call(arguments: &str) -> Vec<u8> {
    format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"web_search","arguments":{arguments}}}}}"#
    )
    .into_bytes()
}

fn ping_with_id(id: &str) -> Vec<u8> {
    format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"ping"}}"#).into_bytes()
}

#[tokio::test]
async fn malformed_bodies_get_a_400_json_rpc_error_never_415() {
    let app = spawn_app().await;
    let mut bad_utf8 = call(r#"{"query":"caf__"}"#);
    let at = bad_utf8.iter().position(|b| *b == b'_').expect("a marker");
    bad_utf8[at..at + 2].copy_from_slice(&[0xc3, 0x28]);
    let deep = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"ping","params":{{"x":{}{}}}}}"#,
        "[".repeat(5000),
        "]".repeat(5000)
    );
    let cases = [
        (bad_utf8, -32700, "invalid UTF-8 inside arguments"),
        (call(r#"{"query":"\ud800"}"#), -32700, "a lone surrogate"),
        (call(r#"{"query":"q","max_results":1e309}"#), -32602, "max_results 1e309"),
        (deep.into_bytes(), -32600, "nesting 5,000 levels deep"),
        (ping_with_id("null"), -32600, "id null"),
        (ping_with_id("{}"), -32600, "id an object"),
        (ping_with_id("147573952589676412928"), -32600, "id 2^67"),
        (
            ping_with_id("147573952589676412928,\"id\":1"),
            -32600,
            "an id written twice, the first 2^67 (rmcp reads the text, not the last value)",
        ),
        (
            format!(r#"{{"jsonrpc":"2.0","id":1,"method":"{}"}}"#, "m".repeat(129)).into_bytes(),
            -32600,
            "a method of 129 characters",
        ),
        (
            format!(
                r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"{}","arguments":{{}}}}}}"#,
                "t".repeat(129)
            )
            .into_bytes(),
            -32602,
            "a tool name of 129 characters",
        ),
    ];
    for (body, code, why) in cases {
        let (status, content_type, answer) = post(&app, body).await;
        assert_eq!(status, 400, "{why}: {answer}");
        assert!(
            content_type.starts_with("application/json"),
            "{why}: {content_type}"
        );
        assert_eq!(answer["jsonrpc"], "2.0", "{why}: {answer}");
        assert_eq!(answer["error"]["code"], code, "{why}: {answer}");
    }
    let (status, _, answer) = post(&app, ping_with_id("\"ok\"")).await;
    assert_eq!(
        (status, &answer["result"]),
        (200, &json!({})),
        "a good body is still served"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_500_kb_name_is_refused_before_dispatch_and_never_echoed() {
    let app = spawn_app().await;
    let huge = "x".repeat(500 * 1024);
    for (body, code) in [
        (json!({ "jsonrpc": "2.0", "id": 1, "method": huge }), -32600),
        (
            json!({ "jsonrpc": "2.0", "id": 2, "method": "tools/call",
                    "params": { "name": huge, "arguments": {} } }),
            -32602,
        ),
    ] {
        let (status, _, answer) = post(&app, body.to_string().into_bytes()).await;
        assert_eq!(
            status, 400,
            "refused before rmcp, which would log the name at WARN"
        );
        assert_eq!(answer["error"]["code"], code);
        assert!(
            answer.to_string().len() < 1024,
            "the answer does not echo the name"
        );
    }
    let rows = app.stop().await.rows;
    assert!(
        rows.iter()
            .all(|r| r.tool.as_deref().is_none_or(|t| t.len() <= 128)
                && r.method.as_deref().is_none_or(|m| m.len() <= 128)),
        "nothing long reaches the audit trail"
    );
}

#[tokio::test]
async fn an_answer_that_leaves_the_body_unread_says_the_connection_closes() {
    // A 401 comes before the body is read; hyper then closes the connection, so a client must
    // not send its next request on it.
    let app = crate::embedded::spawn_embedded(|_| {}).await;
    let call = crate::helpers::tool_call(1, "web_search", json!({ "query": "q" }));
    let refused = app.mcp_post().json(&call).send().await.unwrap();
    assert_eq!(refused.status(), 401);
    assert_eq!(
        refused
            .headers()
            .get("connection")
            .map(|v| v.to_str().unwrap()),
        Some("close")
    );
    // A body read to its end keeps the connection open for the next request.
    let open = spawn_app().await;
    let served = open.mcp_post().json(&call).send().await.unwrap();
    assert_eq!(served.status(), 200);
    assert!(
        served.headers().get("connection").is_none(),
        "{:?}",
        served.headers()
    );
}
