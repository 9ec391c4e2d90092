//! Contract (issue 14 items 6 and 7): a consent ticket decides once. Its id is recorded in the
//! database when the operator approves or denies, so a second post of the same form, to this
//! server or to another replica on the same database, is refused on the page. A metadata-document
//! client id whose host has no public address is the client's fault (`invalid_client`), never
//! an outage.

use reqwest::{StatusCode, header};
use searchgate::config::Settings;

use crate::{
    embedded::{OAuth, VERIFIER, spawn_embedded, ticket_in},
    helpers::{TestApp, spawn_with},
    stores::{PgSchema, postgres_url},
};

/// Two servers on one database (`url`, or a fresh SQLite file when `None`), both with the
/// issuer of the first, as replicas behind one public URL are.
async fn replicas(url: Option<String>) -> (TestApp, TestApp) {
    let a = spawn_embedded(|s| {
        if let Some(url) = &url {
            s.database.url = url.clone();
        }
    })
    .await;
    let shared = url.unwrap_or_else(|| format!("sqlite://{}", a.db_path.display()));
    let public = a.url("");
    let b = spawn_with(
        |s: &mut Settings| {
            s.auth.provider = searchgate::config::AuthProviderKind::Embedded;
            s.database.url = shared;
            s.server.public_url = Some(public.parse().unwrap());
        },
        |b| b,
    )
    .await;
    (a, b)
}

async fn a_second_decision_on_one_ticket_is_refused(a: &TestApp, b: &TestApp, database: &str) {
    let on_a = OAuth::new(a);
    let on_b = OAuth::at(&b.url(""), &a.mcp_url);
    let client_id = on_a.public_client().await;

    let ticket = ticket_in(&on_a.consent_page(&client_id).await);
    let first = on_a.decide(&ticket, "approve").await;
    assert_eq!(first.status(), StatusCode::SEE_OTHER, "{database}");
    for (oauth, decision, on) in [
        (&on_a, "approve", "the same server"),
        (&on_a, "deny", "the same server"),
        (&on_b, "approve", "another replica"),
    ] {
        let again = oauth.decide(&ticket, decision).await;
        assert_eq!(
            again.status(),
            StatusCode::BAD_REQUEST,
            "{database}: a replayed ticket ({decision} on {on}) is refused"
        );
        assert!(
            again.headers().get(header::LOCATION).is_none(),
            "{database}: no second code, no redirect"
        );
        assert!(
            again.text().await.unwrap().contains("already used"),
            "{database}"
        );
    }

    // A denial spends the ticket too; the replica that did not take it refuses it as well.
    let ticket = ticket_in(&on_b.consent_page(&client_id).await);
    assert_eq!(
        on_b.decide(&ticket, "deny").await.status(),
        StatusCode::SEE_OTHER,
        "{database}"
    );
    assert_eq!(
        on_a.decide(&ticket, "approve").await.status(),
        StatusCode::BAD_REQUEST,
        "{database}: approve after deny"
    );

    // A fresh ticket still works end to end.
    let code = on_a.code(&client_id).await;
    let (status, body) = on_b.exchange(&client_id, &code, VERIFIER).await;
    assert_eq!(status, StatusCode::OK, "{database}: {body}");
}

#[tokio::test]
async fn a_consent_ticket_decides_once_on_any_replica() {
    let (a, b) = replicas(None).await;
    a_second_decision_on_one_ticket_is_refused(&a, &b, "sqlite").await;
    b.stop().await;
    a.stop().await;

    let Some(base) = postgres_url() else {
        eprintln!("PostgreSQL variant skipped: SEARCHGATE_TEST_POSTGRES_URL is not set");
        return;
    };
    let schema = PgSchema::new(&base).await;
    let (a, b) = replicas(Some(schema.url.clone())).await;
    a_second_decision_on_one_ticket_is_refused(&a, &b, "postgres").await;
    b.stop().await;
    a.stop().await;
}

#[tokio::test]
async fn a_metadata_document_on_a_host_with_no_public_address_is_invalid_client() {
    let app = spawn_embedded(|_| {}).await;
    let oauth = OAuth::new(&app);
    for client_id in ["https://localhost./c.json", "https://app.localhost/c.json"] {
        let (status, body) = oauth
            .token(&[
                ("grant_type", "authorization_code"),
                ("client_id", client_id),
                ("code", "whatever"),
                ("code_verifier", VERIFIER),
            ])
            .await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("invalid_client")),
            "{client_id}: the client's fault, not 503: {body}"
        );
        let page = oauth.authorize(&oauth.params(client_id, &[])).await;
        assert_eq!(page.status(), StatusCode::BAD_REQUEST, "{client_id}");
        assert!(page.headers().get(header::LOCATION).is_none());
    }
    app.stop().await;
}
