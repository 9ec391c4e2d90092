//! Token verification cost: an RS256 JWT checked cold (signature and policy, keys cached) and a
//! repeated token answered by core's verified-token cache. Targets (issue 3): cached under 2 µs,
//! RS256 under 50 µs.

use std::{
    hint::black_box,
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use async_trait::async_trait;
use criterion::{Criterion, criterion_group, criterion_main};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use searchgate::{
    adapters::idp::{JwksCache, JwtVerifier},
    domain::auth::{
        AuthError, AuthorizationServer, BearerToken, CachingAuthorizationServer, Principal,
        TokenPolicy,
    },
};
use serde_json::json;

const ISSUER: &str = "https://idp.example.com";
const RESOURCE: &str = "https://search.example.com/web-search/mcp";

struct Jwt(JwtVerifier);

#[async_trait]
impl AuthorizationServer for Jwt {
    fn authorization_servers(&self) -> Vec<String> {
        vec![ISSUER.into()]
    }

    async fn verify(&self, token: &BearerToken) -> Result<Principal, AuthError> {
        self.0.verify(token).await
    }
}

fn token() -> BearerToken {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = json!({
        "iss": ISSUER, "sub": "usr_1", "aud": [RESOURCE, "res_1"], "client_id": "cli_1",
        "scope": "openid web-search:read", "exp": now + 3600, "iat": now, "jti": "tkn_1"
    });
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("test-key-1".into());
    let key =
        EncodingKey::from_rsa_pem(include_bytes!("../tests/fixtures/test-rsa-key.pem")).unwrap();
    BearerToken::parse(&jsonwebtoken::encode(&header, &claims, &key).unwrap()).unwrap()
}

fn verification(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let jwks: serde_json::Value =
        serde_json::from_str(include_str!("../tests/fixtures/test-rsa-jwks.json")).unwrap();
    let policy = TokenPolicy::new(
        &[ISSUER.into()],
        &[RESOURCE.into()],
        Duration::from_secs(60),
    );
    let verifier = Arc::new(Jwt(JwtVerifier::new(
        JwksCache::fixed(&jwks).unwrap(),
        policy,
    )));
    let cached =
        CachingAuthorizationServer::new(verifier.clone(), 10_000, Duration::from_secs(300));
    let token = token();
    runtime
        .block_on(cached.verify(&token))
        .expect("the benchmark token verifies");

    c.bench_function("verify RS256 JWT (signature + policy)", |b| {
        b.iter(|| {
            runtime
                .block_on(verifier.verify(black_box(&token)))
                .unwrap()
        })
    });
    c.bench_function("verify cached token (SHA-256 + cache hit)", |b| {
        b.iter(|| runtime.block_on(cached.verify(black_box(&token))).unwrap())
    });
}

criterion_group!(benches, verification);
criterion_main!(benches);
