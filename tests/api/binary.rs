//! Contract: the binary's configuration interface — documented variable names, the seed
//! project's aliases, `.env`, `check-config`, and exit code 2 with a message naming the setting.

use std::process::Output;

use crate::helpers::{free_port, searchgate, spawn_binary, tool_call};

fn run(dir: &std::path::Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    searchgate(dir, env)
        .args(args)
        .output()
        .expect("the binary runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn check_config_prints_the_effective_configuration_with_secrets_redacted() {
    // check-config verifies the key with GET /usage; a loopback fake stands in for Tavily.
    let tavily = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::path("/usage"))
        .respond_with(
            wiremock::ResponseTemplate::new(200)
                .set_body_json(serde_json::json!({ "key": { "usage": 1, "limit": 1000 } })),
        )
        .mount(&tavily)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let base_url = tavily.uri();
    let output = run(
        dir.path(),
        &[
            ("TAVILY_API_KEY", "tvly-do-not-print"),
            ("SEARCHGATE_SEARCH__TAVILY__BASE_URL", &base_url),
            ("SCALEKIT_ENVIRONMENT_URL", "https://acme.scalekit.dev"),
            ("RESOURCE_IDENTIFIER", "res_42"),
            (
                "SEARCHGATE_DATABASE__URL",
                "postgres://sg:db-do-not-print@db.internal/sg",
            ),
        ],
        &["check-config"],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(
        text.contains("provider = [\"tavily\"]"),
        "TAVILY_API_KEY selects tavily:\n{text}"
    );
    assert!(text.contains("api_key = \"<redacted>\""), "{text}");
    assert!(
        !text.contains("tvly-do-not-print"),
        "the key must never be printed"
    );
    assert!(
        text.contains("environment_url = \"https://acme.scalekit.dev/\""),
        "{text}"
    );
    assert!(text.contains("resource_id = \"res_42\""), "{text}");
    assert!(
        text.contains("url = \"postgres://sg:***@db.internal/sg\""),
        "the database password is redacted:\n{text}"
    );
    assert!(!text.contains("db-do-not-print"), "{text}");
    assert!(
        text.contains("public_url = \"http://127.0.0.1:10000/\""),
        "derived values are shown:\n{text}"
    );
}

#[test]
fn a_bad_value_exits_2_naming_the_setting_the_value_and_the_choices() {
    let dir = tempfile::tempdir().unwrap();
    for command in ["check-config", "serve"] {
        let output = run(
            dir.path(),
            &[("SEARCHGATE_SEARCH__PROVIDER", "bing")],
            &[command],
        );
        assert_eq!(output.status.code(), Some(2), "{command}");
        let message = stderr(&output);
        assert!(
            message.contains("search.provider (from SEARCHGATE_SEARCH__PROVIDER) = \"bing\""),
            "{message}"
        );
        assert!(message.contains("mock, tavily"), "{message}");
    }
    let output = run(dir.path(), &[("PORT", "http")], &["serve"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("PORT"), "{}", stderr(&output));
}

#[test]
fn a_tavily_key_that_cannot_be_sent_exits_2_without_echoing_it() {
    let dir = tempfile::tempdir().unwrap();
    for command in ["check-config", "serve"] {
        let output = run(
            dir.path(),
            &[("TAVILY_API_KEY", "tvly-abc def")],
            &[command],
        );
        assert_eq!(output.status.code(), Some(2), "{command}");
        let message = stderr(&output);
        assert!(
            message.contains("search.tavily.api_key (from TAVILY_API_KEY) = <redacted>"),
            "{message}"
        );
        assert!(!message.contains("tvly-abc"), "the key leaked: {message}");
    }
}

#[test]
fn a_non_loopback_bind_is_refused_until_authentication_exists() {
    let dir = tempfile::tempdir().unwrap();
    let output = run(
        dir.path(),
        &[("SEARCHGATE_SERVER__BIND", "0.0.0.0:10000")],
        &["serve"],
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("server.bind"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn authentication_off_is_refused_on_a_network_interface() {
    let dir = tempfile::tempdir().unwrap();
    for provider in ["none", "embedded"] {
        let output = run(
            dir.path(),
            &[
                ("SEARCHGATE_AUTH__PROVIDER", provider),
                ("SEARCHGATE_SERVER__BIND", "0.0.0.0:10000"),
            ],
            &["serve"],
        );
        assert_eq!(output.status.code(), Some(2), "{provider}: fail closed");
        assert!(
            stderr(&output).contains("server.bind"),
            "{}",
            stderr(&output)
        );
    }
}

#[test]
fn a_dotenv_file_and_a_config_file_are_read() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(".env"),
        "SEARCHGATE_SERVER__MCP_PATH=/from-dotenv\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("sg.toml"),
        "[database]\nurl = \"sqlite://from-file.db\"\n",
    )
    .unwrap();
    let output = run(dir.path(), &[], &["--config", "sg.toml", "check-config"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.contains("mcp_path = \"/from-dotenv\""), "{text}");
    assert!(text.contains("url = \"sqlite://from-file.db\""), "{text}");
    let missing = run(
        dir.path(),
        &[("SEARCHGATE_CONFIG", "absent.toml")],
        &["check-config"],
    );
    assert_eq!(
        missing.status.code(),
        Some(2),
        "a named file that is missing is an error"
    );
}

#[tokio::test]
async fn port_sets_the_listening_port_and_serves_mcp_there() {
    // The README's quick start: the embedded defaults, and a token from `searchgate token`.
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let port_text = port.to_string();
    let mut child = spawn_binary(dir.path(), port, &[("PORT", &port_text)]).await;
    let url = format!("http://127.0.0.1:{port}/web-search/mcp");
    let unauthenticated = reqwest::Client::new()
        .post(&url)
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .body(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(
        unauthenticated.status(),
        401,
        "the default is authenticated"
    );
    let token = searchgate(dir.path(), &[("PORT", &port_text)])
        .args(["token", "--scope", "web-search:read"])
        .output()
        .unwrap();
    assert!(token.status.success());
    let token = String::from_utf8(token.stdout).unwrap();
    let response = reqwest::Client::new()
        .post(&url)
        .bearer_auth(token.trim())
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .body(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        dir.path().join("searchgate.db").exists(),
        "the database file is created on first start"
    );
}

#[test]
fn openapi_prints_the_document_without_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let output = run(
        dir.path(),
        &[("SEARCHGATE_SEARCH__PROVIDER", "bing")],
        &["openapi"],
    );
    assert!(
        output.status.success(),
        "printing the document needs no valid configuration"
    );
    let document: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(document["info"]["title"], "searchgate");
}

#[tokio::test]
async fn json_logs_name_the_request_id_on_every_line_of_a_request() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let port_text = port.to_string();
    let child = spawn_binary(
        dir.path(),
        port,
        &[
            ("PORT", &port_text),
            ("SEARCHGATE_TELEMETRY__FORMAT", "json"),
            ("SEARCHGATE_AUTH__PROVIDER", "none"),
        ],
    )
    .await;
    let response = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/web-search/mcp"))
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .header("x-request-id", "log-check-1")
        .json(&tool_call(
            1,
            "web_search",
            serde_json::json!({ "query": "mock-error:unavailable" }),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let output = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&output.stderr)
        .lines()
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|_| panic!("not a JSON log line: {line}"))
        })
        .collect();
    let warning = lines
        .iter()
        .find(|l| l["fields"]["message"] == "search backend unavailable")
        .expect("the tool logged the upstream failure");
    assert_eq!(
        warning["span"]["request_id"], "log-check-1",
        "tool lines carry the request id: {warning}"
    );
    let served = lines
        .iter()
        .find(|l| l["fields"]["message"] == "served" && l["span"]["path"] == "/web-search/mcp")
        .expect("an access log line for the MCP request");
    assert_eq!(served["span"]["request_id"], "log-check-1");
}

#[test]
fn serve_names_an_unreachable_database_without_its_password_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let output = run(
        dir.path(),
        &[
            (
                "SEARCHGATE_DATABASE__URL",
                "postgres://sg:db-do-not-print@127.0.0.1:1/sg",
            ),
            ("SEARCHGATE_DATABASE__ACQUIRE_TIMEOUT_SECS", "2"),
        ],
        &["serve"],
    );
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let message = stderr(&output);
    assert!(
        message.contains("cannot reach the database `postgres://sg:***@127.0.0.1:1/sg`"),
        "{message}"
    );
    assert!(!message.contains("db-do-not-print"), "{message}");
}
