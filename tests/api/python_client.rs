//! The official MCP Python SDK client (the `mcp` package from PyPI) signs in through the
//! embedded authorization server of the real binary and searches: `tests/python/sdk_client.py`,
//! run with the interpreter `SEARCHGATE_TEST_PYTHON` names (one with
//! `tests/python/requirements.txt` installed; `.ci/run` makes one). Without it the test says it
//! is skipped.

use std::{
    path::PathBuf,
    process::{Child, Command},
    time::Duration,
};

use serde_json::Value;

use crate::{
    embedded::claims,
    helpers::{free_port, spawn_binary},
};

/// The binary, stopped with SIGTERM (so the audit queue is written) or killed on drop.
struct Server(Option<Child>);

impl Server {
    fn stop(&mut self) {
        let Some(mut child) = self.0.take() else {
            return;
        };
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let exit = child.wait().unwrap();
        assert!(exit.success(), "a graceful shutdown exits 0, got {exit}");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[tokio::test]
async fn the_python_sdk_client_registers_is_approved_and_searches_through_the_real_binary() {
    let Some(python) = std::env::var_os("SEARCHGATE_TEST_PYTHON") else {
        eprintln!(
            "Python SDK client test skipped: SEARCHGATE_TEST_PYTHON is not set (.ci/run sets it \
             to a virtual environment with tests/python/requirements.txt installed)"
        );
        return;
    };
    // The binary on its defaults: the embedded authorization server, the mock backend, SQLite
    // in its working directory.
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let port_text = port.to_string();
    let mut server = Server(Some(
        spawn_binary(dir.path(), port, &[("PORT", &port_text)]).await,
    ));
    let base = format!("http://127.0.0.1:{port}");
    let mcp_url = format!("{base}/web-search/mcp");

    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/sdk_client.py");
    let output = tokio::time::timeout(
        Duration::from_secs(120),
        tokio::process::Command::new(&python)
            .arg(&script)
            .env("MCP_URL", &mcp_url)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the Python SDK client finishes within 2 minutes")
    .unwrap_or_else(|e| panic!("{} runs: {e}", python.to_string_lossy()));
    assert!(
        output.status.success(),
        "the Python SDK client failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|_| {
        panic!(
            "the Python SDK client reports JSON: {}",
            String::from_utf8_lossy(&output.stdout)
        )
    });

    // Discovery from the 401 challenge, registration, the token from the embedded server.
    let requests = report["requests"].to_string();
    for step in [
        "POST /web-search/mcp 401",
        "GET /.well-known/oauth-protected-resource/web-search/mcp 200",
        "GET /.well-known/oauth-authorization-server/idp 200",
        "POST /oauth/register 201",
        "POST /idp/token 200",
    ] {
        assert!(requests.contains(step), "{step} missing in {requests}");
    }
    assert_eq!(report["authorize"]["resource"], mcp_url.as_str());
    assert_eq!(report["authorize"]["code_challenge_method"], "S256");
    assert_eq!(report["callback_has_iss"], true);
    let client_id = report["client_id"].as_str().expect("a registered client");
    assert_eq!(report["authorize"]["client_id"], client_id);
    let token = claims(report["access_token"].as_str().expect("an access token"));
    assert_eq!(token["iss"], format!("{base}/idp"));
    assert_eq!(token["aud"], mcp_url.as_str());
    assert_eq!(token["sub"], "operator");
    assert_eq!(token["client_id"], client_id);

    // initialize, tools/list and the search.
    assert_eq!(report["protocol_version"], "2025-11-25");
    assert_eq!(report["server_name"], "searchgate");
    assert!(
        report["tools"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t == "web_search"),
        "{}",
        report["tools"]
    );
    assert_eq!(report["search"]["is_error"], false);
    assert_eq!(report["search"]["provider"], "mock");
    assert_eq!(report["search"]["query"], "python sdk");
    assert_eq!(report["search"]["results"], 2);

    // The SDK's own refresh, then its default mode (server/discover).
    assert_eq!(report["refreshed"], true, "{requests}");
    assert_eq!(report["after_refresh"]["is_error"], false);
    assert_eq!(report["after_refresh"]["provider"], "mock");
    assert_eq!(report["after_refresh"]["query"], "after refresh");
    assert_eq!(report["auto_protocol_version"], "2026-07-28");

    // The audit trail names the principal and the client of both searches.
    server.stop();
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .connect(&format!(
            "sqlite://{}?mode=ro",
            dir.path().join("searchgate.db").display()
        ))
        .await
        .unwrap();
    let rows: Vec<(Option<String>, Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT subject, client_id, provider FROM audit_events \
         WHERE tool = 'web_search' AND outcome = 'success' ORDER BY id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    pool.close().await;
    let expected = (
        Some("operator".to_owned()),
        Some(client_id.to_owned()),
        Some("mock".to_owned()),
    );
    assert_eq!(
        rows,
        [expected.clone(), expected],
        "both searches are audited with the principal and the client"
    );
}
