//! Contract: the JWKS cache fetches an issuer's keys once, refetches for an unknown `kid` at most
//! once per 30 s (coalescing concurrent requests into one fetch), and turns "no such key" into
//! 401 while the IdP answers (also within the 30 s after a good fetch) and into 503 only when a
//! fetch failed.

use std::time::Duration;

use searchgate::{
    adapters::{http_client::outbound, idp::JwksCache},
    domain::auth::{AuthError, Rejection},
};
use serde_json::Value;
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{method, path},
};

async fn idp_keys() -> MockServer {
    let server = MockServer::start().await;
    let jwks: Value = serde_json::from_str(include_str!("../fixtures/test-rsa-jwks.json")).unwrap();
    Mock::given(method("GET"))
        .and(path("/keys"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(jwks)
                .insert_header("cache-control", "max-age=3600"),
        )
        .mount(&server)
        .await;
    server
}

async fn fetches(server: &MockServer) -> usize {
    server.received_requests().await.unwrap().len()
}

#[tokio::test]
async fn unknown_kids_refetch_once_coalesced_and_then_wait_30_seconds() {
    let server = idp_keys().await;
    let cache = JwksCache::remote(
        &format!("{}/keys", server.uri()),
        outbound(),
        Duration::from_secs(600),
    );
    cache
        .key_for(Some("test-key-1"))
        .await
        .expect("the published key");
    assert_eq!(fetches(&server).await, 1);
    cache.key_for(Some("test-key-1")).await.unwrap();
    assert_eq!(
        fetches(&server).await,
        1,
        "a known kid is served from cache"
    );

    let lookups = (0..20).map(|_| cache.key_for(Some("rotated-key")));
    let results = futures::future::join_all(lookups).await;
    assert!(
        results
            .iter()
            .all(|r| matches!(r, Err(AuthError::InvalidToken { .. }))),
        "no such key: 401, not 503"
    );
    assert_eq!(
        fetches(&server).await,
        2,
        "twenty concurrent unknown kids cost one refetch"
    );

    let within_window = cache.key_for(Some("another-new-key")).await.unwrap_err();
    assert!(
        matches!(
            within_window,
            AuthError::InvalidToken {
                rejection: Rejection::UnknownKey,
                ..
            }
        ),
        "the last fetch succeeded, so an unknown kid is a bad token (401), not an outage: {within_window:?}"
    );
    assert_eq!(fetches(&server).await, 2, "no second refetch within 30 s");
}

#[tokio::test]
async fn concurrent_requests_share_one_failed_fetch() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/keys"))
        .respond_with(ResponseTemplate::new(500).set_delay(Duration::from_millis(300)))
        .mount(&server)
        .await;
    let cache = JwksCache::remote(
        &format!("{}/keys", server.uri()),
        outbound(),
        Duration::from_secs(600),
    );
    let results = futures::future::join_all((0..10).map(|_| cache.key_for(Some("k")))).await;
    assert!(
        results
            .iter()
            .all(|r| matches!(r, Err(AuthError::Unavailable { .. })))
    );
    // The slow answer keeps all ten waiting on the first fetch: a cache that did not share it
    // would make one fetch per waiter (ten, one after another).
    assert_eq!(
        fetches(&server).await,
        1,
        "ten waiting requests share the one failed fetch: nobody queues behind nine more"
    );
}

#[tokio::test]
async fn with_no_keys_cached_an_unreachable_idp_is_unavailable() {
    let cache = JwksCache::remote(
        "http://127.0.0.1:9/keys",
        outbound(),
        Duration::from_secs(600),
    );
    let error = cache.key_for(Some("k")).await.unwrap_err();
    assert!(matches!(error, AuthError::Unavailable { .. }), "{error:?}");
    let again = cache.key_for(Some("k")).await.unwrap_err();
    assert!(
        matches!(
            again,
            AuthError::Unavailable {
                retry_after: Some(_),
                ..
            }
        ),
        "a retry within seconds is answered at once, with Retry-After: {again:?}"
    );
}
