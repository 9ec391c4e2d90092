//! Contract: the committed OpenAPI document is the one the server generates and serves.

use serde_json::Value;

use crate::helpers::spawn_app;

const COMMITTED: &str = include_str!("../../openapi/openapi.json");

#[test]
fn the_committed_document_has_not_drifted() {
    let generated = searchgate::http::openapi::document_json();
    let generated: Value = serde_json::from_str(&generated).unwrap();
    let committed: Value = serde_json::from_str(COMMITTED).expect("openapi/openapi.json is JSON");
    // A plain assert: printing both documents would bury the message.
    assert!(
        generated == committed,
        "openapi/openapi.json is stale; regenerate it with `cargo run -- openapi > openapi/openapi.json`"
    );
}

#[tokio::test]
async fn the_served_document_is_the_committed_one_and_lists_the_probes() {
    let app = spawn_app().await;
    let served: Value = app.get_json("/openapi.json").await;
    assert!(
        served == serde_json::from_str::<Value>(COMMITTED).unwrap(),
        "the served document differs from the committed one"
    );
    assert!(
        served["paths"]["/.well-known/oauth-protected-resource"]["get"].is_object(),
        "discovery is documented"
    );
    assert!(served["paths"]["/healthz"]["get"].is_object());
    assert!(
        served["paths"]["/readyz"]["get"]["responses"]["503"].is_object(),
        "every status is documented"
    );
    app.stop().await;
}
