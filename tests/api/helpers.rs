//! Spawning the server (in process or as the real binary) and talking to it.

use std::{
    net::{SocketAddr, TcpListener},
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    time::Duration,
};

use reqwest::header::{ACCEPT, CONTENT_TYPE};
use searchgate::{
    config::{AuthProviderKind, Settings},
    startup::{Searchgate, StartupError},
};
use serde_json::{Value, json};
use sqlx::{Row, sqlite::SqlitePoolOptions};
use tempfile::TempDir;
use tokio::{sync::oneshot, task::JoinHandle};

/// The MCP revision of the legacy (initialize) era used by raw requests.
pub const LEGACY: &str = "2025-11-25";

/// The JSON-RPC `tools/call` request for `tool` with `arguments`, as message `id`. A test that
/// needs more (`_meta`, say) sets it on the returned value.
pub fn tool_call(id: impl Into<Value>, tool: &str, arguments: Value) -> Value {
    json!({
        "jsonrpc": "2.0", "id": id.into(), "method": "tools/call",
        "params": { "name": tool, "arguments": arguments }
    })
}

/// A server running in this process on an ephemeral loopback port.
pub struct TestApp {
    pub addr: SocketAddr,
    /// `https` when the settings turn TLS on.
    scheme: &'static str,
    pub mcp_url: String,
    pub db_path: PathBuf,
    pub http: reqwest::Client,
    _dir: TempDir,
    stop: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<Result<(), StartupError>>>,
}

/// Starts searchgate on its defaults, with a fresh database.
pub async fn spawn_app() -> TestApp {
    spawn_with(|_| {}, |builder| builder).await
}

/// Starts searchgate after adjusting its settings and its builder.
pub async fn spawn_with(
    configure: impl FnOnce(&mut Settings),
    build: impl FnOnce(Searchgate) -> Searchgate,
) -> TestApp {
    init_test_logging();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let db_path = dir.path().join("searchgate.db");
    let mut settings = Settings::default();
    settings.server.bind = "127.0.0.1:0".parse().unwrap();
    settings.database.url = format!("sqlite://{}", db_path.display());
    // Most tests exercise the MCP surface without tokens; auth tests choose their provider.
    settings.auth.provider = AuthProviderKind::None;
    configure(&mut settings);
    // With TLS on, the test's own certificate is trusted as it is.
    let tls = settings.server.tls.files().is_some();
    let server = build(Searchgate::new(settings))
        .bind()
        .await
        .expect("the server starts");
    let addr = server.local_addr();
    let mcp_url = server.resource_url().to_string();
    let (stop, stopped) = oneshot::channel::<()>();
    let handle = tokio::spawn(server.run_until(async move {
        let _ = stopped.await;
    }));
    TestApp {
        addr,
        scheme: if tls { "https" } else { "http" },
        mcp_url,
        db_path,
        http: reqwest::Client::builder()
            .danger_accept_invalid_certs(tls)
            .build()
            .expect("a client"),
        _dir: dir,
        stop: Some(stop),
        handle: Some(handle),
    }
}

fn init_test_logging() {
    if std::env::var_os("TEST_LOG").is_some() {
        let _ = searchgate::telemetry::init(&Default::default());
    }
}

impl TestApp {
    /// `http://127.0.0.1:<port><path>` (`https` with TLS on).
    pub fn url(&self, path: &str) -> String {
        format!("{}://{}{path}", self.scheme, self.addr)
    }

    /// A POST to the MCP endpoint with the headers every legacy-era client sends after
    /// initializing.
    pub fn mcp_post(&self) -> reqwest::RequestBuilder {
        self.mcp_post_version(Some(LEGACY))
    }

    /// A POST to the MCP endpoint with an explicit `MCP-Protocol-Version` (or none).
    pub fn mcp_post_version(&self, version: Option<&str>) -> reqwest::RequestBuilder {
        let request = self
            .http
            .post(&self.mcp_url)
            .header(ACCEPT, "application/json, text/event-stream")
            .header(CONTENT_TYPE, "application/json");
        match version {
            Some(version) => request.header("mcp-protocol-version", version),
            None => request,
        }
    }

    /// GETs `path` and parses the body as JSON.
    pub async fn get_json(&self, path: &str) -> Value {
        let response = self
            .http
            .get(self.url(path))
            .send()
            .await
            .expect("the request is sent");
        response.json().await.expect("a JSON body")
    }

    /// Denies `client_id` through the admin API (`DELETE /api/v1/clients/{id}`) with `admin`'s
    /// token; the answer's status.
    pub async fn deny_client(&self, admin: &str, client_id: &str) -> reqwest::StatusCode {
        self.http
            .delete(self.url(&format!("/api/v1/clients/{client_id}")))
            .bearer_auth(admin)
            .send()
            .await
            .expect("the request is sent")
            .status()
    }

    /// The `/metrics` text.
    pub async fn metrics(&self) -> String {
        let response = self
            .http
            .get(self.url("/metrics"))
            .send()
            .await
            .expect("the request is sent");
        assert!(
            response.status().is_success(),
            "/metrics: {}",
            response.status()
        );
        response.text().await.expect("a text body")
    }

    /// A stateless MCP 2026-07-28 request: the version and method headers, and the `_meta` the
    /// revision requires merged into `params`.
    pub async fn modern(&self, method: &str, params: Value) -> reqwest::Response {
        let mut params = params;
        params["_meta"] = json!({
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {},
            "io.modelcontextprotocol/clientInfo": { "name": "raw", "version": "1" }
        });
        let mut request = self
            .mcp_post_version(Some("2026-07-28"))
            .header("mcp-method", method);
        if let Some(name) = params.get("name").and_then(Value::as_str) {
            request = request.header("mcp-name", name);
        }
        request
            .json(
                &json!({ "jsonrpc": "2.0", "id": "modern-1", "method": method, "params": params }),
            )
            .send()
            .await
            .expect("the request is sent")
    }

    /// Sends one JSON-RPC message and returns the status and the JSON body (Null when empty).
    pub async fn rpc(&self, message: Value) -> (u16, Value) {
        let response = self
            .mcp_post()
            .json(&message)
            .send()
            .await
            .expect("the request is sent");
        let status = response.status().as_u16();
        let text = response.text().await.expect("a body");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Calls `web_search` with `arguments` and returns the JSON-RPC `result`.
    pub async fn web_search(&self, arguments: Value) -> Value {
        let (status, body) = self.rpc(tool_call(1, "web_search", arguments)).await;
        assert_eq!(status, 200, "tools/call answers 200: {body}");
        body["result"].clone()
    }

    /// Stops the server gracefully, waits until the audit queue is written, and returns the
    /// audit table of the SQLite database (empty when a custom audit log was used).
    pub async fn stop(mut self) -> AuditTable {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(handle) = self.handle.take() {
            handle
                .await
                .expect("the server task")
                .expect("the server stops cleanly");
        }
        if self.db_path.exists() {
            AuditTable::read(&self.db_path).await
        } else {
            AuditTable { rows: Vec::new() }
        }
    }
}

/// The audit rows in a database file.
pub struct AuditTable {
    pub rows: Vec<AuditRow>,
}

/// The columns tests look at.
#[derive(Debug, Clone)]
pub struct AuditRow {
    pub request_id: String,
    pub method: Option<String>,
    pub tool: Option<String>,
    pub outcome: String,
    pub http_status: i64,
    pub error_code: Option<String>,
    pub subject: Option<String>,
    pub provider: Option<String>,
    pub cache_hit: Option<bool>,
    pub upstream_attempts: Option<i64>,
    pub upstream_request_id: Option<String>,
    pub fallback_from: Option<String>,
    pub trace_id: Option<String>,
}

impl AuditTable {
    pub async fn read(path: &Path) -> Self {
        let pool = SqlitePoolOptions::new()
            .connect(&format!("sqlite://{}?mode=ro", path.display()))
            .await
            .expect("the database opens");
        let rows = sqlx::query(
            "SELECT request_id, method, tool, outcome, http_status, error_code, subject, \
             provider, cache_hit, upstream_attempts, upstream_request_id, fallback_from, \
             trace_id \
             FROM audit_events ORDER BY id",
        )
        .fetch_all(&pool)
        .await
        .expect("the audit table is readable")
        .into_iter()
        .map(|r| AuditRow {
            request_id: r.get("request_id"),
            method: r.get("method"),
            tool: r.get("tool"),
            outcome: r.get("outcome"),
            http_status: r.get("http_status"),
            error_code: r.get("error_code"),
            subject: r.get("subject"),
            provider: r.get("provider"),
            cache_hit: r.get("cache_hit"),
            upstream_attempts: r.get("upstream_attempts"),
            upstream_request_id: r.get("upstream_request_id"),
            fallback_from: r.get("fallback_from"),
            trace_id: r.get("trace_id"),
        })
        .collect();
        pool.close().await;
        Self { rows }
    }
}

/// A loopback port that was free a moment ago, for a server started later. It is taken from
/// below the kernel's ephemeral range, so neither an outgoing connection nor another test's
/// port-0 bind can take it in between (both draw from that range).
pub fn free_port() -> u16 {
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32_768);
    if ephemeral_low > 12_000 {
        for _ in 0..100 {
            let port = fastrand::u16(10_000..ephemeral_low);
            if TcpListener::bind(("127.0.0.1", port)).is_ok() {
                return port;
            }
        }
    }
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The `searchgate` binary, with a clean environment apart from `env`, run in `dir`.
pub fn searchgate(dir: &Path, env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_searchgate"));
    command
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default());
    for (key, value) in env {
        command.env(key, value);
    }
    command
}

/// Starts the binary as a server and waits until `/healthz` answers on `port`.
pub async fn spawn_binary(dir: &Path, port: u16, env: &[(&str, &str)]) -> Child {
    let mut child = searchgate(dir, env)
        .arg("serve")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let client = reqwest::Client::new();
    for _ in 0..100 {
        if let Ok(response) = client
            .get(format!("http://127.0.0.1:{port}/healthz"))
            .send()
            .await
            && response.status().is_success()
        {
            return child;
        }
        if let Some(status) = child.try_wait().expect("the child can be polled") {
            let output = child.wait_with_output().expect("output");
            panic!(
                "searchgate exited early with {status}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = child.kill();
    panic!("searchgate did not answer /healthz on port {port}");
}

/// Stops a binary the way an operator does (SIGTERM: requests in flight finish and the audit
/// trail is written) and returns what it printed.
pub async fn terminate(child: Child) -> Output {
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .expect("the wait completes")
        .expect("the child is waited for")
}
