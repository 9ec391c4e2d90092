//! Running searchgate as a service (deploy/): the systemd unit passes `systemd-analyze verify`;
//! the sample environment file is a valid configuration; the container's health check and entry
//! point are subcommands the binary has, and `searchgate healthcheck` tells a healthy server from
//! none; and the Caddy and nginx configurations of deploy/README.md, taken from the README as
//! written (only ports, the certificate paths and the upstream port replaced), put the real proxy
//! with TLS in front of the real binary: MCP calls pass, and the audit trail names the client,
//! neither the proxy nor the address the client made up. A missing proxy skips its test with the
//! reason, or fails it when `SEARCHGATE_TEST_REQUIRE_PROXIES` is set (`.ci/run` installs both
//! and sets it); a missing systemd-analyze skips.

use std::{
    net::{IpAddr, SocketAddr},
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    time::Duration,
};

use serde_json::{Value, json};
use sqlx::{Row, sqlite::SqlitePoolOptions};

use crate::helpers::{LEGACY, free_port, searchgate, spawn_binary, tool_call};

/// Where the test client connects from: neither the proxy's address nor the one it claims.
const CLIENT: &str = "127.0.0.5";
/// What the client claims to be in `X-Forwarded-For`.
const SPOOFED: &str = "6.6.6.6";
/// The public host name of deploy/README.md, resolved to loopback by the test client.
const HOST: &str = "search.example.com";

fn repo_file(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn read_repo_file(path: &str) -> String {
    std::fs::read_to_string(repo_file(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// `name` on PATH or in the sbin folders (nginx lives in /usr/sbin, which a user's PATH may
/// lack).
fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// The proxy `name`: `SEARCHGATE_TEST_<NAME>`, else found by [`find_program`]. None when
/// missing, after saying so; a failure instead when `SEARCHGATE_TEST_REQUIRE_PROXIES` is set.
fn proxy_program(name: &str) -> Option<PathBuf> {
    let variable = format!("SEARCHGATE_TEST_{}", name.to_ascii_uppercase());
    let found = std::env::var_os(&variable)
        .map(PathBuf::from)
        .or_else(|| find_program(name));
    if found.is_none() {
        let reason = format!(
            "no {name} (apt-get install --no-install-recommends {name}, or set {variable})"
        );
        assert!(
            std::env::var_os("SEARCHGATE_TEST_REQUIRE_PROXIES").is_none(),
            "SEARCHGATE_TEST_REQUIRE_PROXIES is set but there is {reason}"
        );
        eprintln!("SKIPPED: {reason}");
    }
    found
}

/// The body of the one fenced block of deploy/README.md that holds the line `marker`.
fn readme_block(marker: &str) -> String {
    let readme = read_repo_file("deploy/README.md");
    let mut blocks = Vec::new();
    let mut open: Option<Vec<&str>> = None;
    for line in readme.lines() {
        let fence = line.starts_with("```");
        match (&mut open, fence) {
            (None, true) => open = Some(Vec::new()),
            (Some(lines), true) => {
                blocks.push(format!("{}\n", lines.join("\n")));
                open = None;
            }
            (Some(lines), false) => lines.push(line),
            (None, false) => {}
        }
    }
    let mut found: Vec<String> = blocks
        .into_iter()
        .filter(|block| block.lines().any(|line| line.trim() == marker))
        .collect();
    assert_eq!(
        found.len(),
        1,
        "deploy/README.md has exactly one fenced block with the line {marker:?}"
    );
    found.remove(0)
}

/// `text` with its one `from` replaced: a README edit that removes or repeats it must update
/// the test, not slip past it.
fn replace_once(text: &str, from: &str, to: &str) -> String {
    assert_eq!(
        text.matches(from).count(),
        1,
        "the README's configuration has {from:?} once (the test replaces it):\n{text}"
    );
    text.replacen(from, to, 1)
}

/// A child process that is killed when the test ends, however it ends.
struct Running(Option<Child>);

impl Running {
    /// Stops it with SIGTERM, the way an operator does (searchgate flushes its audit trail),
    /// and returns what it printed.
    async fn terminate(mut self) -> Output {
        crate::helpers::terminate(self.0.take().expect("still running")).await
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[test]
fn the_systemd_unit_passes_systemd_analyze_verify() {
    let Some(analyze) = find_program("systemd-analyze") else {
        eprintln!("SKIPPED: no systemd-analyze (Debian's systemd package has it)");
        return;
    };
    let unit = read_repo_file("deploy/systemd/searchgate.service");
    // verify checks that ExecStart names an executable: the binary under test stands in for
    // /usr/local/bin/searchgate.
    let unit = replace_once(
        &unit,
        "ExecStart=/usr/local/bin/searchgate serve",
        &format!("ExecStart={} serve", env!("CARGO_BIN_EXE_searchgate")),
    );
    for (setting, why) in [
        ("User=searchgate", "a dedicated user"),
        ("StateDirectory=searchgate", "the SQLite file's folder"),
        (
            "WorkingDirectory=/var/lib/searchgate",
            "sqlite://searchgate.db lands there",
        ),
        (
            "EnvironmentFile=/etc/searchgate/searchgate.env",
            "the settings",
        ),
        (
            "ExecReload=/bin/kill -HUP $MAINPID",
            "reload re-reads the certificate",
        ),
        ("ProtectSystem=strict", "a read-only system"),
    ] {
        assert!(
            unit.lines().any(|line| line == setting),
            "the unit has {setting} ({why})"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("searchgate.service");
    std::fs::write(&path, unit).unwrap();
    let output = Command::new(analyze)
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .expect("systemd-analyze runs");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    // verify exits 0 after an unknown or unparsable setting: it only says so, and is ignored.
    assert!(
        output.status.success() && said.trim().is_empty(),
        "systemd-analyze verify finds nothing to say about the unit ({}):\n{said}",
        output.status
    );
    // TimeoutStopSec outlasts the default shutdown grace (10 s) with room for the audit flush.
    let stop = read_repo_file("deploy/systemd/searchgate.service")
        .lines()
        .find_map(|l| l.strip_prefix("TimeoutStopSec="))
        .and_then(|v| v.trim_end_matches('s').parse::<u64>().ok())
        .expect("the unit sets TimeoutStopSec in seconds");
    assert!(stop > 10, "TimeoutStopSec={stop}s exceeds the 10 s grace");
}

#[test]
fn the_sysusers_file_creates_the_service_user() {
    let Some(sysusers) = find_program("systemd-sysusers") else {
        eprintln!("SKIPPED: no systemd-sysusers (Debian's systemd package has it)");
        return;
    };
    let root = tempfile::tempdir().unwrap();
    let output = Command::new(sysusers)
        .arg("--dry-run")
        .arg(format!("--root={}", root.path().display()))
        .arg(repo_file("deploy/systemd/searchgate.sysusers"))
        .output()
        .expect("systemd-sysusers runs");
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{said}");
    assert!(
        said.contains("Creating user 'searchgate'") && said.contains("Creating group 'searchgate'"),
        "the user and group the unit names: {said}"
    );
}

/// `KEY=VALUE` lines of an environment file, comments and blank lines left out.
fn env_file(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            let (key, value) = line.split_once('=').expect("KEY=VALUE");
            (key.to_owned(), value.to_owned())
        })
        .collect()
}

#[test]
fn the_sample_environment_file_is_a_valid_production_configuration() {
    let variables = env_file(&read_repo_file("deploy/systemd/searchgate.env.example"));
    let dir = tempfile::tempdir().unwrap();
    let mut env: Vec<(&str, &str)> = variables
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    // The probes check-config makes must not reach Tavily with a made-up key: nothing listens
    // on port 1. (login.example.com does not resolve.)
    env.push(("SEARCHGATE_SEARCH__TAVILY__BASE_URL", "http://127.0.0.1:1"));
    let output = searchgate(dir.path(), &env)
        .arg("check-config")
        .output()
        .expect("the binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    // 2 is a configuration that cannot be used; 1 is a probe that failed (no IdP here).
    assert_ne!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stdout.contains("profile = \"production\"") && stdout.contains("127.0.0.1:10000"),
        "the file's settings are in effect: {stdout}"
    );
}

/// The arguments of a Dockerfile instruction in exec form (`["/path", "arg", …]`).
fn exec_form(dockerfile: &str, instruction: &str) -> Vec<String> {
    // Continuation lines joined, so `HEALTHCHECK --interval=… \` + `CMD […]` is one line.
    let joined = dockerfile.replace("\\\n", " ");
    let line = joined
        .lines()
        .find(|l| l.starts_with(&format!("{instruction} ")))
        .unwrap_or_else(|| panic!("the Dockerfile has {instruction}"));
    let array = &line[line.find('[').expect("exec form")..=line.rfind(']').expect("exec form")];
    serde_json::from_str(array).expect("a JSON array of strings")
}

#[test]
fn the_container_runs_subcommands_the_binary_has() {
    let dockerfile = read_repo_file("Dockerfile");
    let entrypoint = exec_form(&dockerfile, "ENTRYPOINT");
    let cmd = exec_form(&dockerfile, "CMD");
    let healthcheck = exec_form(&dockerfile, "HEALTHCHECK");
    assert_eq!(entrypoint, ["/usr/local/bin/searchgate"]);
    assert_eq!(
        healthcheck[0], "/usr/local/bin/searchgate",
        "{healthcheck:?}"
    );
    assert!(dockerfile.contains("COPY --from=build /out/searchgate /usr/local/bin/searchgate"));
    // No engine here (and none in CI) to build the image: the binary under test stands in for
    // the image's, with each subcommand's --help (which fails for an unknown one).
    let dir = tempfile::tempdir().unwrap();
    for args in [&cmd[..], &healthcheck[1..]] {
        let output = searchgate(dir.path(), &[])
            .args(args)
            .arg("--help")
            .output()
            .expect("the binary runs");
        assert!(
            output.status.success(),
            "searchgate {} is a subcommand: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    assert!(
        dockerfile.lines().any(|l| l == "EXPOSE 10000")
            && dockerfile.contains("SEARCHGATE_SERVER__BIND=0.0.0.0:10000"),
        "the exposed port is the one it binds"
    );
    let ignored = read_repo_file(".dockerignore");
    for pattern in ["target", "**/node_modules", ".git", "**/*.db"] {
        assert!(
            ignored.lines().any(|l| l == pattern),
            ".dockerignore keeps {pattern} out of the build context"
        );
    }
}

/// `searchgate healthcheck ARGS` in `dir` with `env`, waited for at most 30 s (a hang fails).
async fn healthcheck(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut command = searchgate(dir, env);
    command.arg("healthcheck").args(args);
    let run = tokio::task::spawn_blocking(move || command.output().expect("the binary runs"));
    tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .expect("healthcheck returns instead of hanging")
        .expect("the task completes")
}

#[tokio::test]
async fn healthcheck_exits_0_for_a_live_server_and_1_when_none_answers() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port().to_string();
    let env = [("PORT", port.as_str())];
    let server = Running(Some(
        spawn_binary(dir.path(), port.parse().unwrap(), &env).await,
    ));

    // Its URL from the same settings as serve (PORT here), as in the container.
    let healthy = healthcheck(dir.path(), &env, &[]).await;
    assert_eq!(
        healthy.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&healthy.stderr)
    );
    assert!(String::from_utf8_lossy(&healthy.stdout).contains(&format!("127.0.0.1:{port}")));
    // A proxy set for the outbound search calls does not carry the probe.
    let proxied = [
        ("PORT", port.as_str()),
        ("HTTP_PROXY", "http://127.0.0.1:9"),
        ("http_proxy", "http://127.0.0.1:9"),
        ("ALL_PROXY", "http://127.0.0.1:9"),
    ];
    let through_proxy = healthcheck(dir.path(), &proxied, &[]).await;
    assert_eq!(
        through_proxy.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&through_proxy.stderr)
    );
    // A 404 is not healthy.
    let url = format!("http://127.0.0.1:{port}/healthz-not-here");
    let wrong = healthcheck(dir.path(), &[], &["--url", &url]).await;
    assert_eq!(wrong.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("404"));

    server.terminate().await;
    let gone = healthcheck(dir.path(), &env, &[]).await;
    assert_eq!(gone.status.code(), Some(1), "nothing listens any more");
    let said = String::from_utf8_lossy(&gone.stderr);
    assert_eq!(said.lines().count(), 1, "one line says why: {said}");
    assert!(
        said.contains("unhealthy") && said.contains("refused"),
        "{said}"
    );
}

#[tokio::test]
async fn healthcheck_gives_up_on_a_server_that_never_answers_after_its_timeout() {
    // Accepts connections (the kernel does, from the backlog) and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/healthz", silent.local_addr().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let output = healthcheck(dir.path(), &[], &["--url", &url, "--timeout", "1"]).await;
    assert_eq!(output.status.code(), Some(1));
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(said.contains("did not answer within 1s"), "{said}");
    drop(silent);
}

/// A self-signed CA and a certificate for [`HOST`] it signed, written as certbot writes them
/// (`fullchain.pem`: the certificate, then the CA; `privkey.pem`); returns the CA's PEM for the
/// client to trust.
fn write_certificates(dir: &Path) -> (PathBuf, PathBuf, String) {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose,
        IsCa, KeyPair, KeyUsagePurpose,
    };
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca.distinguished_name
        .push(DnType::CommonName, "searchgate deploy test CA");
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    let mut leaf = CertificateParams::new(vec![HOST.to_owned()]).unwrap();
    leaf.distinguished_name.push(DnType::CommonName, HOST);
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let key = KeyPair::generate().unwrap();
    let cert = leaf.signed_by(&key, &ca).unwrap();
    let chain = dir.join("fullchain.pem");
    let private = dir.join("privkey.pem");
    std::fs::write(&chain, format!("{}{}", cert.pem(), ca.pem())).unwrap();
    std::fs::write(&private, key.serialize_pem()).unwrap();
    (chain, private, ca.pem())
}

/// A client that trusts only the test CA, reaches [`HOST`] at the proxy on loopback, and
/// connects from [`CLIENT`].
fn client_of(ca_pem: &str, proxy_port: u16) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap()])
        .resolve(HOST, SocketAddr::from(([127, 0, 0, 1], proxy_port)))
        .local_address(CLIENT.parse::<IpAddr>().unwrap())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// searchgate, with the settings deploy/README.md gives layouts (b) and (c), behind a proxy
/// that will listen on `proxy_port`: the state folder, the environment, the process.
struct Upstream {
    dir: tempfile::TempDir,
    port: u16,
    env: Vec<(&'static str, String)>,
    process: Running,
}

impl Upstream {
    async fn start(proxy_port: u16) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = loop {
            let port = free_port();
            if port != proxy_port {
                break port;
            }
        };
        let env = vec![
            ("PORT", port.to_string()),
            ("SEARCHGATE_SERVER__TRUSTED_PROXIES", "127.0.0.1".to_owned()),
            (
                "SEARCHGATE_SERVER__PUBLIC_URL",
                format!("https://{HOST}:{proxy_port}"),
            ),
        ];
        let child = spawn_binary(dir.path(), port, &borrowed(&env)).await;
        Self {
            dir,
            port,
            env,
            process: Running(Some(child)),
        }
    }

    fn token(&self) -> String {
        let output = searchgate(self.dir.path(), &borrowed(&self.env))
            .args(["token", "--scope", "web-search:read"])
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        String::from_utf8(output.stdout).unwrap().trim().to_owned()
    }
}

fn borrowed<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'a str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// Starts a proxy with its output in `log` (a file: nobody drains a pipe while the test runs).
fn start_proxy(command: &mut Command, log: &Path) -> Running {
    let file = std::fs::File::create(log).unwrap();
    let child = command
        .stdin(Stdio::null())
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .spawn()
        .unwrap_or_else(|e| panic!("{command:?} starts: {e}"));
    Running(Some(child))
}

/// Waits until the proxy forwards `/healthz`; fails with what the proxy logged if it stopped or
/// never forwarded.
async fn wait_for_proxy(client: &reqwest::Client, port: u16, proxy: &mut Running, log: &Path) {
    let url = format!("https://{HOST}:{port}/healthz");
    let logged = || std::fs::read_to_string(log).unwrap_or_default();
    let mut last = String::new();
    for _ in 0..200 {
        match client.get(&url).send().await {
            Ok(response) if response.status() == 200 => return,
            Ok(response) => last = format!("answered {}", response.status()),
            Err(error) => last = format!("{error:?}"),
        }
        let child = proxy.0.as_mut().expect("still running");
        if let Some(status) = child.try_wait().expect("the child can be polled") {
            panic!("the proxy stopped ({status}):\n{}", logged());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the proxy did not forward {url} ({last}):\n{}", logged());
}

/// An MCP POST through the proxy, with the client's made-up `X-Forwarded-For` and `Forwarded`
/// (which neither proxy writes, so both pass it on).
async fn mcp(client: &reqwest::Client, port: u16, token: &str, message: Value) -> Value {
    let response = client
        .post(format!("https://{HOST}:{port}/web-search/mcp"))
        .bearer_auth(token)
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .header("mcp-protocol-version", LEGACY)
        .header("x-forwarded-for", SPOOFED)
        .header("forwarded", format!("for={SPOOFED}"))
        .json(&message)
        .send()
        .await
        .expect("the proxy answers");
    let status = response.status();
    let text = response.text().await.unwrap();
    assert_eq!(status, 200, "{message}: {text}");
    serde_json::from_str(&text).unwrap_or_else(|_| panic!("a JSON answer: {text}"))
}

/// (method, source_addr, peer_addr) of each audit row, oldest first.
async fn audit_addresses(db: &Path) -> Vec<(String, String, String)> {
    let pool = SqlitePoolOptions::new()
        .connect(&format!("sqlite://{}?mode=ro", db.display()))
        .await
        .unwrap();
    let rows = sqlx::query(
        "SELECT COALESCE(method, '') AS method, source_addr, peer_addr FROM audit_events \
         ORDER BY id",
    )
    .fetch_all(&pool)
    .await
    .unwrap()
    .into_iter()
    .map(|r| (r.get("method"), r.get("source_addr"), r.get("peer_addr")))
    .collect();
    pool.close().await;
    rows
}

/// What both proxy layouts must do, through the proxy on `port`: the MCP calls pass, /metrics
/// stays inside, and the audit rows name the client as the source and the proxy's loopback
/// address as the peer.
async fn check_layout(upstream: Upstream, client: &reqwest::Client, port: u16) {
    let token = upstream.token();
    let listed = mcp(
        client,
        port,
        &token,
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}),
    )
    .await;
    let tools: Vec<&str> = listed["result"]["tools"]
        .as_array()
        .expect("a tool list")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(tools.contains(&"web_search"), "{listed}");
    let searched = mcp(
        client,
        port,
        &token,
        tool_call(
            2,
            "web_search",
            json!({"query": "searchgate behind a proxy"}),
        ),
    )
    .await;
    assert_ne!(
        searched["result"]["isError"],
        Value::Bool(true),
        "{searched}"
    );
    assert!(
        searched["result"]["content"]
            .as_array()
            .is_some_and(|c| !c.is_empty()),
        "results: {searched}"
    );
    let metrics = client
        .get(format!("https://{HOST}:{port}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        metrics.status(),
        404,
        "/metrics is not served to the internet"
    );

    let Upstream { dir, process, .. } = upstream;
    process.terminate().await;
    let rows = audit_addresses(&dir.path().join("searchgate.db")).await;
    let calls: Vec<_> = rows
        .iter()
        .filter(|(method, _, _)| method == "tools/list" || method == "tools/call")
        .collect();
    assert_eq!(calls.len(), 2, "one row per call: {rows:?}");
    for (method, source, peer) in calls {
        assert_eq!(
            source, CLIENT,
            "{method}: the client, not {SPOOFED} it claimed"
        );
        let peer_ip = peer.rsplit_once(':').expect("ip:port").0;
        assert_eq!(peer_ip, "127.0.0.1", "{method}: the proxy is the TCP peer");
    }
}

#[tokio::test]
async fn nginx_as_the_readme_configures_it_forwards_mcp_calls_and_the_client_address() {
    let Some(nginx) = proxy_program("nginx") else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let (chain, key, ca) = write_certificates(work.path());
    let port = free_port();
    let upstream = Upstream::start(port).await;

    let site = readme_block("# tested by tests/api/deploy.rs (nginx)");
    let site = replace_once(
        &site,
        "server 127.0.0.1:10000;",
        &format!("server 127.0.0.1:{};", upstream.port),
    );
    // The port, on loopback only: the test opens nothing to the network.
    let site = replace_once(
        &site,
        "listen 443 ssl http2;",
        &format!("listen 127.0.0.1:{port} ssl http2;"),
    );
    let site = replace_once(
        &site,
        "/etc/letsencrypt/live/search.example.com/fullchain.pem",
        &chain.display().to_string(),
    );
    let site = replace_once(
        &site,
        "/etc/letsencrypt/live/search.example.com/privkey.pem",
        &key.display().to_string(),
    );
    std::fs::write(work.path().join("searchgate.conf"), site).unwrap();
    // The rest of Debian's /etc/nginx/nginx.conf that matters here: the site inside `http`,
    // every file nginx writes in the temporary folder.
    let root = work.path().display();
    let main = format!(
        "worker_processes 1;\n\
         events {{ worker_connections 64; }}\n\
         http {{\n\
         access_log off;\n\
         client_body_temp_path {root}/client_body;\n\
         proxy_temp_path {root}/proxy;\n\
         fastcgi_temp_path {root}/fastcgi;\n\
         uwsgi_temp_path {root}/uwsgi;\n\
         scgi_temp_path {root}/scgi;\n\
         include {root}/searchgate.conf;\n\
         }}\n"
    );
    let conf = work.path().join("nginx.conf");
    std::fs::write(&conf, main).unwrap();
    // In the foreground, one process as the user running the test, errors on stderr.
    let log = work.path().join("nginx.log");
    let mut proxy = start_proxy(
        Command::new(nginx)
            .arg("-p")
            .arg(work.path())
            .arg("-c")
            .arg(&conf)
            .args(["-e", "stderr", "-g"])
            .arg(format!(
                "daemon off; master_process off; pid {root}/nginx.pid;"
            )),
        &log,
    );
    let client = client_of(&ca, port);
    wait_for_proxy(&client, port, &mut proxy, &log).await;
    check_layout(upstream, &client, port).await;
}

#[tokio::test]
async fn caddy_as_the_readme_configures_it_forwards_mcp_calls_and_the_client_address() {
    let Some(caddy) = proxy_program("caddy") else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let (chain, key, ca) = write_certificates(work.path());
    let port = free_port();
    let upstream = Upstream::start(port).await;

    let site = readme_block("# tested by tests/api/deploy.rs (caddy)");
    let site = replace_once(
        &site,
        "reverse_proxy 127.0.0.1:10000 {",
        &format!("reverse_proxy 127.0.0.1:{} {{", upstream.port),
    );
    // The port, and the test's certificate in place of the one Caddy would get from an ACME CA.
    let site = replace_once(
        &site,
        &format!("{HOST} {{"),
        &format!(
            "{HOST}:{port} {{\n\ttls {} {}",
            chain.display(),
            key.display()
        ),
    );
    // Global options for a test: no admin endpoint, no port-80 redirect listener, loopback
    // only, state in the temporary folder, no HTTP/3 (UDP).
    let root = work.path().display();
    let caddyfile = format!(
        "{{\n\
         \tadmin off\n\
         \tauto_https disable_redirects\n\
         \tdefault_bind 127.0.0.1\n\
         \tstorage file_system {root}/caddy\n\
         \tservers {{\n\
         \t\tprotocols h1 h2\n\
         \t}}\n\
         }}\n\
         \n\
         {site}"
    );
    let file = work.path().join("Caddyfile");
    std::fs::write(&file, caddyfile).unwrap();
    let log = work.path().join("caddy.log");
    let mut proxy = start_proxy(
        Command::new(caddy)
            .args(["run", "--adapter", "caddyfile", "--config"])
            .arg(&file)
            .env("HOME", work.path())
            .env("XDG_DATA_HOME", work.path())
            .env("XDG_CONFIG_HOME", work.path()),
        &log,
    );
    let client = client_of(&ca, port);
    wait_for_proxy(&client, port, &mut proxy, &log).await;
    check_layout(upstream, &client, port).await;
}

#[tokio::test]
async fn the_binary_alone_with_tls_as_the_readme_configures_it_serves_mcp_and_its_healthcheck() {
    let dir = tempfile::tempdir().unwrap();
    let (chain, key, ca) = write_certificates(dir.path());
    let port = free_port();
    // The README's settings, with only the port, the certificate paths and the public URL's
    // port changed. The production profile also needs a real identity provider and backend
    // (the sample environment file's test checks that part); here the embedded defaults serve.
    let mut env: Vec<(&'static str, String)> = Vec::new();
    for line in readme_block("# tested by tests/api/deploy.rs (tls)").lines() {
        let Some((name, value)) = line.split_once('=') else {
            continue;
        };
        let (name, value) = match (name, value) {
            ("SEARCHGATE_PROFILE", "production") => continue,
            ("SEARCHGATE_SERVER__BIND", "0.0.0.0:443") => {
                ("SEARCHGATE_SERVER__BIND", format!("127.0.0.1:{port}"))
            }
            ("SEARCHGATE_SERVER__PUBLIC_URL", "https://search.example.com") => (
                "SEARCHGATE_SERVER__PUBLIC_URL",
                format!("https://{HOST}:{port}"),
            ),
            ("SEARCHGATE_SERVER__TLS__CERT_PATH", "/etc/searchgate/tls/fullchain.pem") => (
                "SEARCHGATE_SERVER__TLS__CERT_PATH",
                chain.display().to_string(),
            ),
            ("SEARCHGATE_SERVER__TLS__KEY_PATH", "/etc/searchgate/tls/privkey.pem") => (
                "SEARCHGATE_SERVER__TLS__KEY_PATH",
                key.display().to_string(),
            ),
            ("SEARCHGATE_TELEMETRY__METRICS_ALLOWED_FROM", "10.0.0.0/8") => (
                "SEARCHGATE_TELEMETRY__METRICS_ALLOWED_FROM",
                value.to_owned(),
            ),
            other => panic!("a setting this test does not know: {other:?}"),
        };
        env.push((name, value));
    }
    assert_eq!(env.len(), 5, "{env:?}");
    let mut command = searchgate(dir.path(), &borrowed(&env));
    let mut server = start_proxy(command.arg("serve"), &dir.path().join("searchgate.log"));
    let client = client_of(&ca, port);
    wait_for_proxy(
        &client,
        port,
        &mut server,
        &dir.path().join("searchgate.log"),
    )
    .await;

    let output = searchgate(dir.path(), &borrowed(&env))
        .args(["token", "--scope", "web-search:read"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let token = String::from_utf8(output.stdout).unwrap().trim().to_owned();
    let listed = mcp(
        &client,
        port,
        &token,
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}),
    )
    .await;
    assert!(listed["result"]["tools"].is_array(), "{listed}");
    let searched = mcp(
        &client,
        port,
        &token,
        tool_call(2, "web_search", json!({"query": "searchgate alone"})),
    )
    .await;
    assert_ne!(
        searched["result"]["isError"],
        Value::Bool(true),
        "{searched}"
    );
    // /metrics is for the scrapers on the private network only.
    let metrics = client
        .get(format!("https://{HOST}:{port}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(metrics.status(), 403);
    // The container's and the unit's health check, over HTTPS on loopback.
    let checked = healthcheck(dir.path(), &borrowed(&env), &[]).await;
    assert!(checked.status.success(), "{checked:?}");

    server.terminate().await;
    let rows = audit_addresses(&dir.path().join("searchgate.db")).await;
    let calls: Vec<_> = rows
        .iter()
        .filter(|(method, _, _)| method == "tools/list" || method == "tools/call")
        .collect();
    assert_eq!(calls.len(), 2, "{rows:?}");
    for (method, source, peer) in calls {
        // Nobody is trusted here: the made-up X-Forwarded-For is not read.
        assert_eq!(source, CLIENT, "{method}");
        assert_eq!(peer.rsplit_once(':').unwrap().0, CLIENT, "{method}");
    }
}
