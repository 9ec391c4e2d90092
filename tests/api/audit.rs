//! Contract: every MCP request becomes exactly one audit row, written by the batched writer
//! before the server finishes shutting down, with nothing dropped under concurrency; a value
//! no column can hold is stored cut, never stopping the trail.

use std::collections::HashSet;

use futures::{StreamExt, future::join_all};
use reqwest::StatusCode;
use serde_json::json;
use sqlx::{Connection, Row};

use crate::{
    embedded::{OAuth, spawn_embedded},
    helpers::{AuditTable, free_port, spawn_app, spawn_binary, spawn_with, tool_call},
    registration::admin_token,
    stores::{PgSchema, postgres_url},
};

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

/// `(method, client_id)` of every audit row in the database at `url`, oldest first.
pub async fn audit_methods_and_clients(url: &str) -> Vec<(Option<String>, Option<String>)> {
    let query = "SELECT method, client_id FROM audit_events ORDER BY id";
    let read = |row: &dyn Fn(&str) -> Option<String>| (row("method"), row("client_id"));
    if url.starts_with("sqlite:") {
        let mut db = sqlx::SqliteConnection::connect(url).await.unwrap();
        let rows = sqlx::query(query).fetch_all(&mut db).await.unwrap();
        rows.iter().map(|r| read(&|c| r.get(c))).collect()
    } else {
        let mut db = sqlx::PgConnection::connect(url).await.unwrap();
        let rows = sqlx::query(query).fetch_all(&mut db).await.unwrap();
        rows.iter().map(|r| read(&|c| r.get(c))).collect()
    }
}

#[tokio::test]
async fn a_4000_character_client_id_is_answered_stored_cut_and_the_trail_keeps_flowing() {
    let mut databases = vec![None];
    match postgres_url() {
        Some(base) => databases.push(Some(PgSchema::new(&base).await)),
        None => eprintln!(
            "the PostgreSQL half of this test is skipped: SEARCHGATE_TEST_POSTGRES_URL is not set"
        ),
    }
    for schema in databases {
        let name = if schema.is_some() {
            "postgres"
        } else {
            "sqlite"
        };
        // A SQLite file of the test's own, so it can be read after the server is gone.
        let dir = tempfile::tempdir().unwrap();
        let url = match &schema {
            Some(schema) => schema.url.clone(),
            None => format!("sqlite://{}", dir.path().join("trail.db").display()),
        };
        let database = url.clone();
        let app = spawn_embedded(move |s| s.database.url = database).await;
        let admin = admin_token(&OAuth::new(&app)).await;
        // Random letters and digits: PostgreSQL compresses a repeated character below its
        // b-tree limit, but not these.
        let long: String = (0..4_000).map(|_| fastrand::alphanumeric()).collect();
        let denied = app.deny_client(&admin, &long).await;
        assert_eq!(denied, StatusCode::NOT_FOUND, "{name}: answered");
        let answers: Vec<StatusCode> = futures::stream::iter(0..1_000)
            .map(|n| {
                app.http
                    .get(app.url(&format!("/api/v1/clients/sg_nobody_{n}")))
                    .bearer_auth(&admin)
                    .send()
            })
            .buffer_unordered(20)
            .map(|response| response.unwrap().status())
            .collect()
            .await;
        assert!(
            answers.iter().all(|s| *s == StatusCode::NOT_FOUND),
            "{name}: every later call is answered"
        );
        app.stop().await;
        let rows = audit_methods_and_clients(&url).await;
        let deny: Vec<_> = rows
            .iter()
            .filter(|(method, _)| method.as_deref() == Some("admin/clients.deny"))
            .collect();
        assert_eq!(deny.len(), 1, "{name}: the long id's row is stored");
        let stored = deny[0].1.as_deref().unwrap();
        assert_eq!(stored.chars().count(), 512, "{name}: cut to 512 characters");
        assert!(
            stored.ends_with('…') && long.starts_with(stored.trim_end_matches('…')),
            "{name}: its start, marked as cut: {stored}"
        );
        let later = rows
            .iter()
            .filter(|(method, _)| method.as_deref() == Some("admin/clients.get"))
            .count();
        assert_eq!(later, 1_000, "{name}: every call after it lands");
    }
}
