//! Contract: searchgate is a framework — a program supplies its own ports through the builder
//! and everything else is served unchanged; the shipped example does exactly that.

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    sync::{Arc, Mutex},
};

use async_trait::async_trait;
use searchgate::domain::{
    audit::{AuditError, AuditEvent, AuditLog, BoundedEvent},
    auth::{AuthError, AuthorizationServer, BearerToken, Principal, Rejection, ScopeSet},
    search::{SearchError, SearchProvider, SearchRequest, SearchResult, SearchResults},
};
use serde_json::{Value, json};

use crate::helpers::spawn_with;

struct Encyclopedia;

#[async_trait]
impl SearchProvider for Encyclopedia {
    fn name(&self) -> &'static str {
        "encyclopedia"
    }

    async fn search(&self, request: &SearchRequest) -> Result<SearchResults, SearchError> {
        Ok(SearchResults {
            query: request.query().as_str().to_owned(),
            results: vec![SearchResult {
                title: format!("Encyclopedia: {}", request.query().as_str()),
                url: "https://encyclopedia.example/entry".into(),
                content: "An entry.".into(),
                score: 0.7,
                published_date: None,
                ..SearchResult::default()
            }],
            ..SearchResults::default()
        })
    }
}

/// Accepts one fixed token.
struct FixedToken;

#[async_trait]
impl AuthorizationServer for FixedToken {
    fn authorization_servers(&self) -> Vec<String> {
        vec!["https://idp.example".into()]
    }

    async fn verify(&self, token: &BearerToken) -> Result<Principal, AuthError> {
        match token.expose() {
            "good-token" | "reader-only-profile" => Ok(Principal {
                subject: "alice".into(),
                client_id: Some("cli".into()),
                issuer: "https://idp.example".into(),
                scopes: ScopeSet::from_space_separated(if token.expose() == "good-token" {
                    "web-search:read"
                } else {
                    "profile"
                }),
                ..Principal::default()
            }),
            "idp-down" => Err(AuthError::unavailable("down")),
            _ => Err(AuthError::invalid(Rejection::Refused, "unknown token")),
        }
    }
}

#[derive(Clone, Default)]
struct MemoryAudit(Arc<Mutex<Vec<AuditEvent>>>);

#[async_trait]
impl AuditLog for MemoryAudit {
    async fn append(&self, events: &[BoundedEvent]) -> Result<(), AuditError> {
        let events = events.iter().map(|e| BoundedEvent::into_inner(e.clone()));
        self.0.lock().unwrap().extend(events);
        Ok(())
    }

    async fn check(&self) -> Result<(), AuditError> {
        Ok(())
    }
}

#[tokio::test]
async fn custom_ports_are_served_with_everything_else_unchanged() {
    let audit = MemoryAudit::default();
    let app = spawn_with(
        |_| {},
        |builder| {
            builder
                .with_search_provider(Encyclopedia)
                .with_authorization_server(FixedToken)
                .with_audit_log(audit.clone())
        },
    )
    .await;
    let call = json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": { "name": "web_search", "arguments": { "query": "otters" } } });

    let anonymous = app.mcp_post().json(&call).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let prm = format!(
        "http://{}/.well-known/oauth-protected-resource/web-search/mcp",
        app.addr
    );
    assert_eq!(
        anonymous.headers()["www-authenticate"],
        format!("Bearer resource_metadata=\"{prm}\", scope=\"web-search:read\"").as_str(),
        "no credentials, no error code"
    );

    let wrong = app
        .mcp_post()
        .bearer_auth("bad-token")
        .json(&call)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let challenge = wrong.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        challenge.starts_with("Bearer error=\"invalid_token\""),
        "{challenge}"
    );

    let down = app
        .mcp_post()
        .bearer_auth("idp-down")
        .json(&call)
        .send()
        .await
        .unwrap();
    assert_eq!(
        down.status(),
        503,
        "an unreachable IdP is 503, never 500 or 200"
    );
    assert!(down.headers().contains_key("retry-after"));

    let in_query = app
        .http
        .post(format!("{}?access_token=good-token", app.mcp_url))
        .header("accept", "application/json, text/event-stream")
        .json(&call)
        .send()
        .await
        .unwrap();
    assert_eq!(
        in_query.status(),
        400,
        "tokens in the query string are refused"
    );

    let narrow = app
        .mcp_post()
        .bearer_auth("reader-only-profile")
        .json(&call)
        .send()
        .await
        .unwrap();
    assert_eq!(
        narrow.status(),
        403,
        "a valid token without the tool's scope"
    );
    let step_up = narrow.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        step_up.contains("error=\"insufficient_scope\"")
            && step_up.contains("scope=\"web-search:read\""),
        "{step_up}"
    );

    let ok = app
        .mcp_post()
        .bearer_auth("good-token")
        .json(&call)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let body: Value = ok.json().await.unwrap();
    let output = &body["result"]["structuredContent"];
    assert_eq!(output["provider"], "encyclopedia");
    assert_eq!(output["results"][0]["title"], "Encyclopedia: otters");

    app.stop().await;
    let events = audit.0.lock().unwrap().clone();
    let outcomes: Vec<_> = events
        .iter()
        .map(|e| (e.outcome.as_str(), e.http_status))
        .collect();
    assert_eq!(
        outcomes,
        [
            ("unauthenticated", 401),
            ("unauthenticated", 401),
            ("failed", 503),
            ("unauthenticated", 400),
            ("forbidden", 403),
            ("success", 200)
        ]
    );
    let last = events.last().unwrap();
    assert_eq!(
        last.subject.as_deref(),
        Some("alice"),
        "the principal reaches the audit row"
    );
    assert_eq!(last.client_id.as_deref(), Some("cli"));
    assert_eq!(last.issuer.as_deref(), Some("https://idp.example"));
    assert_eq!(
        last.token_hash_prefix.as_ref().map(String::len),
        Some(12),
        "a hash prefix, not the token"
    );
    let codes: Vec<_> = events.iter().map(|e| e.error_code.as_deref()).collect();
    assert_eq!(
        codes,
        [
            Some("missing_token"),
            Some("token_refused"),
            Some("idp_unavailable"),
            Some("malformed_authorization"),
            Some("insufficient_scope"),
            None
        ]
    );
}

#[tokio::test]
async fn a_public_url_with_a_path_keeps_it_after_the_well_known_segment() {
    let port = crate::helpers::free_port();
    let app = spawn_with(
        |s| {
            s.server.bind = format!("127.0.0.1:{port}").parse().unwrap();
            s.server.public_url = Some(format!("http://127.0.0.1:{port}/search").parse().unwrap());
        },
        |builder| builder.with_authorization_server(FixedToken),
    )
    .await;
    let anonymous = app
        .http
        .post(app.url("/web-search/mcp"))
        .header("accept", "application/json, text/event-stream")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    let challenge = anonymous.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    let expected = format!(
        "http://127.0.0.1:{port}/.well-known/oauth-protected-resource/search/web-search/mcp"
    );
    assert!(
        challenge.contains(&format!("resource_metadata=\"{expected}\"")),
        "RFC 9728 §3.1: {challenge}"
    );
    let metadata: Value = app
        .http
        .get(&expected)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        metadata["resource"],
        format!("http://127.0.0.1:{port}/search/web-search/mcp")
    );
}

#[tokio::test]
async fn the_scope_check_holds_for_every_spelling_of_the_media_type_and_over_http2() {
    let app = spawn_with(
        |_| {},
        |builder| builder.with_authorization_server(FixedToken),
    )
    .await;
    let h1 = reqwest::Client::new();
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let body = json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": { "name": "web_search", "arguments": { "query": "x" } } })
    .to_string();
    for (client, protocol) in [(&h1, "HTTP/1.1"), (&h2, "h2c")] {
        for (content_type, status) in [
            (" application/json", 403),
            ("\tApplication/JSON; charset=utf-8", 403),
            ("text/plain", 415),
        ] {
            let response = client
                .post(&app.mcp_url)
                .bearer_auth("reader-only-profile")
                .header("accept", "application/json, text/event-stream")
                .header("content-type", content_type)
                .body(body.clone())
                .send()
                .await
                .unwrap();
            assert_eq!(
                response.status().as_u16(),
                status,
                "{protocol} with {content_type:?}: never the tool's results"
            );
        }
    }
}

#[tokio::test]
async fn a_scope_for_a_tool_that_does_not_exist_stops_start_up() {
    let mut settings = searchgate::config::Settings::default();
    settings.server.bind = "127.0.0.1:0".parse().unwrap();
    settings
        .auth
        .tool_scopes
        .insert("web_serach".into(), vec!["x".into()]);
    let result = searchgate::startup::Searchgate::new(settings)
        .with_audit_log(MemoryAudit::default())
        .bind()
        .await;
    let Err(searchgate::startup::StartupError::Config(error)) = result else {
        panic!("a misspelt tool must be refused")
    };
    assert!(error.to_string().contains("web_serach"), "{error}");
}

#[tokio::test]
async fn an_offered_tool_without_scopes_stops_start_up_when_tokens_are_checked() {
    let mut settings = searchgate::config::Settings::default();
    settings.server.bind = "127.0.0.1:0".parse().unwrap();
    // Settings written before the page tools existed name only web_search.
    settings
        .auth
        .tool_scopes
        .retain(|tool, _| tool == "web_search");
    let result = searchgate::startup::Searchgate::new(settings.clone())
        .with_authorization_server(FixedToken)
        .with_audit_log(MemoryAudit::default())
        .bind()
        .await;
    let Err(searchgate::startup::StartupError::Config(error)) = result else {
        panic!("web_extract would be open to any token")
    };
    assert!(
        error.to_string().contains("auth.tool_scopes") && error.to_string().contains("web_"),
        "{error}"
    );
    let search_only = searchgate::startup::Searchgate::new(settings)
        .with_search_provider(Encyclopedia)
        .with_authorization_server(FixedToken)
        .with_audit_log(MemoryAudit::default())
        .bind()
        .await;
    assert!(
        search_only.is_ok(),
        "a backend that offers web_search alone needs nothing more"
    );
}

#[tokio::test]
async fn the_custom_provider_example_serves_its_own_results() {
    // `cargo test` builds examples next to the test binaries.
    let examples = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples");
    let binary = examples.join(format!("custom_provider{}", std::env::consts::EXE_SUFFIX));
    assert!(
        binary.exists(),
        "build the example first (cargo test builds it): {}",
        binary.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(&binary)
        .current_dir(dir.path())
        .env_clear()
        .env("SEARCHGATE_SERVER__BIND", "127.0.0.1:0")
        // This test is about the provider; the example's authentication is the default's.
        .env("SEARCHGATE_AUTH__PROVIDER", "none")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the example starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("MCP endpoint: ")
        .expect("the example prints its endpoint")
        .to_owned();
    let response = reqwest::Client::new()
        .post(&url)
        .header("accept", "application/json, text/event-stream")
        .json(&json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": { "name": "web_search", "arguments": { "query": "ferris", "max_results": 2 } } }))
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    let output = &body["result"]["structuredContent"];
    assert_eq!(output["provider"], "bookshelf", "{body}");
    assert_eq!(output["results"].as_array().unwrap().len(), 2);
    assert_eq!(
        output["results"][0]["title"],
        "The Rust Programming Language"
    );
}
