//! The verified-token cache, in front of any authorization server: a repeated token skips
//! signature work (or an introspection call). Keyed by the token's SHA-256, never the token;
//! bounded; an entry lives until the token expires or the cache's maximum age, whichever comes
//! first; failures (an unreachable IdP) are never cached; concurrent lookups of one token are
//! coalesced. A token refused for good (bad signature, wrong audience, inactive, …) is
//! remembered for a short while too, so replaying it costs neither signature work nor an
//! introspection call.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant, SystemTime},
};

use async_trait::async_trait;
use moka::{Expiry, future::Cache};
use tracing::{Instrument, field::Empty};

use super::{
    AuthError, AuthorizationServer, BearerToken, Principal, ProbeFinding, Rejection, ServerMetadata,
};
use crate::domain::TRACE_TARGET;

/// Hex digits of the token hash kept in audit rows: enough to correlate, too few to matter.
const HASH_PREFIX_BYTES: usize = 6;

/// An [`AuthorizationServer`] that remembers verified tokens.
pub struct CachingAuthorizationServer {
    inner: Arc<dyn AuthorizationServer>,
    cache: Option<Cache<[u8; 32], Principal>>,
    refused: Option<Cache<[u8; 32], (Rejection, String)>>,
    counters: Arc<CacheCounters>,
}

/// How often the verified-token cache answered, for metrics.
#[derive(Debug, Default)]
pub struct CacheCounters {
    /// Tokens answered from the cache.
    pub hits: AtomicU64,
    /// Tokens that needed verification.
    pub misses: AtomicU64,
}

/// How long a refused token is remembered.
const REFUSED_TTL: Duration = Duration::from_secs(30);

impl CachingAuthorizationServer {
    /// Its hit and miss counts.
    pub fn counters(&self) -> Arc<CacheCounters> {
        self.counters.clone()
    }

    /// Caches up to `capacity` tokens verified by `inner`, each for at most `max_age` (zero turns
    /// caching off).
    pub fn new(inner: Arc<dyn AuthorizationServer>, capacity: u64, max_age: Duration) -> Self {
        let enabled = !max_age.is_zero() && capacity > 0;
        let cache = enabled.then(|| {
            Cache::builder()
                .max_capacity(capacity)
                .expire_after(UntilExpiry { max_age })
                .build()
        });
        let refused = enabled.then(|| {
            Cache::builder()
                .max_capacity(capacity)
                .time_to_live(REFUSED_TTL.min(max_age))
                .build()
        });
        Self {
            inner,
            cache,
            refused,
            counters: Arc::default(),
        }
    }

    async fn verify_uncached(
        &self,
        token: &BearerToken,
        fingerprint: &[u8; 32],
    ) -> Result<Principal, AuthError> {
        let mut principal = self.inner.verify(token).await?;
        principal.token_hash_prefix = fingerprint[..HASH_PREFIX_BYTES]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Ok(principal)
    }
}

#[async_trait]
impl AuthorizationServer for CachingAuthorizationServer {
    fn authorization_servers(&self) -> Vec<String> {
        self.inner.authorization_servers()
    }

    async fn verify(&self, token: &BearerToken) -> Result<Principal, AuthError> {
        // The trace span of the check says whether the cache answered; never the token.
        let span = tracing::info_span!(
            target: TRACE_TARGET,
            "token check",
            otel.status_code = Empty,
            searchgate.token_cache.hit = Empty,
            error.type = Empty,
        );
        let result = self
            .verify_cached(token, &span)
            .instrument(span.clone())
            .await;
        if let Err(error) = &result
            && !span.is_disabled()
        {
            span.record("error.type", error.code());
            span.record("otel.status_code", "ERROR");
        }
        result
    }

    async fn metadata(&self) -> Result<Option<ServerMetadata>, AuthError> {
        self.inner.metadata().await
    }

    async fn probe(&self) -> Vec<ProbeFinding> {
        self.inner.probe().await
    }
}

impl CachingAuthorizationServer {
    /// The cache in front of the verification; `span` learns whether the cache answered.
    async fn verify_cached(
        &self,
        token: &BearerToken,
        span: &tracing::Span,
    ) -> Result<Principal, AuthError> {
        let fingerprint = token.fingerprint();
        let Some(cache) = &self.cache else {
            span.record("searchgate.token_cache.hit", false);
            return self.verify_uncached(token, &fingerprint).await;
        };
        if let Some(principal) = cache.get(&fingerprint).await {
            // moka evicts lazily; never serve a principal whose token has expired.
            if principal.expires_at.is_none_or(|at| at > SystemTime::now()) {
                self.counters.hits.fetch_add(1, Ordering::Relaxed);
                span.record("searchgate.token_cache.hit", true);
                return Ok(principal);
            }
            cache.invalidate(&fingerprint).await;
        }
        self.counters.misses.fetch_add(1, Ordering::Relaxed);
        span.record("searchgate.token_cache.hit", false);
        if let Some(refused) = &self.refused
            && let Some((rejection, detail)) = refused.get(&fingerprint).await
        {
            return Err(AuthError::invalid(rejection, detail));
        }
        let error = match cache
            .try_get_with(fingerprint, self.verify_uncached(token, &fingerprint))
            .await
        {
            Ok(principal) => return Ok(principal),
            Err(shared) => shared.duplicate(),
        };
        // A key may be published, or a token become valid, moments later: those are not final.
        if let (Some(refused), AuthError::InvalidToken { rejection, detail }) =
            (&self.refused, &error)
            && !matches!(rejection, Rejection::UnknownKey | Rejection::NotYetValid)
        {
            refused
                .insert(fingerprint, (*rejection, detail.clone()))
                .await;
        }
        Err(error)
    }
}

/// Entries expire with their token, and never later than the cache's maximum age.
struct UntilExpiry {
    max_age: Duration,
}

impl Expiry<[u8; 32], Principal> for UntilExpiry {
    fn expire_after_create(
        &self,
        _key: &[u8; 32],
        principal: &Principal,
        _now: Instant,
    ) -> Option<Duration> {
        let until_expiry = principal.expires_at.map(|at| {
            at.duration_since(SystemTime::now())
                .unwrap_or(Duration::ZERO)
        });
        Some(until_expiry.map_or(self.max_age, |d| d.min(self.max_age)))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::domain::auth::{Rejection, ScopeSet};

    /// Counts calls; "good" tokens verify, others fail.
    struct Counting {
        calls: AtomicUsize,
        ttl: Option<Duration>,
    }

    #[async_trait]
    impl AuthorizationServer for Counting {
        fn authorization_servers(&self) -> Vec<String> {
            vec![]
        }

        async fn verify(&self, token: &BearerToken) -> Result<Principal, AuthError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(20)).await;
            if token.expose().starts_with("good") {
                Ok(Principal {
                    subject: "u".into(),
                    issuer: "i".into(),
                    scopes: ScopeSet::default(),
                    expires_at: self.ttl.map(|ttl| SystemTime::now() + ttl),
                    ..Principal::default()
                })
            } else {
                Err(AuthError::invalid(Rejection::BadSignature, "nope"))
            }
        }
    }

    fn counting(ttl: Option<Duration>) -> Arc<Counting> {
        Arc::new(Counting {
            calls: AtomicUsize::new(0),
            ttl,
        })
    }

    #[tokio::test]
    async fn a_repeated_token_is_verified_once_and_concurrent_lookups_coalesce() {
        let inner = counting(Some(Duration::from_secs(600)));
        let cache = CachingAuthorizationServer::new(inner.clone(), 100, Duration::from_secs(300));
        let token = BearerToken::parse("good-token").unwrap();
        let results = futures::future::join_all((0..10).map(|_| cache.verify(&token))).await;
        assert!(results.iter().all(Result::is_ok));
        let again = cache.verify(&token).await.unwrap();
        assert_eq!(
            inner.calls.load(Ordering::SeqCst),
            1,
            "ten concurrent and one later lookup, one verification"
        );
        assert_eq!(
            again.token_hash_prefix.len(),
            12,
            "six bytes of the hash, in hex"
        );
        assert!(
            !again.token_hash_prefix.is_empty() && !"good-token".contains(&again.token_hash_prefix)
        );
    }

    #[tokio::test]
    async fn failures_are_never_cached() {
        struct Down(AtomicUsize);
        #[async_trait]
        impl AuthorizationServer for Down {
            fn authorization_servers(&self) -> Vec<String> {
                vec![]
            }
            async fn verify(&self, _: &BearerToken) -> Result<Principal, AuthError> {
                self.0.fetch_add(1, Ordering::SeqCst);
                Err(AuthError::unavailable("down"))
            }
        }
        let down = Arc::new(Down(AtomicUsize::new(0)));
        let cache = CachingAuthorizationServer::new(down.clone(), 100, Duration::from_secs(300));
        let any = BearerToken::parse("any").unwrap();
        for _ in 0..3 {
            assert_eq!(
                cache.verify(&any).await.unwrap_err().code(),
                "idp_unavailable"
            );
        }
        assert_eq!(
            down.0.load(Ordering::SeqCst),
            3,
            "an outage is asked about again every time"
        );
    }

    #[tokio::test]
    async fn a_refused_token_is_remembered_briefly() {
        let inner = counting(Some(Duration::from_secs(600)));
        let cache = CachingAuthorizationServer::new(inner.clone(), 100, Duration::from_secs(300));
        let token = BearerToken::parse("bad-token").unwrap();
        for _ in 0..3 {
            let error = cache.verify(&token).await.unwrap_err();
            assert_eq!(error.code(), "bad_signature");
        }
        assert_eq!(
            inner.calls.load(Ordering::SeqCst),
            1,
            "replaying a refused token costs nothing"
        );
    }

    #[tokio::test]
    async fn entries_expire_with_the_token() {
        let inner = counting(Some(Duration::from_millis(300)));
        let cache = CachingAuthorizationServer::new(inner.clone(), 100, Duration::from_secs(300));
        let token = BearerToken::parse("good-short").unwrap();
        cache.verify(&token).await.unwrap();
        cache.verify(&token).await.unwrap();
        assert_eq!(inner.calls.load(Ordering::SeqCst), 1);
        tokio::time::sleep(Duration::from_millis(400)).await;
        cache.verify(&token).await.unwrap();
        assert_eq!(
            inner.calls.load(Ordering::SeqCst),
            2,
            "an expired token is verified again"
        );
    }

    #[tokio::test]
    async fn a_zero_maximum_age_turns_caching_off() {
        let inner = counting(None);
        let cache = CachingAuthorizationServer::new(inner.clone(), 100, Duration::ZERO);
        let token = BearerToken::parse("good-token").unwrap();
        cache.verify(&token).await.unwrap();
        cache.verify(&token).await.unwrap();
        assert_eq!(inner.calls.load(Ordering::SeqCst), 2);
    }
}
