//! Client registration through searchgate (`/oauth/register`): forwarded to a real IdP with
//! dynamic registration, answered with a pre-registered client (static mode), or kept by the
//! embedded server; the client cache, the client policy, the rate limit and the admin API.

use std::path::Path;

use reqwest::{StatusCode, header};
use searchgate::config::{AuthProviderKind, RegistrationMode, Settings};
use serde_json::{Value, json};

use crate::{
    embedded::{OAuth, REDIRECT, VERIFIER, claims, search_with, spawn_embedded, value_of},
    helpers::{TestApp, free_port, spawn_with},
    idp::{Idp, node, node_dir},
};

fn public_metadata(redirect: &str) -> Value {
    json!({
        "client_name": "registration test",
        "redirect_uris": [redirect],
        "grant_types": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_method": "none"
    })
}

async fn register(app: &TestApp, metadata: &Value) -> reqwest::Response {
    app.http
        .post(app.url("/oauth/register"))
        .json(metadata)
        .send()
        .await
        .unwrap()
}

/// A token with the admin scope, approved on the embedded server's consent page.
pub async fn admin_token(oauth: &OAuth<'_>) -> String {
    let client_id = oauth.public_client().await;
    let query = oauth
        .consent(
            &oauth.params(&client_id, &[("scope", "searchgate:admin")]),
            "approve",
        )
        .await;
    let (status, body) = oauth
        .exchange(&client_id, &value_of(&query, "code").unwrap(), VERIFIER)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

async fn admin_get(app: &TestApp, token: &str, path: &str) -> (StatusCode, Value) {
    let mut request = app.http.get(app.url(path));
    if !token.is_empty() {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn clients_register_at_the_real_idp_through_searchgate_and_sign_in_with_that_id() {
    let port = free_port();
    let resource = format!("http://127.0.0.1:{port}/web-search/mcp");
    let idp = Idp::start(
        &resource,
        &format!("http://127.0.0.1:{port}/other/mcp"),
        &[],
    )
    .await;
    let issuer = idp.issuer();
    let app = spawn_with(
        |s| {
            s.server.bind = format!("127.0.0.1:{port}").parse().unwrap();
            s.auth.provider = AuthProviderKind::Oidc;
            s.auth.oidc.issuer = Some(issuer);
        },
        |b| b,
    )
    .await;
    let forwarded = app
        .get_json("/.well-known/oauth-authorization-server")
        .await;
    assert_eq!(
        forwarded["registration_endpoint"],
        app.url("/oauth/register")
    );

    // The TypeScript SDK client registers through searchgate, then signs in at the IdP with
    // the client id the IdP issued.
    let report = {
        let output = tokio::process::Command::new(node())
            .arg(node_dir().join("sdk-client.mjs"))
            .env("MCP_URL", &app.mcp_url)
            .env("REGISTER_URL", app.url("/oauth/register"))
            .output()
            .await
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice::<Value>(&output.stdout).unwrap()
    };
    let registered = report["registered_client_id"].as_str().unwrap().to_owned();
    assert_eq!(report["client_id"], registered.as_str(), "the SDK used it");
    assert_eq!(report["is_error"], false);
    let requests = report["requests"].to_string();
    assert!(
        !requests.contains("POST /reg "),
        "the SDK did not register at the IdP itself: {requests}"
    );

    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .connect(&format!("sqlite://{}?mode=ro", app.db_path.display()))
        .await
        .unwrap();
    let source: String = sqlx::query_scalar("SELECT source FROM clients WHERE client_id = ?")
        .bind(&registered)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(
        source, "upstream",
        "the registration is in the client cache"
    );
    pool.close().await;
    let rows = app.stop().await.rows;
    assert!(
        rows.iter()
            .any(|r| r.method.as_deref() == Some("oauth/register") && r.outcome == "success")
    );
    assert!(
        rows.iter()
            .any(|r| r.tool.as_deref() == Some("web_search") && r.outcome == "success")
    );
}

#[tokio::test]
async fn static_mode_answers_with_the_pre_registered_client_for_matching_redirects() {
    let app = spawn_with(
        |s| {
            s.registration.mode = RegistrationMode::Static;
            s.registration.static_client.client_id = Some("entra-app-123".into());
            s.registration.static_client.redirect_patterns = vec![
                "http://127.0.0.1:*/callback".into(),
                "https://claude.ai/api/mcp/auth_callback".into(),
            ];
        },
        |b| b,
    )
    .await;
    for redirect in [
        "http://127.0.0.1:33418/callback",
        "https://claude.ai/api/mcp/auth_callback",
    ] {
        let response = register(&app, &public_metadata(redirect)).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["client_id"], "entra-app-123");
        assert_eq!(body["token_endpoint_auth_method"], "none");
        assert!(body.get("client_secret").is_none());
    }
    let response = register(&app, &public_metadata("http://127.0.0.1:33418/elsewhere")).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_redirect_uri");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("127.0.0.1:*/callback")
    );
}

#[tokio::test]
async fn every_validation_error_the_policy_and_the_rate_limit_answer_precisely() {
    let app = spawn_embedded(|s| {
        s.registration.rate_limit_per_minute = 8;
        s.registration.deny_redirect_hosts = vec!["blocked.example".into()];
    })
    .await;
    for (metadata, error) in [
        (
            public_metadata("http://evil.example/cb"),
            "invalid_redirect_uri",
        ),
        (
            public_metadata("https://blocked.example/cb"),
            "invalid_redirect_uri",
        ),
        (
            json!({"token_endpoint_auth_method": "none"}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": [REDIRECT], "grant_types": ["password"]}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": [REDIRECT], "response_types": ["token"], "token_endpoint_auth_method": "none"}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "tls_client_auth"}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": [REDIRECT], "client_name": "x".repeat(300)}),
            "invalid_client_metadata",
        ),
        (json!({"redirect_uris": [7]}), "invalid_client_metadata"),
    ] {
        let response = register(&app, &metadata).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{metadata}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], error, "{metadata}: {body}");
    }
    // An oversized body is refused before it is read (and before the rate limit counts it).
    let huge = app
        .http
        .post(app.url("/oauth/register"))
        .header("content-type", "application/json")
        .body(format!("{{\"client_name\":\"{}\"}}", "x".repeat(100_000)))
        .send()
        .await
        .unwrap();
    assert_eq!(huge.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // Eight registrations this minute (the refused ones count too): the ninth waits.
    let limited = register(&app, &public_metadata(REDIRECT)).await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = limited.headers()[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait));
    let rows = app.stop().await.rows;
    let registrations: Vec<_> = rows
        .iter()
        .filter(|r| r.method.as_deref() == Some("oauth/register"))
        .collect();
    assert_eq!(registrations.len(), 9, "every registration is audited");
    assert_eq!(registrations[8].error_code.as_deref(), Some("rate_limited"));
}

/// RFC 7591 §3.2.2: a body that is not client metadata (not JSON, not sent as JSON, not an
/// object) is `400 invalid_client_metadata` in the JSON error body, like any other refusal, and
/// it counts against the address's registration limit and is audited.
#[tokio::test]
async fn unreadable_registrations_get_invalid_client_metadata_and_count_and_are_audited() {
    let cases: [(Option<&str>, &[u8], &str); 8] = [
        (
            Some("application/json"),
            b"{\"redirect_uris\": [",
            "truncated JSON",
        ),
        (Some("application/json"), b"redirect_uris=x", "not JSON"),
        (
            Some("application/json"),
            b"{\"client_name\": \"\xff\"}",
            "invalid UTF-8",
        ),
        (Some("application/json"), b"  ", "only whitespace"),
        (
            Some("application/json"),
            b"[{\"redirect_uris\": []}]",
            "an array",
        ),
        (Some("application/json"), b"null", "null"),
        (
            Some("text/plain"),
            b"{\"redirect_uris\": []}",
            "a wrong Content-Type",
        ),
        (None, b"{\"redirect_uris\": []}", "no Content-Type"),
    ];
    let app = spawn_embedded(|s| s.registration.rate_limit_per_minute = cases.len() as u32).await;
    for (content_type, body, case) in cases {
        let mut request = app.http.post(app.url("/oauth/register")).body(body);
        if let Some(content_type) = content_type {
            request = request.header(header::CONTENT_TYPE, content_type);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{case}");
        assert!(
            response.headers()[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("application/json"),
            "{case}: the answer is JSON"
        );
        let answer: Value = response.json().await.unwrap();
        assert_eq!(
            answer["error"], "invalid_client_metadata",
            "{case}: {answer}"
        );
        assert!(answer["error_description"].is_string(), "{case}: {answer}");
    }
    // The refused bodies used up this minute's registrations: a good one now waits.
    let limited = register(&app, &public_metadata(REDIRECT)).await;
    assert_eq!(
        limited.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "unreadable bodies count against the limit"
    );
    let rows = app.stop().await.rows;
    let registrations: Vec<_> = rows
        .iter()
        .filter(|r| r.method.as_deref() == Some("oauth/register"))
        .collect();
    assert_eq!(registrations.len(), cases.len() + 1, "every one is audited");
    for row in &registrations[..cases.len()] {
        assert_eq!(row.outcome, "rejected");
        assert_eq!(row.http_status, 400);
        assert_eq!(row.error_code.as_deref(), Some("invalid_client_metadata"));
    }
}

#[tokio::test]
async fn denying_a_client_through_the_admin_api_turns_its_next_call_into_403() {
    let app = spawn_embedded(|_| {}).await;
    let oauth = OAuth::new(&app);
    let client_id = oauth.public_client().await;
    let code = oauth.code(&client_id).await;
    let (_, tokens) = oauth.exchange(&client_id, &code, VERIFIER).await;
    let token = tokens["access_token"].as_str().unwrap();
    assert_eq!(search_with(&app, token).await, StatusCode::OK);

    let admin = admin_token(&oauth).await;
    // Tool tokens are not admin tokens.
    let (status, _) = admin_get(&app, token, "/api/v1/clients").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = admin_get(&app, "", "/api/v1/clients").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, shown) = admin_get(&app, &admin, &format!("/api/v1/clients/{client_id}")).await;
    assert_eq!(status, StatusCode::OK, "{shown}");
    assert_eq!(shown["source"], "embedded");
    assert!(shown.get("client_secret").is_none());

    let denied = app.deny_client(&admin, &client_id).await;
    assert_eq!(denied, StatusCode::NO_CONTENT);
    let refused = app
        .mcp_post()
        .bearer_auth(token)
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(
        refused.headers()[header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .contains("access_denied")
    );
    let (_, shown) = admin_get(&app, &admin, &format!("/api/v1/clients/{client_id}")).await;
    assert!(shown["denied_at"].is_i64());
    let missing = app.deny_client(&admin, "sg_nobody").await;
    assert_eq!(missing, StatusCode::NOT_FOUND);

    // The deny list holds for admin tokens too: an admin whose client is denied is refused.
    let admin_client = claims(&admin)["client_id"].as_str().unwrap().to_owned();
    let self_denied = app.deny_client(&admin, &admin_client).await;
    assert_eq!(self_denied, StatusCode::NO_CONTENT);
    let (status, body) = admin_get(&app, &admin, "/api/v1/clients").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");

    let rows = app.stop().await.rows;
    assert!(
        rows.iter()
            .any(|r| r.method.as_deref() == Some("admin/denied")
                && r.error_code.as_deref() == Some("client_denied")),
        "the refused admin call is audited as a denied client"
    );
    assert!(
        rows.iter()
            .any(|r| r.method.as_deref() == Some("admin/clients.deny")
                && r.outcome == "success"
                && r.subject.as_deref() == Some("operator"))
    );
    assert!(
        rows.iter()
            .any(|r| r.http_status == 403 && r.error_code.as_deref() == Some("client_denied"))
    );
}

async fn spawn_on(db: &Path, port: u16) -> TestApp {
    let url = format!("sqlite://{}", db.display());
    spawn_with(
        move |s: &mut Settings| {
            s.auth.provider = AuthProviderKind::Embedded;
            s.server.bind = format!("127.0.0.1:{port}").parse().unwrap();
            s.database.url = url;
            s.registration.rate_limit_per_minute = 100;
        },
        |b| b,
    )
    .await
}

#[tokio::test]
async fn concurrent_registrations_all_land_and_the_cache_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("shared.db");
    let port = free_port();
    let app = spawn_on(&db, port).await;
    let registrations = (0..20).map(|n| {
        let app = &app;
        async move {
            let response = register(
                app,
                &public_metadata(&format!("http://127.0.0.1:{}/callback", 4000 + n)),
            )
            .await;
            assert_eq!(response.status(), StatusCode::CREATED);
            response.json::<Value>().await.unwrap()["client_id"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    });
    let mut ids = futures::future::join_all(registrations).await;
    // Use one client's token, so its last-seen time is recorded (flushed at shutdown).
    let oauth = OAuth::new(&app);
    let code = oauth.code(&ids[0]).await;
    let (_, tokens) = oauth.exchange(&ids[0], &code, VERIFIER).await;
    assert_eq!(
        search_with(&app, tokens["access_token"].as_str().unwrap()).await,
        StatusCode::OK
    );
    app.stop().await;

    let app = spawn_on(&db, port).await;
    let oauth = OAuth::new(&app);
    let admin = admin_token(&oauth).await;
    let mut listed = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/clients?limit=7&cursor={c}"),
            None => "/api/v1/clients?limit=7".to_owned(),
        };
        let (status, page) = admin_get(&app, &admin, &path).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        for client in page["clients"].as_array().unwrap() {
            listed.push(client.clone());
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    let mut listed_ids: Vec<String> = listed
        .iter()
        .map(|c| c["client_id"].as_str().unwrap().to_owned())
        .filter(|id| ids.contains(id))
        .collect();
    listed_ids.sort();
    ids.sort();
    assert_eq!(
        listed_ids, ids,
        "every registration, each exactly once, after a restart"
    );
    let seen = listed.iter().filter(|c| c["last_seen_at"].is_i64()).count();
    assert!(seen >= 1, "the used client has a last-seen time");
    let (status, body) = admin_get(&app, &admin, "/api/v1/clients?limit=0").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = admin_get(&app, &admin, "/api/v1/clients?cursor=page-2").await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "a bad cursor never restarts at page 1: {body}"
    );
    app.stop().await;
}
