//! Contract: with `auth.provider = oidc`, searchgate is an OAuth 2.1 resource server for a real
//! OpenID provider (oidc-provider on loopback): discovery documents name the IdP and the exact
//! resource, every wrong token gets its precise status and challenge, scopes are enforced per
//! tool, cached keys survive an IdP outage, opaque tokens are introspected, and the official
//! TypeScript SDK client gets from a 401 to a tool result on its own.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use searchgate::config::{AuthProviderKind, Settings, TokenValidation};
use serde_json::{Value, json};

use crate::{
    helpers::{TestApp, free_port, searchgate, spawn_with, tool_call},
    idp::{Idp, run_sdk_client},
};

/// An IdP and a searchgate that trusts it, on a port known to both.
struct Stack {
    idp: Idp,
    app: TestApp,
    resource: String,
}

async fn stack(configure: impl FnOnce(&mut Settings), idp_env: &[(&str, &str)]) -> Stack {
    let port = free_port();
    let resource = format!("http://127.0.0.1:{port}/web-search/mcp");
    let idp = Idp::start(
        &resource,
        &format!("http://127.0.0.1:{port}/other/mcp"),
        idp_env,
    )
    .await;
    let issuer = idp.issuer();
    let app = spawn_with(
        |s| {
            s.server.bind = format!("127.0.0.1:{port}").parse().unwrap();
            s.auth.provider = AuthProviderKind::Oidc;
            s.auth.oidc.issuer = Some(issuer);
            configure(s);
        },
        |builder| builder,
    )
    .await;
    Stack { idp, app, resource }
}

fn call() -> Value {
    tool_call(1, "web_search", json!({ "query": "oauth" }))
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Status, the `WWW-Authenticate` header and the body of a `tools/call` with `token`.
async fn call_with(app: &TestApp, token: &str) -> (u16, String, Value) {
    let response = app
        .mcp_post()
        .bearer_auth(token)
        .json(&call())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (
        status,
        challenge,
        response.json().await.unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn discovery_documents_name_the_idp_and_the_exact_resource() {
    let stack = stack(|_| {}, &[]).await;
    let app = &stack.app;
    for path in [
        "/.well-known/oauth-protected-resource/web-search/mcp",
        "/.well-known/oauth-protected-resource",
    ] {
        let response = app
            .http
            .get(app.url(path))
            .header("host", "proxy.evil.example")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let metadata: Value = response.json().await.unwrap();
        assert_eq!(
            metadata,
            json!({
                "resource": stack.resource,
                "authorization_servers": [stack.idp.issuer()],
                "scopes_supported": ["web-search:read"],
                "bearer_methods_supported": ["header"],
                "resource_name": "searchgate web search"
            }),
            "{path}: built from configuration, whatever the Host header says"
        );
    }
    // MCP 2025-03-26 clients look for the AS metadata on the MCP origin.
    for path in [
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
    ] {
        let metadata: Value = app.get_json(path).await;
        assert_eq!(
            metadata["issuer"],
            stack.idp.issuer(),
            "{path} forwards the IdP's document"
        );
        assert_eq!(
            metadata["code_challenge_methods_supported"],
            json!(["S256"])
        );
    }
    let ready: Value = app.get_json("/readyz").await;
    assert_eq!(ready["auth"], "oidc");

    // A browser's CORS preflight carries no token and is answered before authentication.
    let preflight = app
        .http
        .request(reqwest::Method::OPTIONS, &app.mcp_url)
        .header("origin", "http://localhost:6274")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization, content-type, mcp-protocol-version",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 200);
    let exposed = preflight.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(exposed.contains("www-authenticate"), "{exposed}");
    let prm = app
        .http
        .get(app.url("/.well-known/oauth-protected-resource"))
        .header("origin", "http://localhost:6274")
        .send()
        .await
        .unwrap();
    assert_eq!(
        prm.headers()["access-control-allow-origin"],
        "http://localhost:6274",
        "browsers can read the metadata"
    );
}

#[tokio::test]
async fn configured_audiences_replace_the_resource_url() {
    let stack = stack(
        |s| {
            s.auth.audiences = vec![
                s.server
                    .public_url_or(s.server.bind)
                    .join("/other/mcp")
                    .unwrap()
                    .to_string(),
            ]
        },
        &[],
    )
    .await;
    let other = stack.resource.replace("/web-search/mcp", "/other/mcp");
    let for_resource = stack
        .idp
        .client_token("searchgate-cc", &stack.resource, Some("web-search:read"))
        .await;
    let for_other = stack
        .idp
        .client_token("searchgate-cc", &other, Some("web-search:read"))
        .await;
    assert_eq!(
        call_with(&stack.app, &for_other).await.0,
        200,
        "SEARCHGATE_AUTH__AUDIENCES names the audience"
    );
    assert_eq!(
        call_with(&stack.app, &for_resource).await.0,
        401,
        "and only that one"
    );
}

#[tokio::test]
async fn a_client_credentials_token_calls_web_search_and_is_audited() {
    let stack = stack(|_| {}, &[]).await;
    let token = stack
        .idp
        .client_token("searchgate-cc", &stack.resource, Some("web-search:read"))
        .await;
    let (status, _, body) = call_with(&stack.app, &token).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"]["structuredContent"]["provider"], "mock");
    let (again, _, _) = call_with(&stack.app, &token).await;
    assert_eq!(
        again, 200,
        "a repeated token is served from the verified-token cache"
    );
    let rows = stack.app.stop().await.rows;
    assert_eq!(rows.len(), 2);
    assert_eq!(
        rows[0].subject.as_deref(),
        Some("searchgate-cc"),
        "client-credentials tokens name the client"
    );
    assert_eq!(rows[0].outcome, "success");
}

#[tokio::test]
async fn every_bad_token_gets_its_exact_status_and_challenge() {
    let stack = stack(|_| {}, &[]).await;
    let (idp, app, resource) = (&stack.idp, &stack.app, stack.resource.as_str());
    let prm = format!(
        "http://{}/.well-known/oauth-protected-resource/web-search/mcp",
        app.addr
    );
    let claims = |overrides: Value| {
        let mut base = json!({
            "iss": idp.issuer(), "sub": "forger", "aud": resource, "exp": now() + 300, "iat": now(),
            "client_id": "forge", "scope": "web-search:read"
        });
        for (key, value) in overrides.as_object().unwrap() {
            if value.is_null() {
                base.as_object_mut().unwrap().remove(key);
            } else {
                base[key] = value.clone();
            }
        }
        base
    };

    // No credentials: 401 with resource_metadata and scope and no error code (RFC 6750 §3.1).
    let anonymous = app.mcp_post().json(&call()).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    assert_eq!(
        anonymous.headers()["www-authenticate"].to_str().unwrap(),
        format!("Bearer resource_metadata=\"{prm}\", scope=\"web-search:read\"")
    );

    // Malformed authorization: 400 invalid_request.
    let good = idp
        .client_token("searchgate-cc", resource, Some("web-search:read"))
        .await;
    let two = app
        .mcp_post()
        .bearer_auth(&good)
        .header("authorization", format!("Bearer {good}"))
        .json(&call())
        .send()
        .await
        .unwrap();
    let basic = app
        .mcp_post()
        .basic_auth("user", Some("pass"))
        .json(&call())
        .send()
        .await
        .unwrap();
    let query = app
        .http
        .post(format!("{}?access_token={good}", app.mcp_url))
        .header("accept", "application/json, text/event-stream")
        .json(&call())
        .send()
        .await
        .unwrap();
    let huge = app
        .mcp_post()
        .bearer_auth("a".repeat(9 * 1024))
        .json(&call())
        .send()
        .await
        .unwrap();
    // Another scheme is no bearer credentials (RFC 6750 §3.1): challenged like no header.
    assert_eq!(basic.status(), 401, "another scheme");
    assert_eq!(
        basic.headers()["www-authenticate"].to_str().unwrap(),
        format!("Bearer resource_metadata=\"{prm}\", scope=\"web-search:read\"")
    );
    for (response, why) in [
        (two, "two headers"),
        (query, "token in the query"),
        (huge, "over 8 KiB"),
    ] {
        assert_eq!(response.status(), 400, "{why}");
        let challenge = response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            challenge.starts_with("Bearer error=\"invalid_request\""),
            "{why}: {challenge}"
        );
    }

    // Tokens a real IdP issues, and forged ones it never would: each 401 invalid_token.
    let expired = idp
        .client_token("searchgate-cc-expired", resource, Some("web-search:read"))
        .await;
    let other_audience = idp
        .client_token(
            "searchgate-cc",
            &resource.replace("/web-search/mcp", "/other/mcp"),
            Some("web-search:read"),
        )
        .await;
    let (future, public_pem) = idp
        .sign(json!({}), claims(json!({ "nbf": now() + 3600 })), false)
        .await;
    let (no_exp, _) = idp
        .sign(json!({}), claims(json!({ "exp": null })), false)
        .await;
    let (foreign_iss, _) = idp
        .sign(
            json!({}),
            claims(json!({ "iss": "http://127.0.0.1:1" })),
            false,
        )
        .await;
    let (unknown_kid, _) = idp.sign(json!({}), claims(json!({})), true).await;
    let alg_none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"at+jwt"}"#),
        URL_SAFE_NO_PAD.encode(claims(json!({})).to_string())
    );
    let kid = idp.info["signing_kid"].as_str().unwrap();
    let mut hs_header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    hs_header.kid = Some(kid.to_owned());
    let hs256_with_public_key = jsonwebtoken::encode(
        &hs_header,
        &claims(json!({})),
        &jsonwebtoken::EncodingKey::from_secret(public_pem.as_bytes()),
    )
    .unwrap();
    let tampered = {
        let (head, signature) = good.rsplit_once('.').unwrap();
        let mut bytes = URL_SAFE_NO_PAD.decode(signature).unwrap();
        bytes[10] ^= 0x01;
        format!("{head}.{}", URL_SAFE_NO_PAD.encode(bytes))
    };
    let cases = [
        (expired, "token_expired"),
        (other_audience, "wrong_audience"),
        (future, "token_not_yet_valid"),
        (no_exp, "missing_claim"),
        (foreign_iss, "wrong_issuer"),
        (unknown_kid, "unknown_kid"),
        (alg_none, "disallowed_algorithm"),
        (hs256_with_public_key, "disallowed_algorithm"),
        (tampered, "bad_signature"),
    ];
    for (token, reason) in &cases {
        let (status, challenge, body) = call_with(app, token).await;
        assert_eq!(status, 401, "{reason}");
        assert!(
            challenge.starts_with("Bearer error=\"invalid_token\", error_description=\""),
            "{reason}: {challenge}"
        );
        assert!(
            challenge.ends_with(&format!(
                "resource_metadata=\"{prm}\", scope=\"web-search:read\""
            )),
            "{reason}: {challenge}"
        );
        assert_eq!(
            body["error"], "invalid_token",
            "{reason}: the body has the OAuth shape"
        );
    }

    // A valid token without the tool's scope: 403 step-up naming every scope the tool needs.
    let admin_only = idp
        .client_token("searchgate-cc", resource, Some("web-search:admin"))
        .await;
    let (status, challenge, _) = call_with(app, &admin_only).await;
    assert_eq!(status, 403);
    assert!(
        challenge.starts_with("Bearer error=\"insufficient_scope\""),
        "{challenge}"
    );
    assert!(
        challenge.contains("scope=\"web-search:read\"")
            && challenge.contains(&format!("resource_metadata=\"{prm}\"")),
        "{challenge}"
    );
    // The same token may still list tools: tools/list shows every tool and calls are checked.
    let list = app
        .mcp_post()
        .bearer_auth(&admin_only)
        .json(&json!({ "jsonrpc": "2.0", "id": 2, "method": "tools/list" }))
        .send()
        .await
        .unwrap();
    assert_eq!(list.status(), 200);

    let (status, _, _) = call_with(app, &good).await;
    assert_eq!(status, 200, "and the good token works");

    let rows = stack.app.stop().await.rows;
    let reasons: Vec<_> = rows
        .iter()
        .map(|r| (r.outcome.as_str(), r.error_code.as_deref().unwrap_or("")))
        .collect();
    let mut expected = vec![
        ("unauthenticated", "missing_token"),
        ("unauthenticated", "malformed_authorization"),
        ("unauthenticated", "missing_token"),
        ("unauthenticated", "malformed_authorization"),
        ("unauthenticated", "malformed_authorization"),
    ];
    expected.extend(cases.iter().map(|(_, reason)| ("unauthenticated", *reason)));
    expected.push(("forbidden", "insufficient_scope"));
    expected.push(("success", ""));
    expected.push(("success", ""));
    assert_eq!(
        reasons, expected,
        "every refusal is audited with its reason"
    );
}

#[tokio::test]
async fn a_broader_scope_implies_the_narrower_one() {
    let stack = stack(
        |s| {
            s.auth
                .scope_implications
                .insert("web-search:admin".into(), vec!["web-search:read".into()]);
        },
        &[],
    )
    .await;
    let admin = stack
        .idp
        .client_token("searchgate-cc", &stack.resource, Some("web-search:admin"))
        .await;
    assert_eq!(call_with(&stack.app, &admin).await.0, 200);
}

#[tokio::test]
async fn cached_keys_outlive_the_idp_and_a_new_key_then_gets_503() {
    let mut stack = stack(|_| {}, &[]).await;
    let first = stack
        .idp
        .client_token("searchgate-cc", &stack.resource, Some("web-search:read"))
        .await;
    let second = stack
        .idp
        .client_token("searchgate-cc", &stack.resource, Some("web-search:read"))
        .await;
    assert_eq!(
        call_with(&stack.app, &first).await.0,
        200,
        "the keys are fetched and cached"
    );
    stack.idp.rotate().await;
    let rotated = stack
        .idp
        .client_token("searchgate-cc", &stack.resource, Some("web-search:read"))
        .await;
    stack.idp.stop();
    let (status, _, _) = call_with(&stack.app, &second).await;
    assert_eq!(
        status, 200,
        "a new token signed by a cached key verifies with the IdP down"
    );
    let response = stack
        .app
        .mcp_post()
        .bearer_auth(&rotated)
        .json(&call())
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        503,
        "a key searchgate has never seen cannot be fetched: 503, not 401"
    );
    assert!(response.headers().contains_key("retry-after"));
    let metadata = stack
        .app
        .http
        .get(stack.app.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        metadata.status(),
        503,
        "nothing cached for the metadata either"
    );
}

#[tokio::test]
async fn an_unreachable_idp_at_start_gives_503_not_401() {
    let port = free_port();
    let app = spawn_with(
        |s| {
            s.auth.provider = AuthProviderKind::Oidc;
            s.auth.oidc.issuer = Some(format!("http://127.0.0.1:{port}"));
        },
        |b| b,
    )
    .await;
    let response = app
        .mcp_post()
        .bearer_auth("eyJhbGciOiJSUzI1NiJ9.e30.c2ln")
        .json(&call())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));
    let anonymous = app.mcp_post().json(&call()).send().await.unwrap();
    assert_eq!(
        anonymous.status(),
        401,
        "a request without a token is still told where to get one"
    );
    let rows = app.stop().await.rows;
    assert_eq!(rows[0].error_code.as_deref(), Some("idp_unavailable"));
}

#[tokio::test]
async fn introspection_accepts_active_opaque_tokens_and_refuses_revoked_ones() {
    let mut stack = stack(
        |s| {
            s.auth.oidc.validation = TokenValidation::Introspection;
            s.auth.oidc.client_id = Some("searchgate-rs".into());
            s.auth.oidc.client_secret = Some(searchgate::config::Secret::new("rs-secret"));
        },
        &[],
    )
    .await;
    let opaque = stack
        .idp
        .client_token(
            "searchgate-cc-opaque",
            &stack.resource,
            Some("web-search:read"),
        )
        .await;
    assert_eq!(opaque.split('.').count(), 1, "an opaque token, not a JWT");
    assert_eq!(call_with(&stack.app, &opaque).await.0, 200);

    let revoked = stack
        .idp
        .client_token(
            "searchgate-cc-opaque",
            &stack.resource,
            Some("web-search:read"),
        )
        .await;
    stack.idp.revoke("searchgate-cc-opaque", &revoked).await;
    let (status, challenge, _) = call_with(&stack.app, &revoked).await;
    assert_eq!(status, 401, "active: false");
    assert!(challenge.contains("invalid_token"));

    let unused = stack
        .idp
        .client_token(
            "searchgate-cc-opaque",
            &stack.resource,
            Some("web-search:read"),
        )
        .await;
    stack.idp.stop();
    assert_eq!(
        call_with(&stack.app, &opaque).await.0,
        200,
        "an introspection result is cached"
    );
    assert_eq!(
        call_with(&stack.app, &unused).await.0,
        503,
        "an unknown token cannot be checked while the IdP is down"
    );
    let rows = stack.app.stop().await.rows;
    let codes: Vec<_> = rows.iter().map(|r| r.error_code.as_deref()).collect();
    assert_eq!(
        codes,
        [None, Some("token_inactive"), None, Some("idp_unavailable")]
    );
}

#[tokio::test]
async fn the_typescript_sdk_client_discovers_registers_authorizes_and_calls_web_search() {
    let stack = stack(|_| {}, &[]).await;
    let report = run_sdk_client(&stack.app.mcp_url).await;
    assert_eq!(
        report["tools"],
        json!(["web_search", "web_extract", "web_crawl", "web_map"])
    );
    assert_eq!(report["is_error"], false);
    assert_eq!(report["result"]["results"].as_array().unwrap().len(), 2);
    assert_eq!(
        report["authorize"]["resource"], stack.resource,
        "RFC 8707: the resource is the PRM's, verbatim"
    );
    assert_eq!(report["authorize"]["code_challenge_method"], "S256");
    assert_eq!(
        report["authorize"]["scope"], "web-search:read",
        "the scope comes from the 401 challenge"
    );
    assert_eq!(report["refreshed"], true);
    assert_eq!(report["after_refresh"]["query"], "after refresh");
    let requests: Vec<&str> = report["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    assert!(requests[0].ends_with("/web-search/mcp 401"), "{requests:?}");
    assert!(
        requests[1].starts_with("GET /.well-known/oauth-protected-resource/web-search/mcp 200"),
        "{requests:?}"
    );
    let rows = stack.app.stop().await.rows;
    assert!(
        rows.iter()
            .any(|r| r.tool.as_deref() == Some("web_search")
                && r.subject.as_deref() == Some("alice"))
    );
}

#[tokio::test]
async fn check_config_probes_the_idp() {
    let port = free_port();
    let resource = format!("http://127.0.0.1:{port}/web-search/mcp");
    let idp = Idp::start(&resource, &resource, &[]).await;
    let dir = tempfile::tempdir().unwrap();
    let issuer = idp.issuer();
    let check_config = |issuer: &str| {
        let env = [
            ("SEARCHGATE_AUTH__PROVIDER", "oidc"),
            ("SEARCHGATE_AUTH__OIDC__ISSUER", issuer),
        ];
        let output = searchgate(dir.path(), &env)
            .arg("check-config")
            .output()
            .unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
        )
    };
    let (code, text) = check_config(&issuer);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("# ok      discovery:"), "{text}");
    assert!(text.contains("# ok      signing keys: 1 usable"), "{text}");

    let (code, text) = check_config(&format!("{issuer}/"));
    assert_eq!(code, Some(1), "discovery compares issuers exactly: {text}");
    assert!(
        text.contains("# PROBLEM discovery:") && text.contains(&issuer),
        "the probe names the provider's issuer: {text}"
    );

    drop(idp);
    let (code, text) = check_config(&issuer);
    assert_eq!(
        code,
        Some(1),
        "a valid configuration whose IdP cannot be reached: {text}"
    );
    assert!(text.contains("# PROBLEM discovery:"), "{text}");
}
