//! Contract: the small gaps of issue 14 stay closed — a request naming its host twice is
//! refused with 400; the consent form's same-origin check compares the scheme too; the admin
//! scope is set apart and explained on the consent page; `sslpassword` in the database URL is
//! never printed.

use std::process::Output;

use reqwest::{StatusCode, header};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{
    embedded::{OAuth, spawn_embedded, ticket_in},
    helpers::{searchgate, spawn_app},
};

/// Sends `request` as raw bytes and returns the status line and the rest of the answer.
async fn raw(addr: std::net::SocketAddr, request: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stream.read_to_end(&mut answer),
    )
    .await
    .expect("the server answers and closes")
    .unwrap();
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn a_request_with_two_host_headers_gets_400_on_every_route() {
    let app = spawn_app().await;
    let host = app.addr.to_string();
    for path in [
        "/healthz",
        "/web-search/mcp",
        "/api/v1/clients",
        "/openapi.json",
    ] {
        let answer = raw(
            app.addr,
            &format!(
                "GET {path} HTTP/1.1\r\nHost: {host}\r\nHost: evil.example\r\n\
                 Connection: close\r\n\r\n"
            ),
        )
        .await;
        assert!(
            answer.starts_with("HTTP/1.1 400"),
            "{path}: two Host headers are refused, not first-wins:\n{answer}"
        );
        assert!(answer.contains("more than one Host header"), "{answer}");
    }
    let single = raw(
        app.addr,
        &format!("GET /healthz HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
    )
    .await;
    assert!(
        single.starts_with("HTTP/1.1 200"),
        "one Host header is fine:\n{single}"
    );
}

#[tokio::test]
async fn the_consent_form_refuses_an_origin_with_another_scheme() {
    let app = spawn_embedded(|_| {}).await;
    let oauth = OAuth::new(&app);
    let client_id = oauth.public_client().await;
    let ticket = ticket_in(&oauth.consent_page(&client_id).await);
    // The issuer is http://127.0.0.1:PORT; the same host and port over https is another origin.
    let https = oauth
        .decide_from(&format!("https://{}", app.addr), &ticket)
        .await;
    assert_eq!(
        https.status(),
        StatusCode::FORBIDDEN,
        "an https origin is not the http issuer's origin"
    );
    assert!(https.headers().get(header::LOCATION).is_none());
    let http = oauth
        .decide_from(&format!("http://{}", app.addr), &ticket)
        .await;
    assert_eq!(
        http.status(),
        StatusCode::SEE_OTHER,
        "the issuer's own origin may post"
    );
}

#[tokio::test]
async fn the_consent_page_sets_the_admin_scope_apart_and_says_what_it_grants() {
    let app = spawn_embedded(|_| {}).await;
    let oauth = OAuth::new(&app);
    let client_id = oauth.public_client().await;
    let page = oauth
        .authorize(&oauth.params(&client_id, &[("scope", "web-search:read searchgate:admin")]))
        .await;
    assert_eq!(page.status(), StatusCode::OK);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    let html = page.text().await.unwrap();
    let list_start = html.find("<ul>").expect("the ordinary scopes are listed");
    let list = &html[list_start..html[list_start..].find("</ul>").unwrap() + list_start];
    assert!(list.contains("web-search:read"), "{list}");
    assert!(
        !list.contains("searchgate:admin"),
        "the admin scope is not one more line among ordinary scopes:\n{html}"
    );
    assert!(html.contains("Administrator access"), "{html}");
    assert!(
        html.contains("<code>searchgate:admin</code> makes this client an administrator"),
        "the page says plainly what the admin scope grants:\n{html}"
    );
    assert!(html.contains("audit trail"), "{html}");
    assert!(!html.contains("<script"), "no script within the page's CSP");

    // Ordinary scopes alone: no warning.
    let plain = oauth
        .authorize(&oauth.params(&client_id, &[]))
        .await
        .text()
        .await
        .unwrap();
    assert!(!plain.contains("Administrator access"), "{plain}");
}

fn check_config(env: &[(&str, &str)]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    searchgate(dir.path(), env)
        .arg("check-config")
        .output()
        .expect("the binary runs")
}

#[test]
fn check_config_redacts_the_database_url_sslpassword() {
    let output = check_config(&[(
        "SEARCHGATE_DATABASE__URL",
        "postgres://sg@db.internal/sg?sslmode=verify-full&sslpassword=key-do-not-print",
    )]);
    let text = String::from_utf8_lossy(&output.stdout);
    let errors = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{errors}");
    assert!(
        !text.contains("key-do-not-print") && !errors.contains("key-do-not-print"),
        "the client key's passphrase is never printed:\n{text}\n{errors}"
    );
    assert!(
        text.contains("sslpassword=***") && text.contains("sslmode=verify-full"),
        "redacted like the password, the rest kept:\n{text}"
    );
}
