//! The JWKS cache: an issuer's signing keys, fetched once and kept for a TTL (the IdP's
//! `Cache-Control: max-age` when it sends one). Expired keys keep serving while a background
//! refresh runs; a token with an unknown `kid` triggers one refetch, coalesced across concurrent
//! requests and at most once per 30 s (in between, an unknown `kid` is a bad token unless the
//! last fetch failed); cached keys keep serving while the IdP is down.

use std::{
    sync::{
        Arc, Mutex, RwLock,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use futures::future::BoxFuture;
use jsonwebtoken::{
    Algorithm, DecodingKey,
    jwk::{AlgorithmParameters, Jwk, KeyAlgorithm, PublicKeyUse},
};
use reqwest::{Client, header::CACHE_CONTROL};
use serde::Deserialize;

use crate::{
    adapters::http_client::{FetchError, get_json},
    domain::auth::{AuthError, ProbeFinding, Rejection},
};

/// At most one refetch for an unknown `kid` in this long.
const UNKNOWN_KID_REFETCH_INTERVAL: Duration = Duration::from_secs(30);
/// With no keys at all, retry a failed fetch after this long (callers get 503 meanwhile).
const EMPTY_RETRY_INTERVAL: Duration = Duration::from_secs(5);
/// Bounds on a TTL taken from `Cache-Control`.
const MIN_TTL: Duration = Duration::from_secs(30);
const MAX_TTL: Duration = Duration::from_secs(86_400);
/// How long past their TTL keys may serve while they cannot be refreshed.
const MAX_STALENESS: Duration = Duration::from_secs(86_400);
/// Largest JWKS document accepted.
const MAX_JWKS_BYTES: usize = 256 * 1024;

/// Key fetches since start, successful and failed, across every issuer (for metrics).
static FETCHES: [std::sync::atomic::AtomicU64; 2] = [
    std::sync::atomic::AtomicU64::new(0),
    std::sync::atomic::AtomicU64::new(0),
];

/// How many times signing keys were fetched (or reloaded) since start: `(ok, failed)`.
pub fn fetch_counts() -> (u64, u64) {
    (
        FETCHES[0].load(Ordering::Relaxed),
        FETCHES[1].load(Ordering::Relaxed),
    )
}

/// A public key that may verify tokens.
#[derive(Debug)]
pub struct VerifyingKey {
    /// The key id, when published.
    pub kid: Option<String>,
    /// The one algorithm the key is for, when published.
    pub alg: Option<Algorithm>,
    /// The key.
    pub key: DecodingKey,
}

/// Keys fetched at one moment.
#[derive(Debug)]
struct Snapshot {
    keys: Vec<Arc<VerifyingKey>>,
    fetched_at: Instant,
    ttl: Duration,
    generation: u64,
}

impl Snapshot {
    fn find(&self, kid: Option<&str>) -> Option<Arc<VerifyingKey>> {
        match kid {
            Some(kid) => self
                .keys
                .iter()
                .find(|k| k.kid.as_deref() == Some(kid))
                .cloned(),
            // RFC 7515 allows omitting `kid` when there is no doubt which key is meant.
            None if self.keys.len() == 1 => self.keys.first().cloned(),
            None => None,
        }
    }

    fn is_stale(&self) -> bool {
        self.fetched_at.elapsed() >= self.ttl
    }
}

#[derive(Debug)]
enum Source {
    Remote {
        url: String,
        http: Client,
        default_ttl: Duration,
    },
    Static,
    Loader {
        load: JwksLoader,
        ttl: Duration,
    },
}

/// Produces a JWKS document without HTTP (the embedded authorization server reads its keys from
/// the database).
#[derive(Clone)]
pub struct JwksLoader(
    pub Arc<dyn Fn() -> BoxFuture<'static, anyhow::Result<serde_json::Value>> + Send + Sync>,
);

impl std::fmt::Debug for JwksLoader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JwksLoader")
    }
}

/// When an on-demand fetch last ran, and whether it failed.
type LastAttempt = Mutex<Option<(Instant, bool)>>;

#[derive(Debug)]
struct Inner {
    source: Source,
    current: RwLock<Option<Arc<Snapshot>>>,
    refresh: tokio::sync::Mutex<()>,
    /// When the last on-demand fetch for an unknown `kid` ran, and whether it failed.
    last_unknown_kid: LastAttempt,
    /// When the last fetch with no keys at all ran, and whether it failed.
    last_empty: LastAttempt,
    background_running: AtomicBool,
    next_background: Mutex<Option<Instant>>,
}

/// An issuer's signing keys. Cheap to clone.
#[derive(Debug, Clone)]
pub struct JwksCache(Arc<Inner>);

impl JwksCache {
    /// Keys fetched from `url` with `http`, kept for `default_ttl` unless the IdP says otherwise.
    pub fn remote(url: &str, http: Client, default_ttl: Duration) -> Self {
        Self::with(
            Source::Remote {
                url: url.to_owned(),
                http,
                default_ttl,
            },
            None,
        )
    }

    /// A fixed key set that never expires (tests, benchmarks, offline verification).
    ///
    /// # Errors
    /// When the document is not a JWKS.
    pub fn fixed(jwks: &serde_json::Value) -> anyhow::Result<Self> {
        let document: JwksDocument = serde_json::from_value(jwks.clone())?;
        let snapshot = Snapshot {
            keys: parse_keys(&document),
            fetched_at: Instant::now(),
            ttl: Duration::MAX,
            generation: 1,
        };
        Ok(Self::with(Source::Static, Some(Arc::new(snapshot))))
    }

    /// Keys produced by `load`, reloaded every `ttl` and on an unknown `kid` (rate limited as
    /// for remote keys).
    pub fn loaded(load: JwksLoader, ttl: Duration) -> Self {
        Self::with(Source::Loader { load, ttl }, None)
    }

    fn with(source: Source, current: Option<Arc<Snapshot>>) -> Self {
        Self(Arc::new(Inner {
            source,
            current: RwLock::new(current),
            refresh: tokio::sync::Mutex::new(()),
            last_unknown_kid: Mutex::new(None),
            last_empty: Mutex::new(None),
            background_running: AtomicBool::new(false),
            next_background: Mutex::new(None),
        }))
    }

    /// The key for a token's `kid`.
    ///
    /// # Errors
    /// [`AuthError::InvalidToken`] (`UnknownKey`) when the IdP publishes no such key;
    /// [`AuthError::Unavailable`] when a fetch of the keys failed and none answers.
    pub async fn key_for(&self, kid: Option<&str>) -> Result<Arc<VerifyingKey>, AuthError> {
        let asked = Instant::now();
        // Keys that could not be refreshed for a day past their TTL are no longer trusted: the
        // IdP may have withdrawn them.
        let cached = self
            .current()
            .filter(|s| s.fetched_at.elapsed() < s.ttl.saturating_add(MAX_STALENESS));
        if let Some(snapshot) = &cached {
            if snapshot.is_stale() {
                self.refresh_in_background();
            }
            if let Some(key) = snapshot.find(kid) {
                return Ok(key);
            }
        }
        let (interval, tracker) = match cached {
            Some(_) => (UNKNOWN_KID_REFETCH_INTERVAL, &self.0.last_unknown_kid),
            None => (EMPTY_RETRY_INTERVAL, &self.0.last_empty),
        };
        // Within the rate limit no fetch runs. When the last one failed the keys cannot be
        // known: 503 with the wait. When it succeeded, the IdP published no such key moments
        // ago: a bad token (401), never an outage anyone could raise by forging a `kid`.
        if let Some((at, failed)) = *lock(tracker)
            && at.elapsed() < interval
        {
            if !failed {
                return Err(unknown_key());
            }
            return Err(AuthError::Unavailable {
                detail: "the signing keys cannot be fetched; the next try is rate limited".into(),
                retry_after: Some(interval.saturating_sub(at.elapsed())),
            });
        }
        let snapshot = self
            .refetch(cached.map(|s| s.generation), Some((tracker, asked)))
            .await?;
        snapshot.find(kid).ok_or_else(unknown_key)
    }

    /// Fetches the keys now, returning how many there are and their ids (for probes).
    ///
    /// # Errors
    /// [`AuthError::Unavailable`] when the fetch fails.
    pub async fn refresh(&self) -> Result<Vec<Option<String>>, AuthError> {
        let generation = self.current().map(|s| s.generation);
        let snapshot = self.refetch(generation, None).await?;
        Ok(snapshot.keys.iter().map(|k| k.kid.clone()).collect())
    }

    /// Fetches the keys now and says what was found, for `check-config`.
    pub async fn probe(&self) -> ProbeFinding {
        match self.refresh().await {
            Ok(kids) if kids.is_empty() => {
                ProbeFinding::failed("signing keys", "the JWKS has no usable signing key")
            }
            Ok(kids) => {
                let names: Vec<_> = kids
                    .iter()
                    .map(|k| k.as_deref().unwrap_or("(no kid)"))
                    .collect();
                ProbeFinding::ok(
                    "signing keys",
                    format!("{} usable: {}", kids.len(), names.join(", ")),
                )
            }
            Err(error) => ProbeFinding::failed("signing keys", error.to_string()),
        }
    }

    fn current(&self) -> Option<Arc<Snapshot>> {
        self.0
            .current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Fetches unless someone else refreshed since `seen` (coalescing). An on-demand fetch
    /// passes its `tracker` and when it was asked: it records when it ran, and a caller that
    /// waited while another's fetch failed shares that failure instead of fetching again.
    async fn refetch(
        &self,
        seen: Option<u64>,
        tracker: Option<(&LastAttempt, Instant)>,
    ) -> Result<Arc<Snapshot>, AuthError> {
        let _turn = self.0.refresh.lock().await;
        if let Some(current) = self.current()
            && Some(current.generation) != seen
        {
            return Ok(current);
        }
        if let Some((tracker, asked)) = tracker
            && let Some((at, true)) = *lock(tracker)
            && at >= asked
        {
            return Err(AuthError::unavailable("the signing keys cannot be fetched"));
        }
        let tracker = tracker.map(|(tracker, _)| tracker);
        let result = self.fetch(seen.unwrap_or(0) + 1).await;
        FETCHES[usize::from(result.is_err())].fetch_add(1, Ordering::Relaxed);
        if let Some(tracker) = tracker {
            *lock(tracker) = Some((Instant::now(), result.is_err()));
        }
        match result {
            Ok(snapshot) => {
                let snapshot = Arc::new(snapshot);
                *self
                    .0
                    .current
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(snapshot.clone());
                Ok(snapshot)
            }
            Err(error) => {
                tracing::warn!(error = %error, "cannot fetch the IdP's signing keys");
                Err(AuthError::unavailable(error.to_string()))
            }
        }
    }

    async fn fetch(&self, generation: u64) -> Result<Snapshot, FetchError> {
        let (url, http, default_ttl) = match &self.0.source {
            Source::Remote {
                url,
                http,
                default_ttl,
            } => (url, http, default_ttl),
            Source::Loader { load, ttl } => {
                let document = (load.0)().await.map_err(|e| FetchError::Unreachable {
                    url: "the key store".to_owned(),
                    reason: format!("{e:#}"),
                })?;
                let document: JwksDocument =
                    serde_json::from_value(document).map_err(|e| FetchError::Unreachable {
                        url: "the key store".to_owned(),
                        reason: e.to_string(),
                    })?;
                return Ok(Snapshot {
                    keys: parse_keys(&document),
                    fetched_at: Instant::now(),
                    ttl: *ttl,
                    generation,
                });
            }
            Source::Static => {
                let current = self.current().expect("a fixed key set always has keys");
                return Ok(Snapshot {
                    keys: current.keys.clone(),
                    fetched_at: Instant::now(),
                    ttl: Duration::MAX,
                    generation,
                });
            }
        };
        let (document, headers) = get_json::<JwksDocument>(http, url, MAX_JWKS_BYTES).await?;
        let ttl = headers
            .get(CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .and_then(max_age)
            .map_or(*default_ttl, |ttl| ttl.clamp(MIN_TTL, MAX_TTL));
        let keys = parse_keys(&document);
        tracing::info!(url = %url, keys = keys.len(), ttl_secs = ttl.as_secs(), "fetched the IdP's signing keys");
        Ok(Snapshot {
            keys,
            fetched_at: Instant::now(),
            ttl,
            generation,
        })
    }

    fn refresh_in_background(&self) {
        if let Some(next) = *lock(&self.0.next_background)
            && Instant::now() < next
        {
            return;
        }
        if self.0.background_running.swap(true, Ordering::AcqRel) {
            return;
        }
        let cache = self.clone();
        tokio::spawn(async move {
            let seen = cache.current().map(|s| s.generation);
            let failed = cache.refetch(seen, None).await.is_err();
            // After a failure keep serving the old keys and try again later, not per request.
            *lock(&cache.0.next_background) =
                failed.then(|| Instant::now() + UNKNOWN_KID_REFETCH_INTERVAL);
            cache.0.background_running.store(false, Ordering::Release);
        });
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn unknown_key() -> AuthError {
    AuthError::invalid(
        Rejection::UnknownKey,
        "unknown signing key: the token was signed with a key the issuer does not publish",
    )
}

/// A JWKS document whose keys are parsed one by one, so one odd key does not hide the rest.
#[derive(Debug, Deserialize)]
struct JwksDocument {
    keys: Vec<serde_json::Value>,
}

fn parse_keys(document: &JwksDocument) -> Vec<Arc<VerifyingKey>> {
    document
        .keys
        .iter()
        .filter_map(|value| {
            let jwk: Jwk = serde_json::from_value(value.clone()).ok()?;
            if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
                return None;
            }
            // Only asymmetric keys: a shared secret in a JWKS would let anyone sign.
            if !matches!(
                jwk.algorithm,
                AlgorithmParameters::RSA(_)
                    | AlgorithmParameters::EllipticCurve(_)
                    | AlgorithmParameters::OctetKeyPair(_)
            ) {
                return None;
            }
            let alg = match jwk.common.key_algorithm {
                Some(alg) => Some(signature_algorithm(alg)?),
                None => None,
            };
            let key = DecodingKey::from_jwk(&jwk).ok()?;
            Some(Arc::new(VerifyingKey {
                kid: jwk.common.key_id.clone(),
                alg,
                key,
            }))
        })
        .collect()
}

/// The signature algorithm a JWK's `alg` names; `None` for encryption or symmetric algorithms.
fn signature_algorithm(alg: KeyAlgorithm) -> Option<Algorithm> {
    Some(match alg {
        KeyAlgorithm::RS256 => Algorithm::RS256,
        KeyAlgorithm::RS384 => Algorithm::RS384,
        KeyAlgorithm::RS512 => Algorithm::RS512,
        KeyAlgorithm::PS256 => Algorithm::PS256,
        KeyAlgorithm::PS384 => Algorithm::PS384,
        KeyAlgorithm::PS512 => Algorithm::PS512,
        KeyAlgorithm::ES256 => Algorithm::ES256,
        KeyAlgorithm::ES384 => Algorithm::ES384,
        KeyAlgorithm::EdDSA => Algorithm::EdDSA,
        _ => return None,
    })
}

/// `max-age` seconds from a Cache-Control value; `no-store` and `no-cache` mean the minimum.
fn max_age(value: &str) -> Option<Duration> {
    value.split(',').map(str::trim).find_map(|directive| {
        if directive.eq_ignore_ascii_case("no-store") || directive.eq_ignore_ascii_case("no-cache")
        {
            return Some(Duration::ZERO);
        }
        let (name, seconds) = directive.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("max-age")
            .then(|| {
                seconds
                    .trim()
                    .trim_matches('"')
                    .parse()
                    .ok()
                    .map(Duration::from_secs)
            })
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_age_is_read_from_cache_control() {
        assert_eq!(
            max_age("public, max-age=3600"),
            Some(Duration::from_secs(3600))
        );
        assert_eq!(max_age("no-store"), Some(Duration::ZERO));
        assert_eq!(max_age("private"), None);
        assert_eq!(max_age("max-age=abc"), None);
    }

    #[test]
    fn symmetric_and_encryption_keys_are_never_used_for_verification() {
        let document: JwksDocument = serde_json::from_value(serde_json::json!({ "keys": [
            { "kty": "oct", "k": "c2VjcmV0", "kid": "hmac" },
            { "kty": "RSA", "use": "enc", "kid": "enc", "n": "sXch", "e": "AQAB" },
            { "kty": "weird", "kid": "unknown" },
            { "kty": "EC", "crv": "P-256", "kid": "ec", "alg": "ES256",
              "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0" }
        ]}))
        .unwrap();
        let keys = parse_keys(&document);
        let kids: Vec<_> = keys.iter().map(|k| k.kid.as_deref()).collect();
        assert_eq!(kids, [Some("ec")], "only the signing key survives");
        assert_eq!(keys[0].alg, Some(Algorithm::ES256));
    }
}
