//! Two real searchgate processes sharing one PostgreSQL database behind a round-robin load
//! balancer (every request to the other replica, no sticky sessions): the embedded
//! authorization server's clients, codes, refresh tokens and keys, the audit trail and the
//! client cache are one, whichever replica a request reaches. Runs when
//! `SEARCHGATE_TEST_POSTGRES_URL` is set.

use std::{
    process::Child,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
};

use poem::{
    Body, Request, Response, Server,
    listener::{Acceptor, Listener, TcpListener},
};
use reqwest::{StatusCode, header};
use serde_json::{Value, json};

use crate::{
    embedded::{OAuth, VERIFIER, value_of},
    helpers::{free_port, searchgate, spawn_binary},
    idp::run_sdk_client,
    stores::{PgSchema, postgres_url},
};

/// A load balancer on loopback that sends each request to the next backend in turn.
struct RoundRobin {
    port: u16,
    served: Arc<[AtomicUsize; 2]>,
}

impl RoundRobin {
    async fn start(backends: [u16; 2]) -> Self {
        let acceptor = TcpListener::bind("127.0.0.1:0")
            .into_acceptor()
            .await
            .unwrap();
        let port = acceptor.local_addr()[0].as_socket_addr().unwrap().port();
        let served: Arc<[AtomicUsize; 2]> = Arc::default();
        let next = Arc::new(AtomicUsize::new(0));
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let counts = served.clone();
        let proxy = poem::endpoint::make(move |request: Request| {
            let (http, next, counts) = (http.clone(), next.clone(), counts.clone());
            async move {
                let turn = next.fetch_add(1, Ordering::SeqCst) % 2;
                counts[turn].fetch_add(1, Ordering::SeqCst);
                forward(&http, backends[turn], request).await
            }
        });
        tokio::spawn(Server::new_with_acceptor(acceptor).run(proxy));
        Self { port, served }
    }

    fn served(&self) -> [usize; 2] {
        [
            self.served[0].load(Ordering::SeqCst),
            self.served[1].load(Ordering::SeqCst),
        ]
    }
}

/// Passes the request on unchanged (the `Host` header included, as a proxy that preserves
/// it does) and the answer back.
async fn forward(http: &reqwest::Client, port: u16, request: Request) -> Response {
    let path = request
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let method = request.method().clone();
    let headers = request.headers().clone();
    let body = request.into_body().into_bytes().await.unwrap_or_default();
    let upstream = http
        .request(method, format!("http://127.0.0.1:{port}{path}"))
        .headers(headers)
        .body(body)
        .send()
        .await;
    let Ok(upstream) = upstream else {
        return Response::builder().status(StatusCode::BAD_GATEWAY).finish();
    };
    let mut response = Response::builder().status(upstream.status());
    for (name, value) in upstream.headers() {
        if name != header::TRANSFER_ENCODING && name != header::CONTENT_LENGTH {
            response = response.header(name, value);
        }
    }
    response.body(Body::from(upstream.bytes().await.unwrap_or_default()))
}

/// A replica: the real binary with the shared database and the load balancer's public URL.
struct Replica {
    port: u16,
    child: Child,
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Replica {
    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

async fn mcp_call(url: &str, token: &str, request_id: &str, method: &str) -> (StatusCode, Value) {
    let params = if method == "tools/call" {
        json!({ "name": "web_search", "arguments": { "query": request_id } })
    } else {
        json!({})
    };
    let response = reqwest::Client::new()
        .post(url)
        .bearer_auth(token)
        .header(header::ACCEPT, "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-11-25")
        .header("x-request-id", request_id)
        .json(&json!({ "jsonrpc": "2.0", "id": 1, "method": method, "params": params }))
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn two_replicas_on_one_postgres_share_clients_tokens_and_the_audit_trail() {
    let Some(base) = postgres_url() else {
        eprintln!(
            "two-replica test skipped: SEARCHGATE_TEST_POSTGRES_URL is not set \
             (.ci/run sets it when PostgreSQL answers on 127.0.0.1:5432)"
        );
        return;
    };
    let schema = PgSchema::new(&base).await;
    let ports = [free_port(), free_port()];
    let balancer = RoundRobin::start(ports).await;
    let public = format!("http://127.0.0.1:{}", balancer.port);
    let mcp_url = format!("{public}/web-search/mcp");

    let dir = tempfile::tempdir().unwrap();
    let env = |port: u16| {
        vec![
            ("PORT".to_owned(), port.to_string()),
            ("SEARCHGATE_DATABASE__URL".to_owned(), schema.url.clone()),
            ("SEARCHGATE_SERVER__PUBLIC_URL".to_owned(), public.clone()),
            (
                "SEARCHGATE_AUTH__PROVIDER".to_owned(),
                "embedded".to_owned(),
            ),
        ]
    };
    let mut replicas = Vec::new();
    // Started together: both run the migrations and look for a signing key at once.
    let starts = ports.map(|port| {
        let env = env(port);
        let dir = dir.path().to_owned();
        tokio::spawn(async move {
            let env: Vec<(&str, &str)> =
                env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            spawn_binary(&dir, port, &env).await
        })
    });
    for (start, port) in starts.into_iter().zip(ports) {
        replicas.push(Replica {
            port,
            child: start.await.unwrap(),
        });
    }
    let (a, b) = (&replicas[0], &replicas[1]);

    // A client registered through A is known to B: B's consent page names it and B issues
    // the code; A exchanges it; the token works on both.
    let on_a = OAuth::at(&a.url(""), &mcp_url);
    let on_b = OAuth::at(&b.url(""), &mcp_url);
    let client_id = on_a.public_client().await;
    let query = on_b.consent(&on_b.params(&client_id, &[]), "approve").await;
    let code = value_of(&query, "code").expect("B issues a code for A's client");
    assert_eq!(
        value_of(&query, "iss").as_deref(),
        Some(&*format!("{public}/idp"))
    );
    let (status, tokens) = on_a.exchange(&client_id, &code, VERIFIER).await;
    assert_eq!(status, StatusCode::OK, "A redeems B's code: {tokens}");
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();

    // MCP requests alternate between the replicas, no session shared but the database.
    for i in 0..6 {
        let replica = &replicas[i % 2];
        let request_id = format!("replica-{}-call-{i}", i % 2);
        let (status, body) = mcp_call(
            &replica.url("/web-search/mcp"),
            &access,
            &request_id,
            "tools/call",
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{request_id}: {body}");
        assert_eq!(body["result"]["isError"], false, "{request_id}: {body}");
    }

    // A refresh on B; the old refresh token is then refused on A (one family, one table).
    let (status, rotated) = on_b.refresh(&client_id, &refresh).await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let (status, reused) = on_a.refresh(&client_id, &refresh).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{reused}");
    assert_eq!(reused["error"], "invalid_grant");
    let (status, again) = on_b.exchange(&client_id, &code, VERIFIER).await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "B knows A spent the code: {again}"
    );

    // A CLI token (the operator's, with the admin scope) from the shared keys; B's admin API
    // lists the client A registered.
    let cli_env = env(0);
    let cli_env: Vec<(&str, &str)> = cli_env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let admin = searchgate(dir.path(), &cli_env)
        .args(["token", "--scope", "searchgate:admin", "--client", "ops"])
        .output()
        .unwrap();
    assert!(
        admin.status.success(),
        "{}",
        String::from_utf8_lossy(&admin.stderr)
    );
    let admin = String::from_utf8(admin.stdout).unwrap().trim().to_owned();
    let listed: Value = reqwest::Client::new()
        .get(b.url(&format!("/api/v1/clients/{client_id}")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["client_id"], client_id.as_str(), "{listed}");
    assert_eq!(listed["source"], "embedded", "{listed}");

    // The official TypeScript SDK client through the load balancer: every request it makes
    // goes to the other replica from the one before.
    let before = balancer.served();
    let report = run_sdk_client(&mcp_url).await;
    assert_eq!(report["is_error"], false, "{report}");
    assert_eq!(report["refreshed"], true, "{report}");
    assert_eq!(report["reuse_rejected"], true, "{report}");
    let after = balancer.served();
    let (to_a, to_b) = (after[0] - before[0], after[1] - before[1]);
    eprintln!("the SDK client's requests: {to_a} to replica A, {to_b} to replica B");
    assert!(
        to_a >= 5 && to_a.abs_diff(to_b) <= 1,
        "the SDK's requests were spread over both replicas: {to_a} and {to_b}; {report}"
    );

    // Audit rows from both replicas are in the one table, each exactly once.
    let mut db = <sqlx::PgConnection as sqlx::Connection>::connect(&schema.url)
        .await
        .unwrap();
    let mut calls: Vec<String> = Vec::new();
    for _ in 0..50 {
        calls = sqlx::query_scalar(
            "SELECT request_id FROM audit_events WHERE request_id LIKE 'replica-%' \
             ORDER BY request_id",
        )
        .fetch_all(&mut db)
        .await
        .unwrap();
        if calls.len() >= 6 {
            break;
        }
        // The writers batch: give them a moment.
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let expected: Vec<String> = {
        let mut ids: Vec<String> = (0..6)
            .map(|i| format!("replica-{}-call-{i}", i % 2))
            .collect();
        ids.sort();
        ids
    };
    assert_eq!(calls, expected);
    let sdk_calls: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM audit_events WHERE method = 'tools/call' AND client_id = $1",
    )
    .bind(report["client_id"].as_str().unwrap_or_default())
    .fetch_one(&mut db)
    .await
    .unwrap();
    assert!(
        sdk_calls >= 2,
        "the SDK's tool calls are audited: {sdk_calls}"
    );
    let keys: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM idp_keys")
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert_eq!(
        keys, 1,
        "replicas started together made one signing key in all"
    );
    drop(replicas);
}
