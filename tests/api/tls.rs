//! HTTPS and HTTP/2 through the real binary: a certificate made here (rcgen), the MCP flow over
//! TLS with HTTP/1.1 and with h2 (ALPN), and with h2c on plain loopback; a renewed certificate
//! reaches new connections while open ones keep going; a broken renewal is refused and the
//! served certificate kept; SIGHUP reloads at once; an HTTP/2 stream flood is refused past the
//! stream limit; `:authority` gets the `Host` rules.

use std::{
    io::Write,
    path::Path,
    process::{Child, Stdio},
    time::{Duration, Instant},
};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use rmcp::{
    ServiceExt,
    model::{CallToolRequestParams, ClientCapabilities, Implementation, InitializeRequestParams},
    transport::{
        StreamableHttpClientTransport, streamable_http_client::StreamableHttpClientTransportConfig,
    },
};
use serde_json::{Value, json};

use crate::helpers::{free_port, searchgate, spawn_binary, terminate, tool_call};

/// A test certificate authority, and leaf certificates it signs for 127.0.0.1 and localhost.
struct Authority {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Authority {
    fn new() -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "searchgate test CA");
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        Self { issuer }
    }

    fn root(&self) -> reqwest::Certificate {
        reqwest::Certificate::from_pem(self.issuer.pem().as_bytes()).unwrap()
    }

    /// (certificate PEM, key PEM, certificate DER) of a leaf named `name`.
    fn leaf(&self, name: &str) -> (String, String, Vec<u8>) {
        let mut params =
            CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem(), cert.der().to_vec())
    }
}

/// Writes a leaf's files where the server reads them.
fn install(dir: &Path, leaf: &(String, String, Vec<u8>)) {
    // The key first, then the certificate: a reload between the two sees a pair that does not
    // match and keeps the served one, as with a real renewal.
    replace(&dir.join("key.pem"), &leaf.1);
    replace(&dir.join("cert.pem"), &leaf.0);
}

/// Writes `path` as certbot's hook does: beside it, then renamed over it, so that a reload
/// never reads half a file.
fn replace(path: &Path, contents: &str) {
    let new = path.with_extension("new");
    std::fs::write(&new, contents).unwrap();
    std::fs::rename(&new, path).unwrap();
}

/// `searchgate_tls_reloads_total{outcome}` in a `/metrics` text.
fn reloads(metrics: &str, outcome: &str) -> u64 {
    let series = format!("searchgate_tls_reloads_total{{outcome=\"{outcome}\"}} ");
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(&series))
        .and_then(|count| count.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {series} in {metrics}"))
}

fn tls_env(dir: &Path, port: &str, reload_secs: &str) -> Vec<(String, String)> {
    let path = |f: &str| dir.join(f).display().to_string();
    vec![
        ("PORT".into(), port.into()),
        ("SEARCHGATE_SERVER__TLS__CERT_PATH".into(), path("cert.pem")),
        ("SEARCHGATE_SERVER__TLS__KEY_PATH".into(), path("key.pem")),
        (
            "SEARCHGATE_SERVER__TLS__RELOAD_INTERVAL_SECS".into(),
            reload_secs.into(),
        ),
    ]
}

fn borrowed(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// A client that trusts `authority` and reports the certificate each response came over.
fn https_client(authority: &Authority) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .tls_certs_only([authority.root()])
        .tls_info(true)
}

/// The served binary, once `/healthz` answers over HTTPS.
async fn spawn_https(dir: &Path, env: &[(String, String)], client: &reqwest::Client) -> Child {
    let port = &env[0].1;
    let mut child = searchgate(dir, &borrowed(env))
        .arg("serve")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    for _ in 0..200 {
        if let Ok(response) = client
            .get(format!("https://127.0.0.1:{port}/healthz"))
            .send()
            .await
            && response.status().is_success()
        {
            return child;
        }
        if child.try_wait().unwrap().is_some() {
            let output = child.wait_with_output().unwrap();
            panic!(
                "searchgate exited: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("searchgate did not answer over HTTPS");
}

fn token(dir: &Path, env: &[(String, String)]) -> String {
    let output = searchgate(dir, &borrowed(env))
        .args(["token", "--scope", "web-search:read"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

/// The DER of the certificate `response` came over.
fn served_certificate(response: &reqwest::Response) -> Vec<u8> {
    response
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|info| info.peer_certificate())
        .expect("TLS info")
        .to_vec()
}

async fn tools_list(client: &reqwest::Client, url: &str, token: &str) -> reqwest::Response {
    let response = client
        .post(url)
        .bearer_auth(token)
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .header("mcp-protocol-version", "2025-11-25")
        .body(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response
}

/// Stops the binary with SIGTERM and returns what it logged.
async fn stop(child: Child) -> String {
    String::from_utf8_lossy(&terminate(child).await.stderr).into_owned()
}

/// Waits until a new client (a new connection, and no TLS session to resume, which would skip
/// the certificate) is served `der`.
async fn wait_for_certificate(authority: &Authority, url: &str, der: &[u8]) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let client = https_client(authority).build().unwrap();
        let response = client.get(url).send().await.unwrap();
        if served_certificate(&response) == der {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the new certificate was not served"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn https_serves_mcp_over_http1_and_h2_and_a_renewal_applies_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let authority = Authority::new();
    let first = authority.leaf("first");
    install(dir.path(), &first);
    let port = free_port().to_string();
    let env = tls_env(dir.path(), &port, "1");
    let h2 = https_client(&authority).build().unwrap();
    let child = spawn_https(dir.path(), &env, &h2).await;
    let base = format!("https://127.0.0.1:{port}");
    let mcp = format!("{base}/web-search/mcp");
    let token = token(dir.path(), &env);

    // The discovery document names the https resource.
    let metadata: Value = h2
        .get(format!(
            "{base}/.well-known/oauth-protected-resource/web-search/mcp"
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(metadata["resource"], mcp);

    // HTTP/2 by ALPN, and HTTP/1.1 for a client that offers only it.
    let response = tools_list(&h2, &mcp, &token).await;
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    assert_eq!(served_certificate(&response), first.2);
    let http1 = https_client(&authority).http1_only().build().unwrap();
    let response = tools_list(&http1, &mcp, &token).await;
    assert_eq!(response.version(), reqwest::Version::HTTP_11);

    // A whole MCP session with rmcp's client over HTTPS and h2.
    let transport = StreamableHttpClientTransport::with_client(
        h2.clone(),
        StreamableHttpClientTransportConfig::with_uri(mcp.as_str()).auth_header(token.clone()),
    );
    let session = InitializeRequestParams::new(
        ClientCapabilities::default(),
        Implementation::new("tls-test", "1.0"),
    )
    .serve(transport)
    .await
    .expect("the MCP handshake succeeds over HTTPS");
    let result = session
        .call_tool(
            CallToolRequestParams::new("web_search")
                .with_arguments(json!({"query": "rust tls"}).as_object().unwrap().clone()),
        )
        .await
        .unwrap();
    assert_ne!(result.is_error, Some(true), "{result:?}");
    session.cancel().await.unwrap();

    // A renewal: new connections get the new certificate, while a request in flight on a
    // connection opened before it (its body half sent) goes on to its answer.
    let (more, rest) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(1);
    let body = reqwest::Body::wrap_stream(futures::stream::unfold(rest, |mut rest| async {
        rest.recv().await.map(|chunk| (chunk, rest))
    }));
    let message =
        serde_json::to_vec(&tool_call(2, "web_search", json!({"query": "renewal"}))).unwrap();
    let (head, tail) = message.split_at(message.len() / 2);
    more.send(Ok(head.to_vec())).await.unwrap();
    let in_flight = tokio::spawn(
        http1
            .post(&mcp)
            .bearer_auth(&token)
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json")
            .header("content-length", message.len())
            .header("mcp-protocol-version", "2025-11-25")
            .body(body)
            .send(),
    );
    let renewed = authority.leaf("renewed");
    install(dir.path(), &renewed);
    wait_for_certificate(&authority, &format!("{base}/healthz"), &renewed.2).await;
    more.send(Ok(tail.to_vec())).await.unwrap();
    drop(more);
    let answered = in_flight.await.unwrap().unwrap();
    assert_eq!(answered.status(), 200, "the open connection was kept");
    assert_eq!(served_certificate(&answered), first.2);
    let answered: Value = answered.json().await.unwrap();
    assert!(answered["result"]["content"].is_array(), "{answered}");

    // A broken renewal (a key that is not the certificate's) is refused; the renewed
    // certificate stays.
    let other = authority.leaf("other");
    let metrics_url = format!("{base}/metrics");
    let metrics = || async {
        let response = h2.get(&metrics_url).send().await.unwrap();
        response.text().await.unwrap()
    };
    let before = metrics().await;
    let (loaded, refused) = (reloads(&before, "loaded"), reloads(&before, "refused"));
    assert_eq!(loaded, 1, "the renewal");
    replace(&dir.path().join("key.pem"), &first.1);
    replace(&dir.path().join("cert.pem"), &other.0);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let metrics = metrics().await;
        if reloads(&metrics, "refused") > refused {
            assert_eq!(reloads(&metrics, "loaded"), loaded, "nothing else loaded");
            assert!(metrics.contains("searchgate_tls_certificate_expiry_timestamp_seconds"));
            assert!(
                metrics.contains("searchgate_tls_files_refused 1"),
                "{metrics}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the broken renewal was not seen: {metrics}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let new = https_client(&authority).build().unwrap();
    let response = tools_list(&new, &mcp, &token).await;
    assert_eq!(served_certificate(&response), renewed.2);

    let log = stop(child).await;
    assert!(
        log.contains("does not belong to the certificate"),
        "the refusal says why: {log}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sighup_reloads_the_certificate_at_once_and_a_bad_pair_stops_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let authority = Authority::new();
    let first = authority.leaf("first");
    install(dir.path(), &first);
    let port = free_port().to_string();
    // No polling to speak of: only SIGHUP can bring the renewal in time.
    let env = tls_env(dir.path(), &port, "3600");
    let client = https_client(&authority).build().unwrap();
    let child = spawn_https(dir.path(), &env, &client).await;
    let renewed = authority.leaf("renewed");
    install(dir.path(), &renewed);
    std::process::Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .unwrap();
    wait_for_certificate(
        &authority,
        &format!("https://127.0.0.1:{port}/healthz"),
        &renewed.2,
    )
    .await;
    stop(child).await;

    // A key that does not match: start-up refuses, naming the setting and the reason.
    std::fs::write(dir.path().join("key.pem"), &first.1).unwrap();
    let output = searchgate(dir.path(), &borrowed(&env))
        .arg("serve")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("server.tls.cert_path") && stderr.contains("does not belong"),
        "{stderr}"
    );
}

#[tokio::test]
async fn check_config_describes_the_certificate_and_its_fit_to_the_public_url() {
    let dir = tempfile::tempdir().unwrap();
    let authority = Authority::new();
    install(dir.path(), &authority.leaf("described"));
    let port = free_port().to_string();
    let mut env = tls_env(dir.path(), &port, "30");
    let output = searchgate(dir.path(), &borrowed(&env))
        .arg("check-config")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    for expected in [
        "# TLS certificate",
        "subject: CN=described",
        "names: 127.0.0.1, localhost",
        "ok      expires: 4096-01-01",
        "matches the public URL's host 127.0.0.1",
    ] {
        assert!(stdout.contains(expected), "{expected}: {stdout}");
    }
    env.push((
        "SEARCHGATE_SERVER__PUBLIC_URL".into(),
        "https://search.example.com".into(),
    ));
    let output = searchgate(dir.path(), &borrowed(&env))
        .arg("check-config")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("PROBLEM the public URL's host search.example.com is not among"),
        "{stdout}"
    );
}

#[test]
fn production_refuses_a_plain_http_public_face_naming_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let base = [
        ("SEARCHGATE_PROFILE", "production"),
        ("SEARCHGATE_AUTH__PROVIDER", "oidc"),
        ("SEARCHGATE_AUTH__OIDC__ISSUER", "https://idp.example.com"),
        ("SEARCHGATE_SEARCH__PROVIDER", "tavily"),
        ("TAVILY_API_KEY", "tvly-test"),
    ];
    let check = |extra: &[(&str, &str)]| {
        let mut env = base.to_vec();
        env.extend_from_slice(extra);
        let output = searchgate(dir.path(), &env)
            .arg("check-config")
            .output()
            .unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let (code, stderr) = check(&[("SEARCHGATE_SERVER__PUBLIC_URL", "http://search.example.com")]);
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("server.public_url")
            && stderr.contains("SEARCHGATE_SERVER__TLS__CERT_PATH")
            && stderr.contains("SEARCHGATE_SERVER__TRUSTED_PROXIES"),
        "{stderr}"
    );
    let (code, stderr) = check(&[(
        "SEARCHGATE_SERVER__PUBLIC_URL",
        "https://search.example.com",
    )]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("server.trusted_proxies"), "{stderr}");
    let (code, stderr) = check(&[
        (
            "SEARCHGATE_SERVER__PUBLIC_URL",
            "https://search.example.com",
        ),
        ("SEARCHGATE_SERVER__TRUSTED_PROXIES", "10.0.0.0/8"),
    ]);
    assert!(
        !stderr.contains("server.public_url") && !stderr.contains("trusted_proxies"),
        "behind a trusted TLS proxy is fine ({code:?}): {stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn h2c_serves_mcp_on_loopback_and_authority_gets_the_host_rules() {
    let (dir, port, child) = plain(&[("SEARCHGATE_SERVER__BODY_TIMEOUT_SECS", "1")]).await;
    let owned: Vec<(String, String)> = vec![("PORT".into(), port.to_string())];
    let token = token(dir.path(), &owned);
    let h2c = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let mcp = format!("http://127.0.0.1:{port}/web-search/mcp");
    let response = h2c
        .post(&mcp)
        .bearer_auth(&token)
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .header("mcp-protocol-version", "2025-11-25")
        .json(&tool_call(1, "web_search", json!({"query": "h2c"})))
        .send()
        .await
        .unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert!(body["result"]["content"].is_array(), "{body}");

    // A foreign `:authority` (DNS rebinding) is refused like a foreign Host.
    let rebound = reqwest::Client::builder()
        .http2_prior_knowledge()
        .resolve("rebound.example", ([127, 0, 0, 1], port).into())
        .build()
        .unwrap();
    let response = rebound
        .post(format!("http://rebound.example:{port}/web-search/mcp"))
        .bearer_auth(&token)
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .body(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    assert_eq!(response.status(), 403);

    // An HTTP/2 body needs no declared length; one that stops arriving gets the body timeout.
    let (_more, rest) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(1);
    let never = reqwest::Body::wrap_stream(futures::stream::unfold(rest, |mut rest| async {
        rest.recv().await.map(|chunk| (chunk, rest))
    }));
    let response = tokio::time::timeout(
        Duration::from_secs(20),
        h2c.post(&mcp)
            .bearer_auth(&token)
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json")
            .header("mcp-protocol-version", "2025-11-25")
            .body(never)
            .send(),
    )
    .await
    .expect("answered at the body timeout, not left hanging")
    .unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    assert_eq!(response.status(), 408);
    assert!(response.headers().get("connection").is_none());
    stop(child).await;
}

/// The binary on a free loopback port (plain HTTP, h2c by prior knowledge) with `settings`:
/// its folder, its port, the process.
async fn plain(settings: &[(&str, &str)]) -> (tempfile::TempDir, u16, Child) {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let port_text = port.to_string();
    let mut env = vec![("PORT", port_text.as_str())];
    env.extend_from_slice(settings);
    let child = spawn_binary(dir.path(), port, &env).await;
    (dir, port, child)
}

/// HTTP/2 frames, written by hand so the test can break the rules a real client keeps.
mod frames {
    pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    pub const DATA: u8 = 0x0;
    pub const HEADERS: u8 = 0x1;
    pub const RST_STREAM: u8 = 0x3;
    pub const SETTINGS: u8 = 0x4;
    pub const PING: u8 = 0x6;
    pub const WINDOW_UPDATE: u8 = 0x8;
    pub const GOAWAY: u8 = 0x7;
    pub const END_STREAM: u8 = 0x1;
    pub const END_HEADERS: u8 = 0x4;
    pub const ACK: u8 = 0x1;
    pub const REFUSED_STREAM: u32 = 0x7;
    /// SETTINGS_MAX_CONCURRENT_STREAMS.
    pub const MAX_CONCURRENT_STREAMS: u16 = 0x3;

    pub fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let len = u32::try_from(payload.len()).unwrap().to_be_bytes();
        let mut out = vec![len[1], len[2], len[3], kind, flags];
        out.extend_from_slice(&stream.to_be_bytes());
        out.extend_from_slice(payload);
        out
    }

    /// A POST's header block announcing a body of `length` bytes (HPACK: indexed `:method POST`
    /// and `:scheme http`; literal `:path`, `:authority`, `content-type` and `content-length`
    /// with indexed names).
    pub fn post(path: &str, authority: &str, length: &str) -> Vec<u8> {
        let mut block = vec![0x83, 0x86];
        for (index, value) in [
            (4, path),
            (1, authority),
            (31, "application/json"),
            (28, length),
        ] {
            integer(&mut block, 0x00, 4, index);
            integer(&mut block, 0x00, 7, value.len());
            block.extend_from_slice(value.as_bytes());
        }
        block
    }

    /// A GET's header block (indexed `:method GET` and `:scheme http`, literal `:path` and
    /// `:authority`).
    pub fn get(path: &str, authority: &str) -> Vec<u8> {
        let mut block = vec![0x82, 0x86];
        for (index, value) in [(4, path), (1, authority)] {
            integer(&mut block, 0x00, 4, index);
            integer(&mut block, 0x00, 7, value.len());
            block.extend_from_slice(value.as_bytes());
        }
        block
    }

    /// An HPACK integer (RFC 7541 §5.1) with an `bits`-bit prefix after `flags`.
    fn integer(out: &mut Vec<u8>, flags: u8, bits: u32, value: usize) {
        let max = (1usize << bits) - 1;
        if value < max {
            out.push(flags | u8::try_from(value).unwrap());
            return;
        }
        out.push(flags | u8::try_from(max).unwrap());
        let mut rest = value - max;
        while rest >= 128 {
            out.push(u8::try_from(rest % 128).unwrap() | 0x80);
            rest /= 128;
        }
        out.push(u8::try_from(rest).unwrap());
    }

    /// A prior-knowledge HTTP/2 connection to the binary on `port`: the preface and the client's
    /// `settings` sent, reads given up after 15 s.
    pub fn open(port: u16, settings: &[u8]) -> std::net::TcpStream {
        use std::io::Write;
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(15)))
            .unwrap();
        stream.write_all(PREFACE).unwrap();
        stream.write_all(&frame(SETTINGS, 0, 0, settings)).unwrap();
        stream
    }

    /// (kind, flags, stream, payload) of the next frame.
    pub fn read(stream: &mut impl std::io::Read) -> std::io::Result<(u8, u8, u32, Vec<u8>)> {
        let mut head = [0u8; 9];
        stream.read_exact(&mut head)?;
        let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
        let id = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
        let mut payload = vec![0; len];
        stream.read_exact(&mut payload)?;
        Ok((head[3], head[4], id, payload))
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_http2_stream_flood_is_refused_past_the_stream_limit() {
    let (_dir, port, child) = plain(&[("SEARCHGATE_SERVER__HTTP2_MAX_STREAMS", "4")]).await;
    let refused = tokio::task::spawn_blocking(move || {
        use frames::*;
        let mut stream = open(port, &[]);
        // The server's settings name the limit; acknowledged, they bind both sides.
        let mut limit = None;
        let mut acked = false;
        while limit.is_none() || !acked {
            let (kind, flags, _, payload) = read(&mut stream).unwrap();
            if kind == SETTINGS && flags & ACK == 0 {
                for setting in payload.chunks(6) {
                    if u16::from_be_bytes([setting[0], setting[1]]) == MAX_CONCURRENT_STREAMS {
                        limit = Some(u32::from_be_bytes([
                            setting[2], setting[3], setting[4], setting[5],
                        ]));
                    }
                }
                stream.write_all(&frame(SETTINGS, ACK, 0, &[])).unwrap();
            } else if kind == SETTINGS {
                acked = true;
            }
        }
        assert_eq!(limit, Some(4));
        // Forty requests at once, none of them finished: registrations, which are read
        // before they are answered, and whose bodies never come.
        let authority = format!("127.0.0.1:{port}");
        for i in 0..40u32 {
            let block = post("/oauth/register", &authority, "100");
            stream
                .write_all(&frame(HEADERS, END_HEADERS, 2 * i + 1, &block))
                .unwrap();
        }
        let mut refused = Vec::new();
        while refused.len() < 36 {
            match read(&mut stream) {
                Ok((RST_STREAM, _, id, payload)) => {
                    let code = u32::from_be_bytes(payload[..4].try_into().unwrap());
                    if code == REFUSED_STREAM {
                        refused.push(id);
                    }
                }
                Ok((GOAWAY, ..)) | Err(_) => break,
                Ok(_) => {}
            }
        }
        refused
    })
    .await
    .unwrap();
    assert_eq!(
        refused.len(),
        36,
        "every stream past the first four is refused: {refused:?}"
    );
    assert!(refused.iter().all(|id| *id > 7), "{refused:?}");
    // The server is unharmed.
    let health = reqwest::get(format!("http://127.0.0.1:{port}/healthz"))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    stop(child).await;
}

/// An HTTP/2 request that declares `content-length: 0` but does not end its stream has a body
/// still to come as far as the stream goes: it gets the body timeout, not an endless wait.
#[tokio::test(flavor = "multi_thread")]
async fn an_http2_body_declared_empty_but_never_ended_gets_the_body_timeout() {
    let (_dir, port, child) = plain(&[("SEARCHGATE_SERVER__BODY_TIMEOUT_SECS", "1")]).await;
    let answer = tokio::task::spawn_blocking(move || {
        use frames::*;
        let mut stream = open(port, &[]);
        let block = post("/oauth/register", &format!("127.0.0.1:{port}"), "0");
        stream
            .write_all(&frame(HEADERS, END_HEADERS, 1, &block))
            .unwrap();
        let mut body = Vec::new();
        loop {
            let (kind, flags, id, payload) = read(&mut stream).expect("an answer in time");
            if kind == SETTINGS && flags & ACK == 0 {
                stream.write_all(&frame(SETTINGS, ACK, 0, &[])).unwrap();
            }
            if id == 1 && kind == DATA {
                body.extend_from_slice(&payload);
            }
            if id == 1 && flags & END_STREAM != 0 {
                return String::from_utf8_lossy(&body).into_owned();
            }
        }
    })
    .await
    .unwrap();
    assert!(answer.contains("did not arrive within 1 s"), "{answer}");
    stop(child).await;
}

/// An HTTP/2 client that never opens its flow-control window cannot be sent its answer: the
/// connection is closed at the idle limit, not held forever as a request being served, even
/// while the client asks for (and takes) other answers on other streams.
#[tokio::test(flavor = "multi_thread")]
async fn an_http2_client_that_takes_no_answer_is_closed_at_the_idle_limit() {
    let (_dir, port, child) = plain(&[
        ("SEARCHGATE_SERVER__HEADER_TIMEOUT_SECS", "1"),
        ("SEARCHGATE_SERVER__IDLE_TIMEOUT_SECS", "2"),
    ])
    .await;
    let (stuck, taken, closed_after) = tokio::task::spawn_blocking(move || {
        use frames::*;
        // SETTINGS_INITIAL_WINDOW_SIZE = 0: no stream may be sent DATA until the client says.
        let mut stream = open(port, &[0, 4, 0, 0, 0, 0]);
        let (frames, received) = std::sync::mpsc::channel();
        let mut reader = stream.try_clone().unwrap();
        std::thread::spawn(move || {
            while let Ok(frame) = read(&mut reader) {
                if frames.send(frame).is_err() {
                    break;
                }
            }
        });
        let authority = format!("127.0.0.1:{port}");
        let block = get("/openapi.json", &authority);
        stream
            .write_all(&frame(HEADERS, END_HEADERS | END_STREAM, 1, &block))
            .unwrap();
        let started = Instant::now();
        let (mut stuck, mut taken) = (0, 0);
        // Every 300 ms another request, its stream's window opened so its answer is taken.
        for id in (3..).step_by(2) {
            let block = get("/healthz", &authority);
            let sent = stream
                .write_all(&frame(HEADERS, END_HEADERS | END_STREAM, id, &block))
                .and_then(|()| {
                    let open = 65_535u32.to_be_bytes();
                    stream.write_all(&frame(WINDOW_UPDATE, 0, id, &open))
                });
            let until = Instant::now() + Duration::from_millis(300);
            loop {
                match received.recv_timeout(until.saturating_duration_since(Instant::now())) {
                    Ok((SETTINGS, flags, ..)) if flags & ACK == 0 => {
                        let _ = stream.write_all(&frame(SETTINGS, ACK, 0, &[]));
                    }
                    Ok((DATA, _, 1, payload)) => stuck += payload.len(),
                    Ok((DATA, _, _, payload)) => taken += payload.len(),
                    Ok((GOAWAY, ..)) | Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                        return (stuck, taken, started.elapsed());
                    }
                    Ok(_) => {}
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => break,
                }
            }
            if sent.is_err() || started.elapsed() > Duration::from_secs(15) {
                return (stuck, taken, started.elapsed());
            }
        }
        unreachable!()
    })
    .await
    .unwrap();
    assert_eq!(stuck, 0, "no window, no data");
    assert!(taken > 0, "the other streams' answers were taken");
    assert!(
        closed_after < Duration::from_secs(8),
        "closed at the idle limit (2 s) of the untaken answer: {closed_after:?}"
    );
    // Others are served meanwhile and after.
    let health = reqwest::get(format!("http://127.0.0.1:{port}/healthz"))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    stop(child).await;
}

/// PING and other frames between HTTP/2 requests are no request's headers: an idle h2
/// connection that a client keeps alive with PINGs lasts the idle limit, not the header limit.
#[tokio::test(flavor = "multi_thread")]
async fn pings_on_an_idle_http2_connection_keep_the_idle_limit() {
    let (_dir, port, child) = plain(&[
        ("SEARCHGATE_SERVER__HEADER_TIMEOUT_SECS", "1"),
        ("SEARCHGATE_SERVER__IDLE_TIMEOUT_SECS", "4"),
    ])
    .await;
    let (acked, lasted) = tokio::task::spawn_blocking(move || {
        use frames::*;
        let mut stream = open(port, &[]);
        let block = get("/healthz", &format!("127.0.0.1:{port}"));
        stream
            .write_all(&frame(HEADERS, END_HEADERS | END_STREAM, 1, &block))
            .unwrap();
        // Until the answer has ended.
        loop {
            let (kind, flags, id, _) = read(&mut stream).unwrap();
            if kind == SETTINGS && flags & ACK == 0 {
                stream.write_all(&frame(SETTINGS, ACK, 0, &[])).unwrap();
            }
            if id == 1 && flags & END_STREAM != 0 {
                break;
            }
        }
        let answered = Instant::now();
        // A PING every 300 ms, each acknowledged, well past the header limit.
        let mut acked = 0;
        while answered.elapsed() < Duration::from_millis(2500) {
            stream.write_all(&frame(PING, 0, 0, &[7; 8])).unwrap();
            loop {
                match read(&mut stream) {
                    Ok((PING, flags, ..)) if flags & ACK != 0 => break,
                    Ok(_) => {}
                    Err(error) => return (acked, Err(error.kind())),
                }
            }
            acked += 1;
            std::thread::sleep(Duration::from_millis(300));
        }
        // Then the idle limit closes it.
        loop {
            match read(&mut stream) {
                Ok(_) => {}
                Err(_) => return (acked, Ok(answered.elapsed())),
            }
        }
    })
    .await
    .unwrap();
    let lasted = lasted.unwrap_or_else(|error| {
        panic!("closed after {acked} acknowledged pings: {error:?}, before the idle limit")
    });
    assert!(acked >= 8, "{acked} pings acknowledged");
    assert!(
        lasted >= Duration::from_millis(3500) && lasted < Duration::from_secs(8),
        "closed by the idle limit (4 s): {lasted:?}"
    );
    stop(child).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stalled_handshake_holds_only_its_own_connection_until_the_header_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let authority = Authority::new();
    install(dir.path(), &authority.leaf("patient"));
    let port = free_port().to_string();
    let mut env = tls_env(dir.path(), &port, "30");
    env.push(("SEARCHGATE_SERVER__HEADER_TIMEOUT_SECS".into(), "1".into()));
    let client = https_client(&authority).build().unwrap();
    let child = spawn_https(dir.path(), &env, &client).await;
    let number: u16 = port.parse().unwrap();
    let stalled = tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", number)).unwrap();
        // The first bytes of a ClientHello record, and then nothing.
        stream.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00]).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let started = Instant::now();
        let mut byte = [0u8; 1];
        let read = std::io::Read::read(&mut stream, &mut byte);
        (started.elapsed(), read.map_err(|e| e.kind()))
    });
    // Meanwhile others are served: the handshake does not run in the accept loop.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let response = client
        .get(format!("https://127.0.0.1:{port}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let (waited, read) = stalled.await.unwrap();
    assert!(
        matches!(read, Ok(0) | Err(std::io::ErrorKind::ConnectionReset)),
        "the connection is closed: {read:?}"
    );
    assert!(
        waited < Duration::from_secs(5),
        "closed by the header timeout, not the client's patience: {waited:?}"
    );
    stop(child).await;
}
