//! Contract: liveness always answers; readiness follows the audit store.

use async_trait::async_trait;
use searchgate::domain::audit::{AuditError, AuditLog, BoundedEvent};
use serde_json::{Value, json};

use crate::helpers::{spawn_app, spawn_with};

#[tokio::test]
async fn healthz_and_readyz_answer_on_a_fresh_server() {
    let app = spawn_app().await;
    let live = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(live.status(), 200);
    assert_eq!(
        live.json::<Value>().await.unwrap(),
        json!({ "status": "ok" })
    );
    let ready = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    assert_eq!(
        ready.json::<Value>().await.unwrap(),
        json!({ "status": "ready", "database": "ok", "audit_writer": "ok", "auth": "disabled" })
    );
    let rows = app.stop().await.rows;
    assert!(rows.is_empty(), "probes are not MCP requests");
}

struct Unwritable;

#[async_trait]
impl AuditLog for Unwritable {
    async fn append(&self, _: &[BoundedEvent]) -> Result<(), AuditError> {
        Err(AuditError::Unavailable("disk full".into()))
    }

    async fn check(&self) -> Result<(), AuditError> {
        Err(AuditError::Unavailable("disk full".into()))
    }
}

#[tokio::test]
async fn readyz_is_503_while_the_audit_store_cannot_be_written() {
    let app = spawn_with(|_| {}, |b| b.with_audit_log(Unwritable)).await;
    let ready = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    assert_eq!(
        ready.json::<Value>().await.unwrap()["status"],
        "unavailable"
    );
    assert_eq!(
        app.http
            .get(app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200,
        "still alive"
    );
}
