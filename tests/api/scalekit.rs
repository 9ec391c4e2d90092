//! Contract: with `auth.provider = scalekit`, searchgate trusts Scalekit-shaped tokens (reference
//! §A): JWKS at `<env>/keys`, both issuer forms, `aud` holding the resource id and/or the MCP
//! URL, scopes in `scope` or `scopes`; the authorization server it advertises is
//! `<env>/resources/<res_id>`, whose metadata it forwards. Scalekit cannot be reached from here,
//! so a loopback fake serves its documented shapes.

use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use searchgate::config::AuthProviderKind;
use serde_json::{Value, json};
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{method, path},
};

use crate::helpers::{TestApp, free_port, spawn_with, tool_call};

pub const RESOURCE_ID: &str = "res_114244373767521282";

pub fn sign(claims: &Value) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("test-key-1".into());
    let key = EncodingKey::from_rsa_pem(include_bytes!("../fixtures/test-rsa-key.pem")).unwrap();
    jsonwebtoken::encode(&header, claims, &key).unwrap()
}

pub async fn fake_scalekit() -> MockServer {
    let server = MockServer::start().await;
    let env = server.uri();
    let jwks: Value = serde_json::from_str(include_str!("../fixtures/test-rsa-jwks.json")).unwrap();
    Mock::given(method("GET"))
        .and(path("/keys"))
        .respond_with(ResponseTemplate::new(200).set_body_json(jwks))
        .mount(&server)
        .await;
    let metadata = json!({
        "issuer": format!("{env}/resources/{RESOURCE_ID}"),
        "authorization_endpoint": format!("{env}/resources/{RESOURCE_ID}/oauth/authorize"),
        "token_endpoint": format!("{env}/resources/{RESOURCE_ID}/oauth/token"),
        "registration_endpoint": format!("{env}/api/v1/resources/{RESOURCE_ID}/clients:register"),
        "jwks_uri": format!("{env}/keys"),
        "client_id_metadata_document_supported": true,
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"]
    });
    Mock::given(method("GET"))
        .and(path(format!(
            "/.well-known/oauth-authorization-server/resources/{RESOURCE_ID}"
        )))
        .respond_with(ResponseTemplate::new(200).set_body_json(metadata))
        .mount(&server)
        .await;
    server
}

async fn call(app: &TestApp, token: &str) -> u16 {
    app.mcp_post()
        .bearer_auth(token)
        .json(&tool_call(1, "web_search", json!({ "query": "scalekit" })))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn scalekit_tokens_in_both_issuer_forms_are_accepted_for_this_resource_only() {
    let scalekit = fake_scalekit().await;
    let env = scalekit.uri();
    let port = free_port();
    let resource = format!("http://127.0.0.1:{port}/web-search/mcp");
    let app = spawn_with(
        |s| {
            s.server.bind = format!("127.0.0.1:{port}").parse().unwrap();
            s.auth.provider = AuthProviderKind::Scalekit;
            s.auth.scalekit.environment_url = Some(env.parse().unwrap());
            s.auth.scalekit.resource_id = Some(RESOURCE_ID.into());
        },
        |b| b,
    )
    .await;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    // The claims of a real Scalekit MCP token (reference §A.4).
    let claims = |iss: &str, aud: Value| {
        json!({
            "aud": aud, "client_id": "https://www.mcpjam.com/.well-known/oauth/client-metadata.json",
            "iss": iss, "sub": "usr_1", "oid": "org_1", "resid": RESOURCE_ID,
            "scope": "openid offline_access web-search:read", "scopes": ["openid", "offline_access", "web-search:read"],
            "sid": "ses_1", "exp": now + 3600, "iat": now, "nbf": now, "jti": "tkn_1"
        })
    };
    let resource_issuer = format!("{env}/resources/{RESOURCE_ID}");
    let cases = [
        (
            claims(&env, json!([resource, RESOURCE_ID])),
            200,
            "environment issuer, both audiences",
        ),
        (
            claims(&resource_issuer, json!([resource, RESOURCE_ID])),
            200,
            "resource-scoped issuer",
        ),
        (
            claims(&env, json!([RESOURCE_ID])),
            200,
            "no Server URL configured: aud is only res_…",
        ),
        (
            claims(&env, json!(["res_999"])),
            401,
            "a token for another resource of the same environment",
        ),
        (
            claims("https://other.scalekit.dev", json!([RESOURCE_ID])),
            401,
            "another environment",
        ),
    ];
    for (claims, status, why) in &cases {
        assert_eq!(call(&app, &sign(claims)).await, *status, "{why}");
    }
    let mut array_only = claims(&env, json!([RESOURCE_ID]));
    array_only.as_object_mut().unwrap().remove("scope");
    assert_eq!(
        call(&app, &sign(&array_only)).await,
        200,
        "scopes only in the `scopes` array (Scalekit SDKs)"
    );
    let mut no_scope = claims(&env, json!([RESOURCE_ID]));
    no_scope["scope"] = json!("openid");
    no_scope["scopes"] = json!(["openid"]);
    assert_eq!(call(&app, &sign(&no_scope)).await, 403);

    let prm: Value = app
        .get_json("/.well-known/oauth-protected-resource/web-search/mcp")
        .await;
    assert_eq!(prm["authorization_servers"], json!([resource_issuer]));
    assert_eq!(prm["resource"], resource);
    let metadata: Value = app
        .get_json("/.well-known/oauth-authorization-server")
        .await;
    assert_eq!(
        metadata["issuer"], resource_issuer,
        "Scalekit's metadata, forwarded as published"
    );
    assert_eq!(
        metadata["registration_endpoint"],
        app.url("/oauth/register"),
        "clients reading it here register through searchgate (which forwards to Scalekit)"
    );

    let key_fetches = scalekit
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path() == "/keys")
        .count();
    assert_eq!(key_fetches, 1, "the keys were fetched once and cached");
}

#[tokio::test]
async fn metadata_naming_another_issuer_is_a_502_not_forwarded() {
    let impostor = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!(
            "/.well-known/oauth-authorization-server/resources/{RESOURCE_ID}"
        )))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({ "issuer": "https://attacker.example" })),
        )
        .mount(&impostor)
        .await;
    let env = impostor.uri();
    let app = spawn_with(
        |s| {
            s.auth.provider = AuthProviderKind::Scalekit;
            s.auth.scalekit.environment_url = Some(env.parse().unwrap());
            s.auth.scalekit.resource_id = Some(RESOURCE_ID.into());
        },
        |b| b,
    )
    .await;
    let response = app
        .http
        .get(app.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        502,
        "MCP 2026-07-28: metadata whose issuer differs must not be used"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "bad_gateway");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("attacker.example"),
        "{body}"
    );
}
