//! Contract: every MCP request becomes exactly one audit row, written by the batched writer
//! before the server finishes shutting down, with nothing dropped under concurrency.

use std::collections::HashSet;

use futures::future::join_all;
use serde_json::json;

use crate::helpers::{AuditTable, free_port, spawn_app, spawn_binary, spawn_with, tool_call};

#[tokio::test]
async fn concurrent_calls_each_leave_exactly_one_row() {
    // 5,000 calls from 50 tasks through a small queue, so requests wait for the writer
    // (backpressure) rather than lose events. One anonymous caller: no rate limit, no cache.
    let app = spawn_with(
        |s| {
            s.search.rate_limit_per_minute = 0;
            s.search.cache_ttl_secs = 0;
            s.audit.queue_capacity = 64;
            s.audit.batch_size = 32;
        },
        |b| b,
    )
    .await;
    let calls = (0..50).map(|task| {
        let app = &app;
        async move {
            for n in 0..100 {
                app.web_search(json!({ "query": format!("task {task} call {n}") }))
                    .await;
            }
        }
    });
    join_all(calls).await;
    let rows = app.stop().await.rows;
    assert_eq!(rows.len(), 5000, "one row per request, none dropped");
    let ids: HashSet<_> = rows.iter().map(|r| r.request_id.as_str()).collect();
    assert_eq!(ids.len(), 5000, "every row has its own request id");
    assert!(
        rows.iter()
            .all(|r| r.method.as_deref() == Some("tools/call")
                && r.tool.as_deref() == Some("web_search")
                && r.outcome == "success"
                && r.http_status == 200
                && r.subject.is_none())
    );
}

#[tokio::test]
async fn the_row_carries_the_request_id_the_client_saw() {
    let app = spawn_app().await;
    let response = app
        .mcp_post()
        .header("x-request-id", "trace-42")
        .json(&json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/list" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "trace-42");
    let generated = app
        .mcp_post()
        .json(&json!({ "jsonrpc": "2.0", "id": 2, "method": "ping" }))
        .send()
        .await
        .unwrap();
    let generated_id = generated.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let rows = app.stop().await.rows;
    assert_eq!(rows[0].request_id, "trace-42");
    assert_eq!(rows[0].method.as_deref(), Some("tools/list"));
    assert_eq!(
        rows[1].request_id, generated_id,
        "a generated id is echoed and audited"
    );
}

#[tokio::test]
async fn sigterm_flushes_every_queued_event_of_the_real_binary() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let port_text = port.to_string();
    let mut child = spawn_binary(
        dir.path(),
        port,
        &[("PORT", &port_text), ("SEARCHGATE_AUTH__PROVIDER", "none")],
    )
    .await;
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/web-search/mcp");
    const CALLS: usize = 25;
    for n in 0..CALLS {
        let response = client
            .post(&url)
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json")
            .json(&tool_call(
                n,
                "web_search",
                json!({ "query": format!("q{n}") }),
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(exit.success(), "a graceful shutdown exits 0, got {exit}");
    let table = AuditTable::read(&dir.path().join("searchgate.db")).await;
    assert_eq!(
        table.rows.len(),
        CALLS,
        "exactly one row per tool call, health probes excluded"
    );
}
