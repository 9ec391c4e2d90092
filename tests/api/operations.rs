//! What operators use: the audit API (filters, pages, export, statistics), retention, the
//! audit CLI, Prometheus metrics and the browsable API documentation (in a real browser).

use std::{
    collections::HashSet,
    io::{BufRead, BufReader},
    process::Command,
    time::Duration,
};

use reqwest::StatusCode;
use searchgate::{
    config::AuthProviderKind,
    domain::audit::{AuditError, AuditLog, AuditPage, AuditQuery, BoundedEvent},
};
use serde_json::{Value, json};

use crate::{
    embedded::{OAuth, VERIFIER, spawn_embedded, value_of},
    helpers::{TestApp, free_port, searchgate, spawn_app, spawn_binary, spawn_with, tool_call},
};

/// A token for `scope` from a freshly registered client of the embedded server.
async fn token(oauth: &OAuth<'_>, scope: &str) -> (String, String) {
    let client_id = oauth.public_client().await;
    let query = oauth
        .consent(&oauth.params(&client_id, &[("scope", scope)]), "approve")
        .await;
    let (status, body) = oauth
        .exchange(&client_id, &value_of(&query, "code").unwrap(), VERIFIER)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    (body["access_token"].as_str().unwrap().to_owned(), client_id)
}

async fn search(app: &TestApp, token: &str, query: &str) -> StatusCode {
    let mut request = app
        .mcp_post()
        .json(&tool_call(1, "web_search", json!({ "query": query })));
    if !token.is_empty() {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap().status()
}

async fn admin_json(app: &TestApp, admin: &str, path: &str) -> Value {
    let response = app
        .http
        .get(app.url(path))
        .bearer_auth(admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    response.json().await.unwrap()
}

/// Every event matching `filter`, following `next_cursor` with pages of `limit`.
/// A `web_search` call to a binary on `port` with authentication off; it must be answered 200.
async fn unauthenticated_search(client: &reqwest::Client, port: &str, id: i64, query: &str) {
    let status = client
        .post(format!("http://127.0.0.1:{port}/web-search/mcp"))
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-11-25")
        .json(&tool_call(id, "web_search", json!({ "query": query })))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, StatusCode::OK);
}

async fn all_pages(app: &TestApp, admin: &str, filter: &str, limit: u32) -> Vec<Value> {
    let mut events = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = admin_json(
            app,
            admin,
            &format!("/api/v1/audit?{filter}&limit={limit}{cursor}"),
        )
        .await;
        events.extend(page["events"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => return events,
        }
    }
}

#[tokio::test]
async fn audit_filters_and_pages_return_every_row_exactly_once() {
    let app = spawn_embedded(|s| s.search.rate_limit_per_minute = 0).await;
    let oauth = OAuth::new(&app);
    let (alice, alice_client) = token(&oauth, "web-search:read").await;
    let (bob, _) = token(&oauth, "web-search:read").await;
    let (admin, _) = token(&oauth, "searchgate:admin").await;
    for n in 0..12 {
        assert_eq!(
            search(&app, &alice, &format!("alice {n}")).await,
            StatusCode::OK
        );
    }
    for n in 0..8 {
        assert_eq!(
            search(&app, &bob, &format!("bob {n}")).await,
            StatusCode::OK
        );
    }
    for _ in 0..3 {
        assert_eq!(search(&app, "", "nobody").await, StatusCode::UNAUTHORIZED);
    }
    // The writer is asynchronous: wait until the 23 MCP rows are stored (the 3 refusals may
    // come in a later batch than the 20 calls).
    let mut tool_rows = Vec::new();
    for _ in 0..100 {
        tool_rows = all_pages(&app, &admin, "tool=web_search", 5).await;
        let refusals = all_pages(&app, &admin, "outcome=unauthenticated", 50).await;
        if tool_rows.len() >= 20 && refusals.len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let ids: HashSet<i64> = tool_rows
        .iter()
        .map(|e| e["id"].as_i64().unwrap())
        .collect();
    assert_eq!(
        (tool_rows.len(), ids.len()),
        (20, 20),
        "every row once, in pages of 5"
    );
    assert!(
        tool_rows
            .windows(2)
            .all(|w| w[0]["id"].as_i64() < w[1]["id"].as_i64())
    );
    let mine = all_pages(
        &app,
        &admin,
        &format!("client_id={alice_client}&tool=web_search"),
        7,
    )
    .await;
    assert_eq!(mine.len(), 12);
    assert!(
        mine.iter()
            .all(|e| e["subject"] == "operator" && e["outcome"] == "success")
    );
    assert!(
        mine[0]["query_summary"]
            .as_str()
            .unwrap()
            .starts_with("alice")
    );
    assert_eq!(mine[0]["provider"], "mock");
    let refused = all_pages(&app, &admin, "outcome=unauthenticated", 2).await;
    assert_eq!(refused.len(), 3);
    assert!(refused.iter().all(|e| e["error_code"] == "missing_token"));
    let future = all_pages(
        &app,
        &admin,
        "tool=web_search&since=2999-01-01T00:00:00Z",
        5,
    )
    .await;
    assert!(future.is_empty());
    let past = all_pages(&app, &admin, "tool=web_search&until=1000", 5).await;
    assert!(past.is_empty());
    let bad = app
        .http
        .get(app.url("/api/v1/audit?since=yesterday"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    // A misspelt outcome is refused with the accepted values, not answered with an empty page.
    for path in [
        "/api/v1/audit?outcome=sucess",
        "/api/v1/audit/export?outcome=sucess",
    ] {
        let misspelt = app
            .http
            .get(app.url(path))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
        assert_eq!(misspelt.status(), StatusCode::BAD_REQUEST, "{path}");
        let body: Value = misspelt.json().await.unwrap();
        assert_eq!(body["error"], "invalid_request", "{path}");
        let description = body["error_description"].as_str().unwrap();
        assert!(
            description.contains("success") && description.contains("tool_error"),
            "{path} names the accepted outcomes: {description}"
        );
    }

    // The NDJSON export streams the same rows.
    let export = app
        .http
        .get(app.url(&format!(
            "/api/v1/audit/export?client_id={alice_client}&tool=web_search"
        )))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(export.status(), StatusCode::OK);
    assert!(
        export.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/x-ndjson")
    );
    let text = export.text().await.unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 12);
    assert_eq!(lines[0]["id"], mine[0]["id"]);

    let stats = admin_json(&app, &admin, "/api/v1/stats").await;
    let successes: u64 = stats["hours"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["tool"] == "web_search" && h["outcome"] == "success")
        .map(|h| h["count"].as_u64().unwrap())
        .sum();
    assert_eq!(successes, 20);

    // Tool tokens cannot read the audit trail; every admin read is audited itself.
    let forbidden = app
        .http
        .get(app.url("/api/v1/audit"))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(forbidden.status(), StatusCode::FORBIDDEN);
    let rows = app.stop().await.rows;
    assert!(
        rows.iter()
            .any(|r| r.method.as_deref() == Some("admin/audit.export"))
    );
    assert!(
        rows.iter()
            .any(|r| r.method.as_deref() == Some("admin/stats"))
    );
    assert!(
        rows.iter()
            .any(|r| r.method.as_deref() == Some("admin/denied")
                && r.http_status == 403
                && r.error_code.as_deref() == Some("admin_scope_missing")),
        "refused admin calls are audited"
    );
}

#[tokio::test]
async fn metrics_count_requests_tool_calls_and_the_token_cache() {
    let app = spawn_embedded(|_| {}).await;
    let oauth = OAuth::new(&app);
    let (reader, _) = token(&oauth, "web-search:read").await;
    for n in 0..3 {
        assert_eq!(
            search(&app, &reader, &format!("metrics {n}")).await,
            StatusCode::OK
        );
    }
    assert_eq!(search(&app, &reader, "metrics 0").await, StatusCode::OK);
    let response = app.http.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.unwrap();
    for expected in [
        "searchgate_http_requests_total{route=\"mcp\",outcome=\"2xx\"} 4",
        "searchgate_tool_calls_total{provider=\"mock\",tool=\"web_search\",outcome=\"ok\"} 3",
        "searchgate_tool_calls_total{provider=\"mock\",tool=\"web_search\",outcome=\"cache_hit\"} 1",
        "searchgate_http_request_duration_seconds_bucket",
        "searchgate_token_cache_hits_total 3",
        "searchgate_token_cache_misses_total 1",
        "searchgate_audit_queue_depth",
        "searchgate_jwks_refreshes_total",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
}

#[tokio::test]
async fn the_audit_cli_queries_and_tails_the_trail() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port().to_string();
    let env = [
        ("PORT", port.as_str()),
        ("SEARCHGATE_AUTH__PROVIDER", "none"),
        ("SEARCHGATE_SEARCH__RATE_LIMIT_PER_MINUTE", "0"),
    ];
    let mut server = spawn_binary(dir.path(), port.parse().unwrap(), &env).await;
    let client = reqwest::Client::new();
    for n in 0..5 {
        unauthenticated_search(&client, &port, n, &format!("cli {n}")).await;
    }
    // SIGTERM flushes the queue.
    Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    server.wait().unwrap();
    let run = |args: &[&str]| {
        let output = searchgate(dir.path(), &env).args(args).output().unwrap();
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .collect::<Vec<_>>()
    };
    let all = run(&["audit", "query", "--tool", "web_search"]);
    assert_eq!(all.len(), 5);
    assert_eq!(all[4]["query_summary"], "cli 4");
    let last = run(&["audit", "tail", "-n", "2", "--tool", "web_search"]);
    assert_eq!(last.len(), 2);
    assert_eq!(last[1]["query_summary"], "cli 4");
    // `-n 0 --follow` prints only what comes after it started: not the five above, but the
    // events a server writes while it follows.
    let mut follower = searchgate(dir.path(), &env)
        .args(["audit", "tail", "-n", "0", "--follow"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (line_sender, mut followed) = tokio::sync::mpsc::unbounded_channel();
    let stdout = follower.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line_sender.send(line).is_err() {
                break;
            }
        }
    });
    let port = free_port().to_string();
    let env = [
        ("PORT", port.as_str()),
        ("SEARCHGATE_AUTH__PROVIDER", "none"),
        ("SEARCHGATE_SEARCH__RATE_LIMIT_PER_MINUTE", "0"),
    ];
    let mut server = spawn_binary(dir.path(), port.parse().unwrap(), &env).await;
    let mut first = None;
    for n in 0..10 {
        // An event stored before the follower's first read is history, which `-n 0` skips:
        // write another until one is printed.
        unauthenticated_search(&client, &port, n, &format!("followed {n}")).await;
        if let Ok(line) = tokio::time::timeout(Duration::from_secs(3), followed.recv()).await {
            first = line;
            break;
        }
    }
    follower.kill().unwrap();
    let stopped = follower.wait_with_output().unwrap();
    let first: Value = serde_json::from_str(&first.unwrap_or_else(|| {
        panic!(
            "the follower printed nothing: {}",
            String::from_utf8_lossy(&stopped.stderr)
        )
    }))
    .unwrap();
    assert!(
        first["query_summary"]
            .as_str()
            .is_some_and(|q| q.starts_with("followed ")),
        "no history, only what was written while following: {first}"
    );
    Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    server.wait().unwrap();
    // A reader that goes away (`| head -1`) ends the command quietly.
    let mut head = searchgate(dir.path(), &env)
        .args(["audit", "query"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(head.stdout.take());
    let closed = head.wait_with_output().unwrap();
    assert!(
        !String::from_utf8_lossy(&closed.stderr).contains("panicked"),
        "{}",
        String::from_utf8_lossy(&closed.stderr)
    );
    assert_eq!(closed.status.code(), Some(0));
    let bad = searchgate(dir.path(), &env)
        .args(["audit", "query", "--since", "soon"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
}

/// Chromium: `SEARCHGATE_TEST_CHROMIUM`, else Debian's. `.ci/run` installs it.
fn chromium() -> Option<String> {
    std::env::var("SEARCHGATE_TEST_CHROMIUM").ok().or_else(|| {
        ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
            .iter()
            .find(|p| std::path::Path::new(p).exists())
            .map(|p| (*p).to_owned())
    })
}

#[tokio::test]
async fn the_docs_page_lists_the_operations_in_a_real_browser() {
    let Some(chromium) = chromium() else {
        eprintln!(
            "SKIPPED: no Chromium (apt-get install chromium, or set SEARCHGATE_TEST_CHROMIUM)"
        );
        return;
    };
    let app = spawn_app().await;
    let yaml = app.http.get(app.url("/openapi.yaml")).send().await.unwrap();
    assert!(yaml.text().await.unwrap().contains("/api/v1/audit/export:"));
    let profile = tempfile::tempdir().unwrap();
    let url = app.url("/docs");
    let output = tokio::process::Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--virtual-time-budget=20000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(&url)
        .output()
        .await
        .expect("chromium runs");
    let dom = String::from_utf8_lossy(&output.stdout);
    assert!(
        dom.contains("opblock"),
        "Swagger UI rendered no operations: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    for operation in [
        "/api/v1/clients",
        "/api/v1/audit/export",
        "/oauth/register",
        "/web-search/mcp",
        "/.well-known/oauth-protected-resource",
    ] {
        assert!(dom.contains(operation), "{operation} is not listed");
    }
}

/// An audit log whose database has lost its tables: it stores everything, and every read fails
/// with the driver's words.
struct BrokenLog;

const DRIVER_TEXT: &str = "no such table: audit_events";

#[async_trait::async_trait]
impl AuditLog for BrokenLog {
    async fn append(&self, _: &[BoundedEvent]) -> Result<(), AuditError> {
        Ok(())
    }
    async fn check(&self) -> Result<(), AuditError> {
        Ok(())
    }
    async fn query(&self, _: &AuditQuery) -> Result<AuditPage, AuditError> {
        Err(AuditError::Unexpected(anyhow::anyhow!(
            "error returned from database: (code: 1) {DRIVER_TEXT}"
        )))
    }
    async fn stats(
        &self,
        _: searchgate::domain::time::Timestamp,
        _: searchgate::domain::time::Timestamp,
    ) -> Result<Vec<searchgate::domain::audit::HourlyCount>, AuditError> {
        Err(AuditError::Unavailable(
            format!("error returned from database: (code: 1) {DRIVER_TEXT}").into(),
        ))
    }
}

#[tokio::test]
async fn a_store_failure_answers_a_generic_503_that_carries_no_driver_text() {
    let app = spawn_with(
        |s| s.auth.provider = AuthProviderKind::Embedded,
        |b| b.with_audit_log(BrokenLog),
    )
    .await;
    let oauth = OAuth::new(&app);
    let (admin, _) = token(&oauth, "searchgate:admin").await;
    // The export included: a trail the store cannot read is a 503, never an empty 200.
    for path in ["/api/v1/audit", "/api/v1/stats", "/api/v1/audit/export"] {
        let response = app
            .http
            .get(app.url(path))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE, "{path}");
        let text = response.text().await.unwrap();
        let body: Value = serde_json::from_str(&text).expect("a JSON error body");
        assert_eq!(body["error"], "unavailable", "{path}: {body}");
        assert!(
            body["error_description"]
                .as_str()
                .unwrap()
                .contains("cannot be read"),
            "{path}: says what cannot be used: {body}"
        );
        assert!(
            !text.contains(DRIVER_TEXT) && !text.contains("database:"),
            "{path}: the driver's words stay in the log: {text}"
        );
        assert_eq!(
            body.as_object().unwrap().len(),
            2,
            "{path}: only error and error_description: {body}"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn usage_sums_calls_errors_and_reported_credits_per_group() {
    use wiremock::{
        Mock, MockServer, ResponseTemplate,
        matchers::{body_partial_json, path},
    };
    let tavily = MockServer::start().await;
    Mock::given(path("/search"))
        .and(body_partial_json(json!({ "query": "fail" })))
        .respond_with(ResponseTemplate::new(503))
        .with_priority(1)
        .mount(&tavily)
        .await;
    Mock::given(path("/search"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "query": "q", "results": [], "usage": { "credits": 2 }, "request_id": "r"
        })))
        .mount(&tavily)
        .await;
    let base_url = tavily.uri().parse().unwrap();
    let app = spawn_embedded(|s| {
        s.search.provider = vec![searchgate::config::SearchProviderKind::Tavily];
        s.search.tavily.api_key = Some(searchgate::config::Secret::new("tvly-usage"));
        s.search.tavily.base_url = base_url;
        s.search.cache_ttl_secs = 0;
        s.search.rate_limit_per_minute = 0;
    })
    .await;
    let oauth = OAuth::new(&app);
    let (alice, alice_client) = token(&oauth, "web-search:read").await;
    let (bob, bob_client) = token(&oauth, "web-search:read").await;
    let (admin, _) = token(&oauth, "searchgate:admin").await;
    for query in ["a", "b", "fail"] {
        assert_eq!(search(&app, &alice, query).await, StatusCode::OK);
    }
    for query in ["c", "d"] {
        assert_eq!(search(&app, &bob, query).await, StatusCode::OK);
    }
    let mut by_client = Value::Null;
    for _ in 0..100 {
        by_client = admin_json(&app, &admin, "/api/v1/usage?group_by=client").await;
        let calls: u64 = by_client["groups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["calls"].as_u64().unwrap())
            .sum();
        if calls >= 5 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(by_client["group_by"], "client");
    let entry = |group: &str| {
        by_client["groups"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["group"] == group)
            .cloned()
            .unwrap_or_else(|| panic!("{group} in {by_client}"))
    };
    let alice_usage = entry(&alice_client);
    assert_eq!(
        (
            &alice_usage["calls"],
            &alice_usage["errors"],
            &alice_usage["credits"]
        ),
        (&json!(3), &json!(1), &json!(4.0)),
        "a failed call is counted and costs nothing: {alice_usage}"
    );
    let bob_usage = entry(&bob_client);
    assert_eq!(
        (&bob_usage["calls"], &bob_usage["credits"]),
        (&json!(2), &json!(4.0))
    );
    assert_eq!(
        by_client["groups"][0]["group"], alice_client,
        "most calls first"
    );
    let by_provider = admin_json(&app, &admin, "/api/v1/usage?group_by=provider").await;
    assert_eq!(by_provider["groups"][0]["group"], "tavily");
    assert_eq!(by_provider["groups"][0]["credits"], json!(8.0));
    let rows = all_pages(&app, &admin, "tool=web_search", 10).await;
    assert!(
        rows.iter().any(|r| r["credits"] == json!(2.0)),
        "in the audit rows"
    );
    let refused = app
        .http
        .get(app.url("/api/v1/usage?group_by=colour"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("searchgate_upstream_credits_total{provider=\"tavily\"} 8"),
        "{metrics}"
    );
    // The same table in the terminal, from the database.
    let dir = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}", app.db_path.display());
    let output = searchgate(dir.path(), &[("SEARCHGATE_DATABASE__URL", &database)])
        .args(["usage", "--group-by", "client"])
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let line = table
        .lines()
        .find(|l| l.starts_with(&alice_client))
        .unwrap_or_else(|| panic!("{table}"));
    let numbers: Vec<&str> = line.split_whitespace().skip(1).collect();
    assert_eq!(numbers, ["3", "1", "4.00", "0.0000"], "{table}");
    let bad = searchgate(dir.path(), &[("SEARCHGATE_DATABASE__URL", &database)])
        .args(["usage", "--group-by", "colour"])
        .output()
        .unwrap();
    assert_eq!(
        bad.status.code(),
        Some(2),
        "a bad grouping is a usage error"
    );
}
