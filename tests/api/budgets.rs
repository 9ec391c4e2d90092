//! Contract: daily budgets are counted in the database, so two replicas on one database share
//! them: a principal never makes more calls than its budget allows, whichever replica it
//! reaches; the deployment's credit budget stops calls once spent (overshooting by at most
//! what calls in flight cost beyond one credit each); a spent budget is a tool error
//! `budget_exhausted` with the reset time, audited and counted in the metrics. On SQLite, and
//! on PostgreSQL when `SEARCHGATE_TEST_POSTGRES_URL` is set.

use searchgate::config::{SearchProviderKind, Secret, Settings};
use serde_json::{Value, json};
use wiremock::{Mock, MockServer, ResponseTemplate, matchers::path};

use crate::{
    helpers::{AuditTable, TestApp, spawn_with, tool_call},
    stores::{PgSchema, postgres_url},
};

/// The databases to run on: a SQLite file, and a fresh PostgreSQL schema when one answers.
async fn databases(dir: &std::path::Path) -> Vec<(String, Option<PgSchema>)> {
    let mut urls = vec![(
        format!("sqlite://{}", dir.join("shared.db").display()),
        None,
    )];
    match postgres_url() {
        Some(base) => {
            let schema = PgSchema::new(&base).await;
            urls.push((schema.url.clone(), Some(schema)));
        }
        None => {
            eprintln!("SEARCHGATE_TEST_POSTGRES_URL is not set: the PostgreSQL case is skipped")
        }
    }
    urls
}

async fn replica(database: &str, configure: impl FnOnce(&mut Settings)) -> TestApp {
    let database = database.to_owned();
    spawn_with(
        move |s| {
            s.database.url = database;
            s.search.cache_ttl_secs = 0;
            s.search.rate_limit_per_minute = 0;
            configure(s);
        },
        |b| b,
    )
    .await
}

async fn search(app: &TestApp, n: u32) -> Value {
    let (status, body) = app
        .rpc(tool_call(
            n,
            "web_search",
            json!({ "query": format!("q{n}") }),
        ))
        .await;
    assert_eq!(status, 200);
    body["result"].clone()
}

fn code(result: &Value) -> &str {
    result["_meta"]["searchgate/error"]["code"]
        .as_str()
        .unwrap_or("")
}

#[tokio::test]
async fn two_replicas_share_a_principals_call_budget_exactly() {
    let dir = tempfile::tempdir().unwrap();
    for (database, _schema) in databases(dir.path()).await {
        let budget = |s: &mut Settings| s.search.budget.calls_per_day = 7;
        let (a, b) = (
            replica(&database, budget).await,
            replica(&database, budget).await,
        );
        let mut answered = 0;
        let mut refused = Vec::new();
        for n in 0..12 {
            let result = search(if n % 2 == 0 { &a } else { &b }, n).await;
            if result["isError"] == true {
                refused.push(result);
            } else {
                answered += 1;
            }
        }
        // A budget of 7 is taken one call at a time (a fiftieth, at least one): exact.
        assert_eq!(answered, 7, "{database}");
        let first = &refused[0];
        assert_eq!(code(first), "budget_exhausted", "{first}");
        let meta = &first["_meta"]["searchgate/error"];
        assert_eq!(meta["scope"], "principal");
        assert!(
            meta["resets_at"].as_str().unwrap().contains("T00:00:00"),
            "{meta}"
        );
        assert!(meta["retry_after_secs"].as_u64().unwrap() <= 86_400);
        // Five refusals: two on a, three on b (each counts its own).
        for (app, refused) in [(&a, 2), (&b, 3)] {
            let metrics = app.metrics().await;
            let line =
                format!("searchgate_budget_exhausted_total{{scope=\"principal\"}} {refused}");
            assert!(metrics.contains(&line), "{metrics}");
        }
        a.stop().await;
        b.stop().await;
        if database.starts_with("sqlite") {
            let audit = AuditTable::read(&dir.path().join("shared.db")).await;
            let refusals = audit
                .rows
                .iter()
                .filter(|r| r.error_code.as_deref() == Some("budget_exhausted"))
                .count();
            assert_eq!(refusals, 5, "each refusal is audited");
        }
    }
}

#[tokio::test]
async fn the_deployments_credit_budget_stops_calls_once_spent() {
    let tavily = MockServer::start().await;
    Mock::given(path("/search"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "query": "q", "results": [], "usage": { "credits": 2 }
        })))
        .mount(&tavily)
        .await;
    let base_url = tavily.uri();
    let dir = tempfile::tempdir().unwrap();
    for (database, _schema) in databases(dir.path()).await {
        let budget = |s: &mut Settings| {
            s.search.provider = vec![SearchProviderKind::Tavily];
            s.search.tavily.api_key = Some(Secret::new("tvly-budget"));
            s.search.tavily.base_url = base_url.parse().unwrap();
            s.search.budget.total_credits_per_day = 5.0;
        };
        let (a, b) = (
            replica(&database, budget).await,
            replica(&database, budget).await,
        );
        let mut answered = 0;
        let mut last = Value::Null;
        for n in 0..8 {
            last = search(if n % 2 == 0 { &a } else { &b }, n).await;
            if last["isError"] == true {
                break;
            }
            answered += 1;
        }
        // 2 credits a call from 5: the third call takes the last credit and costs one more.
        assert_eq!(answered, 3, "{database}");
        assert_eq!(code(&last), "budget_exhausted");
        assert_eq!(last["_meta"]["searchgate/error"]["scope"], "total");
        let metrics = a.metrics().await;
        assert!(
            metrics.contains("searchgate_budget_used_ratio{scope=\"total\"} 1"),
            "{metrics}"
        );
        a.stop().await;
        b.stop().await;
    }
}
