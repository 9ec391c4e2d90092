//! The embedded development authorization server, end to end: the official TypeScript SDK
//! client signs in through it; every OAuth error path answers its RFC 6749 / OAuth 2.1 error;
//! its tokens are accepted by the resource server, survive a restart, and are refused once
//! their key is retired.

use std::time::Duration;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use reqwest::{StatusCode, header};
use searchgate::config::{AuthProviderKind, Settings};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sqlx::sqlite::SqlitePoolOptions;

use crate::{
    helpers::{TestApp, free_port, searchgate, spawn_binary, spawn_with, tool_call},
    idp::run_sdk_client,
};

pub const REDIRECT: &str = "http://127.0.0.1:45678/callback";
pub const VERIFIER: &str = "a-very-long-pkce-code-verifier-with-at-least-43-characters";
/// Well-formed, but not the verifier of the codes `OAuth` asks for.
const WRONG_VERIFIER: &str = "the-wrong-verifier-the-wrong-verifier-the-wrong";

fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

pub async fn spawn_embedded(configure: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_with(
        |s| {
            s.auth.provider = AuthProviderKind::Embedded;
            configure(s);
        },
        |b| b,
    )
    .await
}

/// A client of the embedded server that does not follow redirects.
pub struct OAuth<'a> {
    /// Where its requests go: `http://127.0.0.1:<port>`.
    base: String,
    /// The resource it asks tokens for.
    mcp_url: String,
    _app: std::marker::PhantomData<&'a TestApp>,
    pub http: reqwest::Client,
}

impl<'a> OAuth<'a> {
    pub fn new(app: &'a TestApp) -> Self {
        Self::at(&app.url(""), &app.mcp_url)
    }

    /// A client of the server at `base` (a replica, say) asking for tokens for `mcp_url`.
    pub fn at(base: &str, mcp_url: &str) -> Self {
        Self {
            base: base.to_owned(),
            mcp_url: mcp_url.to_owned(),
            _app: std::marker::PhantomData,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn register(&self, metadata: Value) -> (StatusCode, Value) {
        let response = self
            .http
            .post(self.url("/oauth/register"))
            .json(&metadata)
            .send()
            .await
            .unwrap();
        (response.status(), response.json().await.unwrap())
    }

    pub async fn public_client(&self) -> String {
        let (status, body) = self
            .register(json!({
                "client_name": "Test client",
                "redirect_uris": [REDIRECT],
                "grant_types": ["authorization_code", "refresh_token"],
                "token_endpoint_auth_method": "none"
            }))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["client_id"].as_str().unwrap().to_owned()
    }

    /// The standard authorization request parameters, with `overrides` replacing or (with an
    /// empty value) removing some.
    pub fn params(&self, client_id: &str, overrides: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut params: Vec<(String, String)> = [
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", REDIRECT),
            ("code_challenge", &challenge(VERIFIER)),
            ("code_challenge_method", "S256"),
            ("scope", "web-search:read"),
            ("state", "st-123"),
            ("resource", &self.mcp_url),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        for (name, value) in overrides {
            params.retain(|(k, _)| k != name);
            if !value.is_empty() {
                params.push(((*name).to_owned(), (*value).to_owned()));
            }
        }
        params
    }

    pub async fn authorize(&self, params: &[(String, String)]) -> reqwest::Response {
        let mut url = url::Url::parse(&self.url("/idp/authorize")).unwrap();
        url.query_pairs_mut().extend_pairs(params);
        self.http.get(url).send().await.unwrap()
    }

    /// The consent page's HTML for `client_id` with the default parameters.
    pub async fn consent_page(&self, client_id: &str) -> String {
        let page = self.authorize(&self.params(client_id, &[])).await;
        page.text().await.unwrap()
    }

    pub async fn decide(&self, ticket: &str, decision: &str) -> reqwest::Response {
        self.http
            .post(self.url("/idp/authorize"))
            .form(&[("ticket", ticket), ("decision", decision)])
            .send()
            .await
            .unwrap()
    }

    /// Posts `decision` on `ticket` as a browser at `origin` would.
    pub async fn decide_from(&self, origin: &str, ticket: &str) -> reqwest::Response {
        self.http
            .post(self.url("/idp/authorize"))
            .header(reqwest::header::ORIGIN, origin)
            .form(&[("ticket", ticket), ("decision", "approve")])
            .send()
            .await
            .unwrap()
    }

    /// Walks the consent page with `decision` and returns the redirect's query.
    pub async fn consent(
        &self,
        params: &[(String, String)],
        decision: &str,
    ) -> Vec<(String, String)> {
        let page = self.authorize(params).await;
        assert_eq!(page.status(), StatusCode::OK);
        let html = page.text().await.unwrap();
        let response = self.decide(&ticket_in(&html), decision).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        redirect_query(&response)
    }

    /// A fresh authorization code for `client_id`.
    pub async fn code(&self, client_id: &str) -> String {
        let query = self.consent(&self.params(client_id, &[]), "approve").await;
        value_of(&query, "code").expect("a code")
    }

    pub async fn token(&self, form: &[(&str, &str)]) -> (StatusCode, Value) {
        let response = self
            .http
            .post(self.url("/idp/token"))
            .form(form)
            .send()
            .await
            .unwrap();
        (response.status(), response.json().await.unwrap())
    }

    pub async fn exchange(
        &self,
        client_id: &str,
        code: &str,
        verifier: &str,
    ) -> (StatusCode, Value) {
        self.token(&[
            ("grant_type", "authorization_code"),
            ("client_id", client_id),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier),
        ])
        .await
    }

    pub async fn refresh(&self, client_id: &str, refresh_token: &str) -> (StatusCode, Value) {
        self.token(&[
            ("grant_type", "refresh_token"),
            ("client_id", client_id),
            ("refresh_token", refresh_token),
        ])
        .await
    }
}

pub fn ticket_in(html: &str) -> String {
    let start = html
        .find("name=\"ticket\" value=\"")
        .expect("a ticket field")
        + 21;
    html[start..].split('"').next().unwrap().to_owned()
}

pub fn redirect_query(response: &reqwest::Response) -> Vec<(String, String)> {
    let location = response
        .headers()
        .get(header::LOCATION)
        .expect("a redirect")
        .to_str()
        .unwrap();
    assert!(location.starts_with(REDIRECT), "{location}");
    url::Url::parse(location)
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

pub fn value_of(query: &[(String, String)], name: &str) -> Option<String> {
    query
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
}

pub async fn search_with(app: &TestApp, token: &str) -> StatusCode {
    app.mcp_post()
        .bearer_auth(token)
        .json(&tool_call(1, "web_search", json!({ "query": "embedded" })))
        .send()
        .await
        .unwrap()
        .status()
}

pub fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

#[tokio::test]
async fn the_typescript_sdk_client_registers_is_approved_calls_web_search_and_refreshes() {
    let app = spawn_embedded(|_| {}).await;
    let report = run_sdk_client(&app.mcp_url).await;
    assert_eq!(
        report["tools"],
        json!(["web_search", "web_extract", "web_crawl", "web_map"])
    );
    assert_eq!(report["is_error"], false);
    assert_eq!(report["result"]["results"].as_array().unwrap().len(), 2);
    assert_eq!(report["authorize"]["resource"], app.mcp_url.as_str());
    assert_eq!(report["authorize"]["code_challenge_method"], "S256");
    assert_eq!(report["refreshed"], true);
    assert_eq!(report["after_refresh"]["query"], "after refresh");
    assert_eq!(
        report["reuse_rejected"], true,
        "a used refresh token is refused"
    );
    let requests = report["requests"].to_string();
    assert!(requests.contains("POST /oauth/register 201"), "{requests}");
    assert!(requests.contains("POST /idp/token 200"), "{requests}");
    let rows = app.stop().await.rows;
    assert!(
        rows.iter().any(|r| r.tool.as_deref() == Some("web_search")
            && r.outcome == "success"
            && r.subject.as_deref() == Some("operator")),
        "the call is audited with the operator as subject: {rows:?}"
    );
}

#[tokio::test]
async fn metadata_is_served_where_mcp_clients_look_with_the_exact_issuer() {
    let app = spawn_embedded(|_| {}).await;
    let issuer = app.url("/idp");
    let prm = app
        .get_json("/.well-known/oauth-protected-resource/web-search/mcp")
        .await;
    assert_eq!(prm["authorization_servers"], json!([issuer]));
    for path in [
        "/.well-known/oauth-authorization-server/idp",
        "/.well-known/openid-configuration/idp",
        "/idp/.well-known/openid-configuration",
        "/idp/.well-known/oauth-authorization-server",
        "/.well-known/oauth-authorization-server",
    ] {
        let metadata = app.get_json(path).await;
        assert_eq!(metadata["issuer"], issuer, "{path}");
        assert_eq!(
            metadata["code_challenge_methods_supported"],
            json!(["S256"]),
            "{path}"
        );
        assert_eq!(
            metadata["registration_endpoint"],
            app.url("/oauth/register")
        );
        assert_eq!(
            metadata["authorization_response_iss_parameter_supported"],
            true
        );
    }
    let jwks = app.get_json("/idp/jwks").await;
    assert_eq!(jwks["keys"][0]["alg"], "RS256");
    assert!(
        jwks["keys"][0].get("d").is_none(),
        "no private key material"
    );
}

#[tokio::test]
async fn an_approved_code_becomes_an_access_token_the_resource_server_accepts() {
    let app = spawn_embedded(|_| {}).await;
    let oauth = OAuth::new(&app);
    let client_id = oauth.public_client().await;
    let query = oauth
        .consent(&oauth.params(&client_id, &[]), "approve")
        .await;
    assert_eq!(value_of(&query, "state").as_deref(), Some("st-123"));
    assert_eq!(value_of(&query, "iss"), Some(app.url("/idp")), "RFC 9207");
    let code = value_of(&query, "code").unwrap();
    let (status, body) = oauth.exchange(&client_id, &code, VERIFIER).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert!(body["refresh_token"].is_string());
    let token = body["access_token"].as_str().unwrap();
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(token.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(header["alg"], "RS256");
    let claims = claims(token);
    assert_eq!(claims["iss"], app.url("/idp"));
    assert_eq!(claims["aud"], app.mcp_url.as_str());
    assert_eq!(claims["sub"], "operator");
    assert_eq!(claims["client_id"], client_id.as_str());
    assert_eq!(claims["scope"], "web-search:read");
    assert!(claims["jti"].is_string());
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        3600
    );
    assert_eq!(search_with(&app, token).await, StatusCode::OK);
    assert_eq!(
        search_with(&app, &format!("{token}x")).await,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn codes_need_the_right_pkce_verifier_are_single_use_and_expire() {
    let app = spawn_embedded(|s| s.auth.embedded.code_ttl_secs = 1).await;
    let oauth = OAuth::new(&app);
    let client_id = oauth.public_client().await;

    let code = oauth.code(&client_id).await;
    let (status, body) = oauth.exchange(&client_id, &code, WRONG_VERIFIER).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    assert!(
        body["error_description"].as_str().unwrap().contains("PKCE"),
        "{body}"
    );
    // A refused exchange does not spend the code: the real client still gets its tokens.
    let (status, _) = oauth.exchange(&client_id, &code, VERIFIER).await;
    assert_eq!(status, StatusCode::OK);

    // Reuse: the second exchange fails and revokes what the first one issued.
    let code = oauth.code(&client_id).await;
    let (status, first) = oauth.exchange(&client_id, &code, VERIFIER).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = oauth.exchange(&client_id, &code, VERIFIER).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    let (status, body) = oauth
        .refresh(&client_id, first["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant")),
        "the replayed code's refresh token is revoked"
    );

    // The code lives one second, counted in whole seconds, so it expires one to two seconds
    // from now. Ask with a wrong verifier, which leaves the code unspent, until the answer says
    // it has expired (within a bound), then ask with the right one.
    let code = oauth.code(&client_id).await;
    let mut expired = false;
    for _ in 0..100 {
        let (_, body) = oauth.exchange(&client_id, &code, WRONG_VERIFIER).await;
        let description = body["error_description"].as_str().unwrap_or_default();
        if description.contains("expired") {
            expired = true;
            break;
        }
        assert!(
            description.contains("PKCE"),
            "until it expires the code is refused only for its verifier: {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        expired,
        "a code that lives 1 s is refused as expired within 5 s"
    );
    let (status, body) = oauth.exchange(&client_id, &code, VERIFIER).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("expired"),
        "{body}"
    );

    let (status, body) = oauth.exchange(&client_id, "no-such-code", VERIFIER).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    let (status, body) = oauth.exchange("sg_unknown", "x", VERIFIER).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client"))
    );
    let (status, body) = oauth
        .token(&[("grant_type", "password"), ("client_id", &client_id)])
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("unsupported_grant_type"))
    );
}

#[tokio::test]
async fn refresh_tokens_rotate_and_a_reused_one_revokes_the_grant() {
    let app = spawn_embedded(|_| {}).await;
    let oauth = OAuth::new(&app);
    let client_id = oauth.public_client().await;
    let code = oauth.code(&client_id).await;
    let (_, first) = oauth.exchange(&client_id, &code, VERIFIER).await;
    let first_refresh = first["refresh_token"].as_str().unwrap();

    // A refused refresh (widening the scope) does not spend the token.
    let (status, body) = oauth
        .token(&[
            ("grant_type", "refresh_token"),
            ("client_id", &client_id),
            ("refresh_token", first_refresh),
            ("scope", "web-search:read admin:all"),
        ])
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_scope"))
    );
    let (status, second) = oauth.refresh(&client_id, first_refresh).await;
    assert_eq!(status, StatusCode::OK, "{second}");
    let second_refresh = second["refresh_token"].as_str().unwrap();
    assert_ne!(second_refresh, first_refresh, "rotated");
    assert_eq!(
        search_with(&app, second["access_token"].as_str().unwrap()).await,
        StatusCode::OK
    );

    let (status, body) = oauth.refresh(&client_id, first_refresh).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    let (status, body) = oauth.refresh(&client_id, second_refresh).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant")),
        "reuse revoked the whole grant, including the newest token"
    );

    let other = oauth.public_client().await;
    let code = oauth.code(&client_id).await;
    let (_, grant) = oauth.exchange(&client_id, &code, VERIFIER).await;
    let (status, body) = oauth
        .refresh(&other, grant["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
}

#[tokio::test]
async fn errors_that_must_not_redirect_are_shown_on_the_page() {
    let app = spawn_embedded(|_| {}).await;
    let oauth = OAuth::new(&app);
    let client_id = oauth.public_client().await;
    for (params, says) in [
        (oauth.params("sg_nobody", &[]), "not registered"),
        (
            oauth.params(
                &client_id,
                &[("redirect_uri", "http://127.0.0.1:45678/elsewhere")],
            ),
            "redirect_uri",
        ),
        (
            oauth.params(
                &client_id,
                &[("redirect_uri", "https://evil.example/callback")],
            ),
            "redirect_uri",
        ),
    ] {
        let response = oauth.authorize(&params).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert!(response.headers().get(header::LOCATION).is_none());
        assert_eq!(response.headers()["x-frame-options"], "DENY");
        assert!(response.text().await.unwrap().contains(says));
    }
    // Loopback redirect URIs match on any port (RFC 8252 §7.3).
    let other_port = oauth
        .authorize(&oauth.params(
            &client_id,
            &[("redirect_uri", "http://127.0.0.1:51000/callback")],
        ))
        .await;
    assert_eq!(other_port.status(), StatusCode::OK);
}

/// RFC 9700 §4.11.2: every client of the embedded server registered itself, so before the
/// operator has acted its redirect URI is a stranger's; errors are shown on the page.
#[tokio::test]
async fn request_errors_are_shown_on_the_page_and_only_the_decision_is_redirected() {
    let app = spawn_embedded(|_| {}).await;
    let oauth = OAuth::new(&app);
    let client_id = oauth.public_client().await;
    for (overrides, error) in [
        (&[("code_challenge", "")][..], "invalid_request"),
        (&[("code_challenge_method", "plain")][..], "invalid_request"),
        (&[("code_challenge_method", "")][..], "invalid_request"),
        (
            &[("response_type", "bogus")][..],
            "unsupported_response_type",
        ),
        (
            &[("response_type", "token")][..],
            "unsupported_response_type",
        ),
        (
            &[("resource", "https://other.example/mcp")][..],
            "invalid_target",
        ),
        (&[("scope", "admin:everything")][..], "invalid_scope"),
    ] {
        let response = oauth.authorize(&oauth.params(&client_id, overrides)).await;
        assert_eq!(
            response.status(),
            StatusCode::BAD_REQUEST,
            "{overrides:?}: no open redirect"
        );
        assert!(
            response.headers().get(header::LOCATION).is_none(),
            "{overrides:?}"
        );
        assert_eq!(response.headers()["x-frame-options"], "DENY");
        let html = response.text().await.unwrap();
        assert!(html.contains(error), "{overrides:?}: {html}");
    }
    // Without `resource` the token is for searchgate's resource anyway.
    let query = oauth
        .consent(&oauth.params(&client_id, &[("resource", "")]), "approve")
        .await;
    let (status, body) = oauth
        .exchange(&client_id, &value_of(&query, "code").unwrap(), VERIFIER)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        claims(body["access_token"].as_str().unwrap())["aud"],
        app.mcp_url.as_str()
    );
    // A foreign resource at the token endpoint is refused too.
    let code = oauth.code(&client_id).await;
    let (status, body) = oauth
        .token(&[
            ("grant_type", "authorization_code"),
            ("client_id", &client_id),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
            ("resource", "https://other.example/mcp"),
        ])
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_target"))
    );
    // Deny.
    let query = oauth.consent(&oauth.params(&client_id, &[]), "deny").await;
    assert_eq!(value_of(&query, "error").as_deref(), Some("access_denied"));
    assert_eq!(value_of(&query, "state").as_deref(), Some("st-123"));
    assert_eq!(value_of(&query, "iss"), Some(app.url("/idp")));
}

#[tokio::test]
async fn the_consent_form_refuses_cross_site_posts_and_forged_tickets() {
    let app = spawn_embedded(|_| {}).await;
    let oauth = OAuth::new(&app);
    let client_id = oauth.public_client().await;
    let html = oauth.consent_page(&client_id).await;
    assert!(
        html.contains("Test client")
            && html.contains("web-search:read")
            && html.contains("127.0.0.1")
    );
    let ticket = ticket_in(&html);
    let cross_site = oauth.decide_from("https://evil.example", &ticket).await;
    assert_eq!(cross_site.status(), StatusCode::FORBIDDEN);
    let forged = oauth.decide(&format!("{ticket}x"), "approve").await;
    assert_eq!(forged.status(), StatusCode::BAD_REQUEST);
    assert!(forged.headers().get(header::LOCATION).is_none());
    let same_site = oauth.decide_from(&app.url(""), &ticket).await;
    assert_eq!(same_site.status(), StatusCode::SEE_OTHER);
    // A consent ticket is never an access token.
    assert_eq!(search_with(&app, &ticket).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn confidential_clients_get_a_secret_once_and_use_client_credentials() {
    let app = spawn_embedded(|_| {}).await;
    let oauth = OAuth::new(&app);
    let (status, client) = oauth
        .register(json!({
            "client_name": "batch job",
            "grant_types": ["client_credentials"],
            "response_types": [],
            "token_endpoint_auth_method": "client_secret_basic"
        }))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{client}");
    let id = client["client_id"].as_str().unwrap();
    let secret = client["client_secret"].as_str().unwrap();
    assert_eq!(client["client_secret_expires_at"], 0);
    let token = |user: &str, password: &str| {
        oauth
            .http
            .post(app.url("/idp/token"))
            .basic_auth(user, Some(password))
            .form(&[
                ("grant_type", "client_credentials"),
                ("scope", "web-search:read"),
            ])
            .send()
    };
    let response = token(id, secret).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
    let body: Value = response.json().await.unwrap();
    assert!(body.get("refresh_token").is_none());
    assert_eq!(claims(body["access_token"].as_str().unwrap())["sub"], id);
    assert_eq!(
        search_with(&app, body["access_token"].as_str().unwrap()).await,
        StatusCode::OK
    );

    let wrong = token(id, "wrong").await.unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(
        wrong.headers()[header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .starts_with("Basic")
    );
    let body: Value = wrong.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");

    // It registered HTTP Basic, so the secret in the body is refused.
    let (status, body) = oauth
        .token(&[
            ("grant_type", "client_credentials"),
            ("client_id", id),
            ("client_secret", secret),
        ])
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client"))
    );

    // Public clients may not use client credentials.
    let public = oauth.public_client().await;
    let (status, body) = oauth
        .token(&[("grant_type", "client_credentials"), ("client_id", &public)])
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("unauthorized_client"))
    );

    // The secret is stored only as a hash.
    let pool = SqlitePoolOptions::new()
        .connect(&format!("sqlite://{}?mode=ro", app.db_path.display()))
        .await
        .unwrap();
    let stored: Option<String> =
        sqlx::query_scalar("SELECT secret_hash FROM idp_clients WHERE client_id = ?")
            .bind(id)
            .fetch_one(&pool)
            .await
            .unwrap();
    let stored = stored.unwrap();
    assert_ne!(stored, secret);
    assert_eq!(stored.len(), 64, "hex SHA-256");
}

#[tokio::test]
async fn registration_refuses_bad_metadata_with_rfc_7591_errors() {
    let app = spawn_embedded(|_| {}).await;
    let oauth = OAuth::new(&app);
    for (metadata, error) in [
        (
            json!({"redirect_uris": ["http://evil.example/cb"], "token_endpoint_auth_method": "none"}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": [], "token_endpoint_auth_method": "none"}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": ["https://a.example/cb#x"], "token_endpoint_auth_method": "none"}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "private_key_jwt"}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": [REDIRECT], "grant_types": ["implicit"]}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": "not a list"}),
            "invalid_client_metadata",
        ),
    ] {
        let (status, body) = oauth.register(metadata.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{metadata}");
        assert_eq!(body["error"], error, "{metadata}: {body}");
    }
}

#[tokio::test]
async fn client_id_metadata_documents_are_fetched_only_from_public_https_urls() {
    let app = spawn_embedded(|_| {}).await;
    let oauth = OAuth::new(&app);
    for client_id in [
        "https://127.0.0.1:9/client.json",
        "https://localhost/client.json",
        "https://[::1]/client.json",
    ] {
        let response = oauth.authorize(&oauth.params(client_id, &[])).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{client_id}");
        assert!(response.headers().get(header::LOCATION).is_none());
        let html = response.text().await.unwrap();
        assert!(
            html.contains("public host") || html.contains("this machine"),
            "{html}"
        );
    }
}

#[tokio::test]
async fn the_embedded_server_refuses_production_and_network_binds_unless_allowed() {
    let settings = Settings {
        profile: searchgate::config::Profile::Production,
        ..Settings::default()
    };
    assert!(
        settings.validate().is_err(),
        "embedded is refused in production"
    );
    let mut settings = Settings::default();
    settings.server.bind = "0.0.0.0:10000".parse().unwrap();
    settings.server.public_url = Some("http://192.0.2.10:10000".parse().unwrap());
    let error = settings.validate().unwrap_err().to_string();
    assert!(error.contains("ALLOW_REMOTE"), "{error}");
    settings.auth.embedded.allow_remote = true;
    settings
        .validate()
        .expect("allowed when the operator says so");
}

/// The binary: `searchgate token` mints tokens the server accepts, before and after a restart;
/// after `keys rotate` old tokens still work; after `keys retire` they are refused.
#[tokio::test]
async fn cli_tokens_survive_restarts_and_retired_keys_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port().to_string();
    let env = [
        ("PORT", port.as_str()),
        ("SEARCHGATE_DATABASE__URL", "sqlite://sg.db"),
    ];
    let cli = |args: &[&str]| {
        let output = searchgate(dir.path(), &env).args(args).output().unwrap();
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap().trim().to_owned()
    };
    let url = format!("http://127.0.0.1:{port}/web-search/mcp");
    let call = |token: String| {
        let url = url.clone();
        async move {
            reqwest::Client::new()
                .post(url)
                .bearer_auth(token)
                .header(header::ACCEPT, "application/json, text/event-stream")
                .header("mcp-protocol-version", "2025-11-25")
                .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
                .send()
                .await
                .unwrap()
                .status()
        }
    };

    let old = cli(&[
        "token",
        "--scope",
        "web-search:read",
        "--ttl",
        "2h",
        "--client",
        "ci",
    ]);
    assert_eq!(claims(&old)["client_id"], "ci");
    let mut server = spawn_binary(dir.path(), port.parse().unwrap(), &env).await;
    assert_eq!(call(old.clone()).await, StatusCode::OK);
    server.kill().unwrap();
    server.wait().unwrap();

    let mut server = spawn_binary(dir.path(), port.parse().unwrap(), &env).await;
    assert_eq!(
        call(old.clone()).await,
        StatusCode::OK,
        "accepted after a restart"
    );
    let old_kid = cli(&["keys", "list"])
        .split('\t')
        .next()
        .unwrap()
        .to_owned();
    let new_kid = cli(&["keys", "rotate"]);
    assert_ne!(old_kid, new_kid);
    let new = cli(&["token"]);
    // The running server learns the new key on first sight of its kid.
    assert_eq!(call(new.clone()).await, StatusCode::OK);
    assert!(cli(&["keys", "list"]).contains("published until its tokens expire"));
    server.kill().unwrap();
    server.wait().unwrap();

    let mut server = spawn_binary(dir.path(), port.parse().unwrap(), &env).await;
    assert_eq!(
        call(cli(&["token"])).await,
        StatusCode::OK,
        "signed with the new key"
    );
    assert_eq!(
        call(old.clone()).await,
        StatusCode::OK,
        "rotated out, still published"
    );
    server.kill().unwrap();
    server.wait().unwrap();

    cli(&["keys", "retire", &old_kid]);
    let mut server = spawn_binary(dir.path(), port.parse().unwrap(), &env).await;
    assert_eq!(
        call(old).await,
        StatusCode::UNAUTHORIZED,
        "its key is retired"
    );
    assert_eq!(call(new).await, StatusCode::OK);
    server.kill().unwrap();
    server.wait().unwrap();

    let refused = searchgate(dir.path(), &env)
        .args(["token", "--scope", "admin:all"])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
    let other = searchgate(dir.path(), &[("SEARCHGATE_AUTH__PROVIDER", "none")])
        .arg("token")
        .output()
        .unwrap();
    assert_eq!(other.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&other.stderr).contains("embedded"));
}

#[tokio::test]
async fn browsers_on_other_origins_cannot_use_the_authorization_server() {
    let app = spawn_embedded(|_| {}).await;
    let preflight = |path: &str, origin: &str| {
        reqwest::Client::new()
            .request(reqwest::Method::OPTIONS, app.url(path))
            .header(header::ORIGIN, origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .send()
    };
    let allowed = |response: &reqwest::Response| {
        response
            .headers()
            .get("access-control-allow-origin")
            .is_some()
    };
    // MCP Inspector runs on a loopback origin: it may register and exchange codes.
    let inspector = preflight("/oauth/register", "http://localhost:6274")
        .await
        .unwrap();
    assert!(allowed(&inspector));
    let evil = preflight("/oauth/register", "https://evil.example")
        .await
        .unwrap();
    assert!(
        !allowed(&evil),
        "another site may not register clients through the browser"
    );
    let evil = preflight("/idp/token", "https://evil.example")
        .await
        .unwrap();
    assert!(!allowed(&evil));
    // The consent page is never readable cross-origin.
    let page = reqwest::Client::new()
        .get(app.url("/idp/authorize"))
        .header(header::ORIGIN, "http://localhost:6274")
        .send()
        .await
        .unwrap();
    assert!(!allowed(&page));
}

#[tokio::test]
async fn redirect_uri_is_needed_at_the_token_endpoint_only_when_the_request_named_one() {
    let app = spawn_embedded(|_| {}).await;
    let oauth = OAuth::new(&app);
    let client_id = oauth.public_client().await;
    let query = oauth
        .consent(
            &oauth.params(&client_id, &[("redirect_uri", "")]),
            "approve",
        )
        .await;
    let code = value_of(&query, "code").unwrap();
    let (status, body) = oauth
        .token(&[
            ("grant_type", "authorization_code"),
            ("client_id", &client_id),
            ("code", &code),
            ("code_verifier", VERIFIER),
        ])
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let code = oauth.code(&client_id).await;
    let (status, body) = oauth
        .token(&[
            ("grant_type", "authorization_code"),
            ("client_id", &client_id),
            ("code", &code),
            ("code_verifier", VERIFIER),
        ])
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
}
