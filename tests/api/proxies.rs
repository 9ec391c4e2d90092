//! The client's address behind trusted proxies, through the real binary: what the audit row
//! records (with the peer beside it), what the registration limit keys on, and that nobody but
//! a trusted proxy can name an address. Loopback has a whole /8, so the test's "proxy" and
//! "clients" are distinct addresses (127.0.0.2, 127.0.0.1) on one machine.

use std::{net::IpAddr, path::Path};

use serde_json::json;
use sqlx::{Row, sqlite::SqlitePoolOptions};

use crate::helpers::{free_port, searchgate, spawn_binary, terminate};

const PROXY: &str = "127.0.0.2";

/// A client whose connections come from `source`.
fn from(source: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(source.parse::<IpAddr>().unwrap())
        .build()
        .unwrap()
}

/// (source_addr, peer_addr) of each audit row with `method`, oldest first.
async fn addresses(db: &Path, method: &str) -> Vec<(String, String)> {
    let pool = SqlitePoolOptions::new()
        .connect(&format!("sqlite://{}?mode=ro", db.display()))
        .await
        .unwrap();
    let rows =
        sqlx::query("SELECT source_addr, peer_addr FROM audit_events WHERE method = ? ORDER BY id")
            .bind(method)
            .fetch_all(&pool)
            .await
            .unwrap()
            .into_iter()
            .map(|r| (r.get("source_addr"), r.get("peer_addr")))
            .collect();
    pool.close().await;
    rows
}

fn ip_of(peer: &str) -> &str {
    peer.rsplit_once(':').unwrap().0
}

#[tokio::test]
async fn a_trusted_proxy_names_the_client_and_nobody_else_can() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port().to_string();
    let env = [
        ("PORT", port.as_str()),
        ("SEARCHGATE_SERVER__TRUSTED_PROXIES", "127.0.0.2,::2/128"),
        ("SEARCHGATE_REGISTRATION__RATE_LIMIT_PER_MINUTE", "2"),
    ];
    let child = spawn_binary(dir.path(), port.parse().unwrap(), &env).await;
    let base = format!("http://127.0.0.1:{port}");
    let register = |client: reqwest::Client, headers: Vec<(&'static str, &'static str)>| {
        let url = format!("{base}/oauth/register");
        async move {
            let mut request = client.post(url).json(&json!({
                "client_name": "proxy test",
                "redirect_uris": ["http://127.0.0.1:9/cb"],
                "token_endpoint_auth_method": "none"
            }));
            for (name, value) in headers {
                request = request.header(name, value);
            }
            request.send().await.unwrap().status().as_u16()
        }
    };
    let proxy = from(PROXY);
    let direct = from("127.0.0.1");
    // Through the proxy: the spoofed left-most entry is passed over; the client is the entry the
    // proxy appended. Two per minute per client address.
    let chain = vec![("x-forwarded-for", "6.6.6.6, 198.51.100.7")];
    assert_eq!(register(proxy.clone(), chain.clone()).await, 201);
    assert_eq!(register(proxy.clone(), chain.clone()).await, 201);
    assert_eq!(register(proxy.clone(), chain.clone()).await, 429);
    // Another client behind the same proxy has its own allowance (IPv6 with a port); a
    // `Forwarded` the proxy passed on is not read, since it writes X-Forwarded-For.
    let other = vec![
        ("x-forwarded-for", "[2001:db8::9]:4711"),
        ("forwarded", "for=203.0.113.66"),
    ];
    assert_eq!(register(proxy.clone(), other).await, 201);
    // Garbage from the proxy is ignored (the proxy is the client then) and counted.
    assert_eq!(
        register(proxy.clone(), vec![("x-forwarded-for", "not-an-address")]).await,
        201
    );
    // A direct client cannot borrow another address, nor escape its own limit by naming one.
    assert_eq!(
        register(direct.clone(), vec![("x-forwarded-for", "203.0.113.1")]).await,
        201
    );
    assert_eq!(
        register(direct.clone(), vec![("x-forwarded-for", "203.0.113.2")]).await,
        201
    );
    assert_eq!(
        register(direct.clone(), vec![("x-forwarded-for", "203.0.113.3")]).await,
        429,
        "the direct client's own address is what counts"
    );

    // What a trusted proxy says about the scheme and host changes nothing: the metadata is
    // built from the configuration.
    let metadata: serde_json::Value = proxy
        .get(format!(
            "{base}/.well-known/oauth-protected-resource/web-search/mcp"
        ))
        .header("x-forwarded-proto", "https")
        .header("x-forwarded-host", "evil.example")
        .header("forwarded", "for=192.0.2.1;proto=https;host=evil.example")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(metadata["resource"], format!("{base}/web-search/mcp"));
    assert!(!metadata.to_string().contains("evil.example"), "{metadata}");

    // A tool call through the proxy: its audit row names the client and keeps the proxy.
    let token = searchgate(dir.path(), &env)
        .args(["token", "--scope", "web-search:read"])
        .output()
        .unwrap();
    assert!(token.status.success());
    let token = String::from_utf8(token.stdout).unwrap();
    let response = proxy
        .post(format!("{base}/web-search/mcp"))
        .bearer_auth(token.trim())
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .header("x-forwarded-for", "10.9.9.9, 192.0.2.44")
        .body(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let metrics = direct
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("searchgate_forwarded_ignored_total{reason=\"malformed\"} 1"),
        "{metrics}"
    );
    terminate(child).await;

    let db = dir.path().join("searchgate.db");
    let registrations = addresses(&db, "oauth/register").await;
    let clients: Vec<&str> = registrations.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(
        clients,
        [
            "198.51.100.7",
            "198.51.100.7",
            "198.51.100.7",
            "2001:db8::9",
            PROXY,
            "127.0.0.1",
            "127.0.0.1",
            "127.0.0.1"
        ]
    );
    let peers: Vec<&str> = registrations.iter().map(|(_, p)| ip_of(p)).collect();
    assert_eq!(
        peers,
        [
            PROXY,
            PROXY,
            PROXY,
            PROXY,
            PROXY,
            "127.0.0.1",
            "127.0.0.1",
            "127.0.0.1"
        ]
    );
    let calls = addresses(&db, "tools/list").await;
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].0, "192.0.2.44");
    assert_eq!(ip_of(&calls[0].1), PROXY);
}

/// With `server.forwarded_header = forwarded`, the client is named by RFC 7239's `Forwarded`,
/// and an `X-Forwarded-For` is not read.
#[tokio::test(flavor = "multi_thread")]
async fn a_proxy_that_writes_forwarded_is_read_there_only() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port().to_string();
    let env = [
        ("PORT", port.as_str()),
        ("SEARCHGATE_SERVER__TRUSTED_PROXIES", PROXY),
        ("SEARCHGATE_SERVER__FORWARDED_HEADER", "forwarded"),
    ];
    let child = spawn_binary(dir.path(), port.parse().unwrap(), &env).await;
    for headers in [
        vec![
            ("forwarded", r#"for="[2001:db8::9]:4711";proto=https"#),
            ("x-forwarded-for", "6.6.6.6"),
        ],
        vec![("x-forwarded-for", "6.6.6.6")],
    ] {
        let mut request = from(PROXY)
            .post(format!("http://127.0.0.1:{port}/oauth/register"))
            .json(&json!({
                "client_name": "forwarded test",
                "redirect_uris": ["http://127.0.0.1:9/cb"],
                "token_endpoint_auth_method": "none"
            }));
        for (name, value) in headers {
            request = request.header(name, value);
        }
        assert_eq!(request.send().await.unwrap().status(), 201);
    }
    terminate(child).await;
    let rows = addresses(&dir.path().join("searchgate.db"), "oauth/register").await;
    let clients: Vec<&str> = rows.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(clients, ["2001:db8::9", PROXY]);
}

/// `telemetry.metrics_allowed_from` lets only the named scrapers read `/metrics`: by the client
/// address, so a scraper behind a trusted proxy is let in and a forged header is not.
#[tokio::test(flavor = "multi_thread")]
async fn metrics_answer_only_the_allowed_scrapers() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let port_text = port.to_string();
    let env = [
        ("PORT", port_text.as_str()),
        ("SEARCHGATE_SERVER__TRUSTED_PROXIES", PROXY),
        (
            "SEARCHGATE_TELEMETRY__METRICS_ALLOWED_FROM",
            "127.0.0.3,10.0.0.0/8",
        ),
    ];
    let child = spawn_binary(dir.path(), port, &env).await;
    let url = format!("http://127.0.0.1:{port}/metrics");
    for (source, forwarded, status) in [
        ("127.0.0.3", None, 200),
        ("127.0.0.1", None, 403),
        (PROXY, Some("10.1.2.3"), 200),
        (PROXY, Some("192.0.2.9"), 403),
        (PROXY, None, 403),
        ("127.0.0.1", Some("10.1.2.3"), 403),
    ] {
        let mut request = from(source).get(&url);
        if let Some(client) = forwarded {
            request = request.header("x-forwarded-for", client);
        }
        let response = request.send().await.unwrap();
        assert_eq!(
            response.status().as_u16(),
            status,
            "from {source}, forwarded for {forwarded:?}"
        );
        let body = response.text().await.unwrap();
        if status == 200 {
            assert!(body.contains("searchgate_http_requests_total"), "{body}");
        } else {
            assert!(body.contains("telemetry.metrics_allowed_from"), "{body}");
        }
    }
    // Everything else answers as before.
    let health = from("127.0.0.1")
        .get(format!("http://127.0.0.1:{port}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    terminate(child).await;
}
