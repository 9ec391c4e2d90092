//! Any OpenID Connect provider: discovery with `openidconnect` (the metadata's `issuer` must be
//! the configured one), then JWT access tokens verified with the provider's JWKS, or opaque
//! tokens checked with its introspection endpoint. Discovery runs at start and, while the
//! provider is unreachable, again on demand at most every few seconds; requests meanwhile get 503.

use std::{
    sync::Mutex,
    time::{Duration, Instant},
};

use async_trait::async_trait;
use openidconnect::{
    AdditionalProviderMetadata, IssuerUrl, ProviderMetadata,
    core::{
        CoreAuthDisplay, CoreClaimName, CoreClaimType, CoreClientAuthMethod, CoreGrantType,
        CoreJsonWebKey, CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm,
        CoreResponseMode, CoreResponseType, CoreSubjectIdentifierType,
    },
};
use reqwest::Client;
use serde::{Deserialize, Serialize};
use tokio::sync::OnceCell;

use super::{IntrospectionVerifier, JwksCache, JwtVerifier, MetadataCache};
use crate::{
    adapters::http_client::read_limited,
    domain::auth::{
        AuthError, AuthorizationServer, BearerToken, Principal, ProbeFinding, ServerMetadata,
        TokenPolicy, canonical,
    },
};

/// How long a failed discovery keeps requests at 503 before it is tried again.
const DISCOVERY_RETRY: Duration = Duration::from_secs(5);
/// How long the forwarded metadata document is kept.
const METADATA_TTL: Duration = Duration::from_secs(3600);
const MAX_DISCOVERY_BYTES: usize = 256 * 1024;

/// Fields of the discovery document beyond OpenID Connect Discovery's.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
struct ExtraMetadata {
    introspection_endpoint: Option<String>,
}

impl AdditionalProviderMetadata for ExtraMetadata {}

type DiscoveredMetadata = ProviderMetadata<
    ExtraMetadata,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

/// What an OIDC adapter needs to know.
#[derive(Clone)]
pub struct OidcConfig {
    /// The issuer identifier, exactly as the provider writes it (discovery compares strings).
    pub issuer: String,
    /// Accepted issuers (default: `issuer`).
    pub issuers: Vec<String>,
    /// Accepted audiences.
    pub audiences: Vec<String>,
    /// Clock skew tolerated.
    pub leeway: Duration,
    /// Keys are kept this long unless the provider says otherwise.
    pub jwks_ttl: Duration,
    /// `Some((client_id, client_secret))` for introspection; `None` for JWTs.
    pub introspection: Option<(String, String)>,
    /// Require `typ: at+jwt` on JWT access tokens.
    pub strict_typ: bool,
}

impl std::fmt::Debug for OidcConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcConfig")
            .field("issuer", &self.issuer)
            .field("issuers", &self.issuers)
            .field("audiences", &self.audiences)
            .field(
                "introspection_client",
                &self.introspection.as_ref().map(|(id, _)| id),
            )
            .finish_non_exhaustive()
    }
}

enum Verifier {
    Jwt(JwtVerifier),
    Introspection(IntrospectionVerifier),
}

/// An OpenID Connect provider as searchgate's authorization server.
pub struct OidcAuthorizationServer {
    config: OidcConfig,
    http: Client,
    verifier: OnceCell<Verifier>,
    last_failure: Mutex<Option<Instant>>,
    metadata: MetadataCache,
}

impl OidcAuthorizationServer {
    /// An adapter for the provider in `config`; call [`Self::discover`] to look it up eagerly.
    pub fn new(config: OidcConfig, http: Client) -> Self {
        let discovery_url = format!(
            "{}/.well-known/openid-configuration",
            config.issuer.trim_end_matches('/')
        );
        let metadata =
            MetadataCache::new(&discovery_url, &config.issuer, http.clone(), METADATA_TTL);
        Self {
            config,
            http,
            verifier: OnceCell::new(),
            last_failure: Mutex::new(None),
            metadata,
        }
    }

    /// Runs discovery now (at start-up), logging rather than failing when the provider is down.
    pub async fn discover(&self) {
        if let Err(error) = self.verifier().await {
            tracing::warn!(issuer = %self.config.issuer, error = %error, "OIDC discovery failed; requests get 503 until it succeeds");
        }
    }

    async fn verifier(&self) -> Result<&Verifier, AuthError> {
        if let Some(verifier) = self.verifier.get() {
            return Ok(verifier);
        }
        self.recent_failure()?;
        // OnceCell runs one discovery at a time and leaves the cell empty after a failure; the
        // waiters that queued behind a failed attempt share its failure instead of retrying.
        self.verifier
            .get_or_try_init(|| async {
                self.recent_failure()?;
                let result = self.build_verifier().await;
                if result.is_err() {
                    *self
                        .last_failure
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Instant::now());
                }
                result
            })
            .await
    }

    fn recent_failure(&self) -> Result<(), AuthError> {
        match *self
            .last_failure
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
        {
            Some(at) if at.elapsed() < DISCOVERY_RETRY => Err(AuthError::Unavailable {
                detail: "OIDC discovery failed moments ago".into(),
                retry_after: Some(DISCOVERY_RETRY.saturating_sub(at.elapsed())),
            }),
            _ => Ok(()),
        }
    }

    async fn build_verifier(&self) -> Result<Verifier, AuthError> {
        let metadata = self.discover_metadata().await?;
        let issuers = if self.config.issuers.is_empty() {
            vec![self.config.issuer.clone()]
        } else {
            self.config.issuers.clone()
        };
        let policy = TokenPolicy::new(&issuers, &self.config.audiences, self.config.leeway);
        Ok(match &self.config.introspection {
            None => {
                let keys = JwksCache::remote(
                    metadata.jwks_uri().url().as_str(),
                    self.http.clone(),
                    self.config.jwks_ttl,
                );
                Verifier::Jwt(
                    JwtVerifier::new(keys, policy).with_strict_typ(self.config.strict_typ),
                )
            }
            Some((client_id, client_secret)) => {
                let endpoint = metadata.additional_metadata().introspection_endpoint.clone().ok_or_else(|| {
                    AuthError::Unexpected(anyhow::anyhow!(
                        "{} advertises no introspection_endpoint; use auth.oidc.validation = \"jwt\"",
                        self.config.issuer
                    ))
                })?;
                let policy = policy.for_introspection(&self.config.issuer);
                Verifier::Introspection(IntrospectionVerifier::new(
                    &endpoint,
                    client_id,
                    client_secret,
                    self.http.clone(),
                    policy,
                ))
            }
        })
    }

    async fn discover_metadata(&self) -> Result<DiscoveredMetadata, AuthError> {
        let issuer = IssuerUrl::new(self.config.issuer.clone())
            .map_err(|e| AuthError::Unexpected(anyhow::anyhow!("the issuer is not a URL: {e}")))?;
        let http = self.http.clone();
        // openidconnect speaks `http` types; this adapts the shared reqwest client to them.
        let fetch = move |request: openidconnect::HttpRequest| {
            let http = http.clone();
            async move {
                let (parts, body) = request.into_parts();
                let url = parts.uri.to_string();
                let response = http
                    .request(parts.method, &url)
                    .headers(parts.headers)
                    .body(body)
                    .send()
                    .await
                    .map_err(|e| std::io::Error::other(e.without_url().to_string()))?;
                let mut builder = http::Response::builder().status(response.status());
                for (name, value) in response.headers() {
                    builder = builder.header(name, value);
                }
                let body = read_limited(response, &url, MAX_DISCOVERY_BYTES)
                    .await
                    .map_err(std::io::Error::other)?;
                builder.body(body).map_err(std::io::Error::other)
            }
        };
        DiscoveredMetadata::discover_async(issuer, &fetch)
            .await
            .map_err(|error| {
                let message = error_chain(&error);
                let unreachable = matches!(
                    error,
                    openidconnect::DiscoveryError::Request(_) | openidconnect::DiscoveryError::Response(..)
                );
                // Either way requests get 503 until discovery succeeds; an answer that is wrong
                // (another issuer, unreadable metadata) is the operator's to fix, so say so once
                // per attempt rather than on every request.
                if !unreachable {
                    tracing::error!(issuer = %self.config.issuer, error = %message, "OIDC discovery got an unusable answer; check auth.oidc.issuer (it must be the provider's issuer exactly)");
                }
                AuthError::unavailable(format!("OIDC discovery at {} failed: {message}", self.config.issuer))
            })
    }
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

#[async_trait]
impl AuthorizationServer for OidcAuthorizationServer {
    fn authorization_servers(&self) -> Vec<String> {
        vec![self.config.issuer.clone()]
    }

    async fn verify(&self, token: &BearerToken) -> Result<Principal, AuthError> {
        match self.verifier().await? {
            Verifier::Jwt(jwt) => jwt.verify(token).await,
            Verifier::Introspection(introspection) => introspection.verify(token).await,
        }
    }

    async fn metadata(&self) -> Result<Option<ServerMetadata>, AuthError> {
        self.metadata.get().await.map(Some)
    }

    async fn probe(&self) -> Vec<ProbeFinding> {
        let mut findings = Vec::new();
        match self.discover_metadata().await {
            Ok(metadata) => {
                findings.push(ProbeFinding::ok(
                    "discovery",
                    format!(
                        "{} answers, and its metadata names issuer {}",
                        self.metadata.url(),
                        canonical(metadata.issuer().as_str())
                    ),
                ));
                findings.push(ProbeFinding::ok(
                    "jwks_uri",
                    metadata.jwks_uri().url().as_str(),
                ));
            }
            Err(error) => {
                findings.push(ProbeFinding::failed(
                    "discovery",
                    format!("{error}; check auth.oidc.issuer"),
                ));
                return findings;
            }
        }
        match self.verifier().await {
            Ok(Verifier::Jwt(jwt)) => findings.push(jwt.keys().probe().await),
            Ok(Verifier::Introspection(introspection)) => {
                findings.push(ProbeFinding::ok("introspection", introspection.endpoint()));
            }
            Err(error) => {
                findings.push(ProbeFinding::failed("token validation", error.to_string()))
            }
        }
        findings
    }
}
