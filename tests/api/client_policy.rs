//! Contract (issue 14 item 3): the client policy covers every token and every client. The
//! client is read from `client_id`, `azp`, `cid` or `appid`; while any policy is in force a token
//! naming no client is `401 invalid_token` ("the token names no client"), audited, on the MCP
//! endpoint and the admin API alike. The embedded authorization server refuses a denied client
//! itself: on the page at `/idp/authorize` (never a redirect) and `invalid_client` at
//! `/idp/token`.

use std::time::{SystemTime, UNIX_EPOCH};

use reqwest::{StatusCode, header};
use searchgate::config::AuthProviderKind;
use serde_json::{Value, json};

use crate::{
    embedded::{OAuth, VERIFIER, spawn_embedded, ticket_in},
    helpers::{TestApp, free_port, spawn_with, tool_call},
    registration::admin_token,
    scalekit::{RESOURCE_ID, fake_scalekit, sign},
};

/// A Scalekit-shaped token for this resource, with `extra` claims (the client claims).
fn token(extra: &Value) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut claims = json!({
        "iss": "ISSUER", "sub": "usr_1", "aud": [RESOURCE_ID],
        "scope": "web-search:read searchgate:admin", "exp": now + 3600, "iat": now
    });
    for (name, value) in extra.as_object().unwrap() {
        claims[name] = value.clone();
    }
    sign(&claims)
}

async fn answers(app: &TestApp, token: &str) -> [(StatusCode, String, Value); 2] {
    let mcp = app
        .mcp_post()
        .bearer_auth(token)
        .json(&tool_call(1, "web_search", json!({ "query": "policy" })))
        .send()
        .await
        .unwrap();
    let admin = app
        .http
        .get(app.url("/api/v1/audit"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let mut out = Vec::new();
    for response in [mcp, admin] {
        let status = response.status();
        let challenge = response
            .headers()
            .get(header::WWW_AUTHENTICATE)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        out.push((
            status,
            challenge,
            response.json().await.unwrap_or(Value::Null),
        ));
    }
    out.try_into().unwrap()
}

#[tokio::test]
async fn an_allow_list_judges_cid_and_appid_tokens_and_refuses_tokens_naming_no_client() {
    let scalekit = fake_scalekit().await;
    let env = scalekit.uri();
    let port = free_port();
    let app = spawn_with(
        |s| {
            s.server.bind = format!("127.0.0.1:{port}").parse().unwrap();
            s.auth.provider = AuthProviderKind::Scalekit;
            s.auth.scalekit.environment_url = Some(env.parse().unwrap());
            s.auth.scalekit.resource_id = Some(RESOURCE_ID.into());
            s.registration.allow_client_ids = vec!["okta-app".into(), "entra-app".into()];
        },
        |b| b,
    )
    .await;
    let with_issuer = |claims: Value| {
        let mut claims = claims;
        claims["iss"] = json!(env);
        token(&claims)
    };
    for (claims, why) in [
        (json!({ "cid": "okta-app" }), "Okta names its client in cid"),
        (json!({ "appid": "entra-app" }), "Entra v1 in appid"),
    ] {
        for (status, _, body) in answers(&app, &with_issuer(claims)).await {
            assert_eq!(status, StatusCode::OK, "{why}: {body}");
        }
    }
    for (status, challenge, body) in answers(&app, &with_issuer(json!({ "cid": "stranger" }))).await
    {
        assert_eq!(
            status,
            StatusCode::FORBIDDEN,
            "a cid outside the allow list is refused: {body}"
        );
        assert!(challenge.contains("access_denied"), "{challenge}");
    }
    for (status, challenge, body) in answers(&app, &with_issuer(json!({}))).await {
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "no client claim cannot pass an allow list: {body}"
        );
        assert!(
            challenge.starts_with("Bearer error=\"invalid_token\""),
            "{challenge}"
        );
        assert_eq!(body["error"], "invalid_token");
        assert_eq!(body["error_description"], "the token names no client");
    }
    let rows = app.stop().await.rows;
    let refusals: Vec<_> = rows
        .iter()
        .filter(|r| r.error_code.as_deref() == Some("no_client"))
        .map(|r| {
            let admin = r.method.as_deref().is_some_and(|m| m.starts_with("admin/"));
            (admin, r.http_status)
        })
        .collect();
    assert_eq!(
        refusals,
        [(false, 401), (true, 401)],
        "both refusals are audited as no_client"
    );
}

#[tokio::test]
async fn a_denied_client_is_refused_by_the_embedded_authorization_server_itself() {
    let app = spawn_embedded(|_| {}).await;
    let oauth = OAuth::new(&app);
    let admin = admin_token(&oauth).await;
    let client_id = oauth.public_client().await;
    // Before the denial: a code, a refresh token, and a consent page still open.
    let code = oauth.code(&client_id).await;
    let (status, grant) = oauth.exchange(&client_id, &code, VERIFIER).await;
    assert_eq!(status, StatusCode::OK, "{grant}");
    let open_page = ticket_in(&oauth.consent_page(&client_id).await);
    let unused_code = oauth.code(&client_id).await;

    let denied = app.deny_client(&admin, &client_id).await;
    assert_eq!(denied, StatusCode::NO_CONTENT);

    let page = oauth.authorize(&oauth.params(&client_id, &[])).await;
    assert_eq!(page.status(), StatusCode::FORBIDDEN);
    assert!(
        page.headers().get(header::LOCATION).is_none(),
        "shown on the page, never redirected"
    );
    assert!(page.text().await.unwrap().contains("not allowed"));

    let decided = oauth.decide(&open_page, "approve").await;
    assert_eq!(
        decided.status(),
        StatusCode::FORBIDDEN,
        "a consent page opened before the denial cannot approve after it"
    );
    assert!(decided.headers().get(header::LOCATION).is_none());

    let (status, body) = oauth.exchange(&client_id, &unused_code, VERIFIER).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client")),
        "{body}"
    );
    let (status, body) = oauth
        .refresh(&client_id, grant["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client")),
        "{body}"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_client_outside_the_allow_list_cannot_start_a_sign_in() {
    let app = spawn_embedded(|s| s.registration.allow_client_ids = vec!["sg_someone".into()]).await;
    let oauth = OAuth::new(&app);
    let client_id = oauth.public_client().await;
    let page = oauth.authorize(&oauth.params(&client_id, &[])).await;
    assert_eq!(page.status(), StatusCode::FORBIDDEN);
    assert!(page.headers().get(header::LOCATION).is_none());
    let (status, body) = oauth
        .token(&[
            ("grant_type", "authorization_code"),
            ("client_id", &client_id),
            ("code", "whatever"),
            ("code_verifier", VERIFIER),
        ])
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client"))
    );
    app.stop().await;
}
