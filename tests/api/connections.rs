//! Slow, idle and surplus connections (raw sockets, limits set short by configuration), and
//! bodies too large refused before they are read, seen by Node's own `http` client.

use std::time::Duration;

use async_trait::async_trait;
use reqwest::StatusCode;
use searchgate::{
    config::Settings,
    domain::search::{SearchError, SearchProvider, SearchRequest, SearchResults},
};
use serde_json::{Value, json};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::{
    embedded::spawn_embedded,
    helpers::{LEGACY, TestApp, spawn_with, tool_call},
    idp::{node, node_dir},
};

/// Longer than any limit these tests set: a connection still open then was never closed.
const NEVER: Duration = Duration::from_secs(15);

async fn spawn(configure: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_with(configure, |b| b).await
}

/// Reads until the server closes the connection (or resets it) and returns what arrived;
/// panics when it is still open after [`NEVER`].
async fn read_until_closed(stream: &mut TcpStream) -> String {
    let mut received = Vec::new();
    let mut buf = [0; 4096];
    let closed = tokio::time::timeout(NEVER, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => received.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(
        closed.is_ok(),
        "the connection is still open after {NEVER:?}; it sent {:?}",
        String::from_utf8_lossy(&received)
    );
    String::from_utf8_lossy(&received).into_owned()
}

/// Reads one whole response (headers and its `Content-Length` body) off a kept-alive connection.
async fn read_response(stream: &mut TcpStream) -> String {
    let mut received = Vec::new();
    let mut buf = [0; 4096];
    loop {
        let n = tokio::time::timeout(NEVER, stream.read(&mut buf))
            .await
            .expect("an answer")
            .expect("the connection stays open");
        assert!(n > 0, "the server closed the connection before answering");
        received.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&received);
        if let Some(end) = text.find("\r\n\r\n") {
            let length: usize = text[..end]
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().ok())?
                })
                .unwrap_or(0);
            if received.len() >= end + 4 + length {
                return text.into_owned();
            }
        }
    }
}

#[tokio::test]
async fn a_client_that_sends_half_its_headers_is_disconnected_after_the_header_timeout() {
    let app = spawn(|s| s.server.header_timeout_secs = 1).await;
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        .await
        .unwrap();
    let received = read_until_closed(&mut stream).await;
    assert!(
        !received.contains("200"),
        "no request was served: {received:?}"
    );
}

#[tokio::test]
async fn a_client_that_connects_and_sends_nothing_is_disconnected_after_the_header_timeout() {
    let app = spawn(|s| s.server.header_timeout_secs = 1).await;
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    assert_eq!(read_until_closed(&mut stream).await, "");
}

#[tokio::test]
async fn a_body_that_stops_arriving_is_answered_408_after_the_body_timeout() {
    let app = spawn(|s| s.server.body_timeout_secs = 1).await;
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
         Accept: application/json, text/event-stream\r\nContent-Length: 100\r\n\r\n{{\"js",
        url::Url::parse(&app.mcp_url).unwrap().path(),
        app.addr
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let received = read_until_closed(&mut stream).await;
    assert!(
        received.starts_with("HTTP/1.1 408"),
        "408, then closed: {received:?}"
    );
    assert!(
        received.contains("\"code\":-32600"),
        "a JSON-RPC error: {received:?}"
    );
}

#[tokio::test]
async fn a_slow_form_body_is_answered_408_with_the_api_error_body() {
    let app = spawn_embedded(|s| s.server.body_timeout_secs = 1).await;
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    let head = format!(
        "POST /idp/token HTTP/1.1\r\nHost: {}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\ngran",
        app.addr
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let received = read_until_closed(&mut stream).await;
    assert!(received.starts_with("HTTP/1.1 408"), "408: {received:?}");
    assert!(
        received.contains("\"error\":\"request_timeout\""),
        "the API's error body: {received:?}"
    );
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout_not_the_header_one() {
    let app = spawn(|s| {
        s.server.header_timeout_secs = 1;
        s.server.idle_timeout_secs = 3;
    })
    .await;
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    let request = format!("GET /healthz HTTP/1.1\r\nHost: {}\r\n\r\n", app.addr);
    stream.write_all(request.as_bytes()).await.unwrap();
    assert!(read_response(&mut stream).await.starts_with("HTTP/1.1 200"));
    // Past the header limit, the idle connection still serves its next request.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stream.write_all(request.as_bytes()).await.unwrap();
    assert!(read_response(&mut stream).await.starts_with("HTTP/1.1 200"));
    // Then nothing: the idle limit closes it.
    assert_eq!(read_until_closed(&mut stream).await, "");
}

/// Answers after `delay`, longer than the idle limit.
struct SlowSearch {
    delay: Duration,
}

#[async_trait]
impl SearchProvider for SlowSearch {
    fn name(&self) -> &'static str {
        "slow"
    }

    async fn search(&self, request: &SearchRequest) -> Result<SearchResults, SearchError> {
        tokio::time::sleep(self.delay).await;
        Ok(SearchResults {
            query: request.query().as_str().to_owned(),
            ..SearchResults::default()
        })
    }
}

#[tokio::test]
async fn a_tool_call_longer_than_the_idle_and_header_timeouts_is_not_cut() {
    let app = spawn_with(
        |s| {
            s.server.header_timeout_secs = 1;
            s.server.idle_timeout_secs = 1;
        },
        |b| {
            b.with_search_provider(SlowSearch {
                delay: Duration::from_secs(3),
            })
        },
    )
    .await;
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    let call = tool_call(1, "web_search", json!({ "query": "slow" })).to_string();
    let request = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
         Accept: application/json, text/event-stream\r\nMCP-Protocol-Version: {LEGACY}\r\n\
         Content-Length: {}\r\n\r\n{call}",
        url::Url::parse(&app.mcp_url).unwrap().path(),
        app.addr,
        call.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let answer = read_response(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("\"isError\":false"), "{answer}");
    // The call's time was not idle time: the connection serves its next request.
    let next = format!("GET /healthz HTTP/1.1\r\nHost: {}\r\n\r\n", app.addr);
    stream.write_all(next.as_bytes()).await.unwrap();
    assert!(read_response(&mut stream).await.starts_with("HTTP/1.1 200"));
}

#[tokio::test]
async fn connections_beyond_max_connections_wait_and_are_counted() {
    let app = spawn(|s| s.server.max_connections = 1).await;
    let holder = TcpStream::connect(app.addr).await.unwrap();
    // Let the server accept the first connection before the second arrives.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut waiting = TcpStream::connect(app.addr).await.unwrap();
    let request = format!(
        "GET /healthz HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        app.addr
    );
    waiting.write_all(request.as_bytes()).await.unwrap();
    let mut buf = [0; 64];
    assert!(
        tokio::time::timeout(Duration::from_millis(500), waiting.read(&mut buf))
            .await
            .is_err(),
        "the second connection waits while the first holds the only slot"
    );
    drop(holder);
    let answer = read_until_closed(&mut waiting).await;
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "then it is served: {answer:?}"
    );
    drop(waiting);
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("searchgate_connections_waited_total 1"),
        "the wait is counted: {metrics}"
    );
}

/// What Node's `http` client saw when sending 20 MB to `url`.
async fn node_big_post(url: &str, content_type: &str, expect: bool) -> Value {
    let output = tokio::process::Command::new(node())
        .arg(node_dir().join("big-body.mjs"))
        .env("URL", url)
        .env("CONTENT_TYPE", content_type)
        .env("EXPECT", if expect { "1" } else { "0" })
        .output()
        .await
        .expect("node runs");
    assert!(
        output.status.success(),
        "big-body.mjs failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("big-body.mjs reports JSON")
}

#[tokio::test]
async fn node_reads_the_413_for_a_20_mb_mcp_body_with_and_without_expect() {
    let app = spawn(|_| {}).await;
    for expect in [false, true] {
        let seen = node_big_post(&app.mcp_url, "application/json", expect).await;
        assert_eq!(seen["status"], 413, "expect={expect}: {seen}");
        assert_eq!(seen["continued"], false, "no 100 Continue: {seen}");
        let body: Value = serde_json::from_str(seen["body"].as_str().unwrap()).unwrap();
        assert_eq!(body["error"]["code"], -32600, "a JSON-RPC error: {body}");
    }
}

#[tokio::test]
async fn node_reads_the_413_for_a_20_mb_token_request_with_and_without_expect() {
    let app = spawn_embedded(|_| {}).await;
    for expect in [false, true] {
        let seen = node_big_post(
            &app.url("/idp/token"),
            "application/x-www-form-urlencoded",
            expect,
        )
        .await;
        assert_eq!(seen["status"], 413, "expect={expect}: {seen}");
        assert_eq!(seen["continued"], false, "no 100 Continue: {seen}");
        let body: Value = serde_json::from_str(seen["body"].as_str().unwrap()).unwrap();
        assert_eq!(body["error"], "invalid_request", "{body}");
    }
}

#[tokio::test]
async fn a_17_kb_token_request_is_413() {
    let app = spawn_embedded(|_| {}).await;
    let form = format!(
        "grant_type=authorization_code&code={}",
        "a".repeat(17 * 1024)
    );
    let response = app
        .http
        .post(app.url("/idp/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request", "{body}");
    assert_eq!(
        body["error_description"], "the request body exceeds 16 KiB",
        "{body}"
    );
}

#[tokio::test]
async fn a_17_kb_chunked_token_request_is_413_too() {
    // No Content-Length to refuse up front: the body is cut once it outgrows 16 KiB, and the
    // answer is still 413, not the route's 400 for a body it could not read.
    let app = spawn_embedded(|_| {}).await;
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    let mut request = format!(
        "POST /idp/token HTTP/1.1\r\nHost: {}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n",
        app.addr
    );
    request.push_str("1b\r\ngrant_type=refresh_token&r=\r\n");
    for _ in 0..17 {
        request.push_str(&format!("400\r\n{}\r\n", "a".repeat(1024)));
    }
    request.push_str("0\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let received = read_until_closed(&mut stream).await;
    assert!(received.starts_with("HTTP/1.1 413"), "413: {received:?}");
    assert!(
        received.contains("the request body exceeds 16 KiB"),
        "the API's error body: {received:?}"
    );
}

#[tokio::test]
async fn complete_answers_carry_their_length() {
    // Watching a connection's requests must not cost an answer its Content-Length (the
    // connection tracker and the MCP endpoint once both sent every answer chunked).
    let app = spawn_with(|_| {}, |builder| builder).await;
    has_its_length(app.http.get(app.url("/healthz")).send().await.unwrap()).await;
    let call = tool_call(1, "web_search", json!({ "query": "rust" }));
    has_its_length(app.mcp_post().json(&call).send().await.unwrap()).await;
    app.stop().await;
}

/// A 200 sent with a `Content-Length` equal to its body, not chunked.
async fn has_its_length(response: reqwest::Response) {
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().get("transfer-encoding").is_none());
    let length = response.headers()["content-length"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(length, response.bytes().await.unwrap().len().to_string());
}

/// An HTTP/1 client that asks for answers and reads none of them is cut at the idle limit
/// (hyper, blocked writing, gets an error), and with a reset: the answers the kernel still
/// holds for it are dropped, not sent on after its slot is freed.
#[tokio::test]
async fn a_client_that_reads_none_of_its_answers_is_reset_at_the_idle_limit() {
    let app = spawn(|s| {
        s.server.header_timeout_secs = 1;
        s.server.idle_timeout_secs = 2;
    })
    .await;
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stream = socket.connect(app.addr).await.unwrap();
    // Far more answer (about 70 KB each) than the kernel buffers on both sides hold.
    let request = format!("GET /openapi.json HTTP/1.1\r\nHost: {}\r\n\r\n", app.addr);
    stream
        .write_all(request.repeat(200).as_bytes())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let mut buf = vec![0; 64 * 1024];
    let (mut read, mut total) = (Ok(1), 0);
    let ended = tokio::time::timeout(NEVER, async {
        while let Ok(n @ 1..) = read {
            total += n;
            read = stream.read(&mut buf).await;
        }
    })
    .await;
    assert!(
        ended.is_ok(),
        "still sending after {NEVER:?}: {total} bytes"
    );
    assert_eq!(
        read.map_err(|e| e.kind()),
        Err(std::io::ErrorKind::ConnectionReset),
        "reset after {total} bytes"
    );
    assert!(
        total < 200 * 60_000,
        "{total} bytes: not every answer was sent"
    );
}
