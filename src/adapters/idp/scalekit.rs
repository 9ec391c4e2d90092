//! Scalekit as searchgate's authorization server. Its facts (reference §A): the authorization
//! server is `<env>/resources/<res_id>`, its metadata lives at
//! `<env>/.well-known/oauth-authorization-server/resources/<res_id>`, keys at `<env>/keys`;
//! tokens are RS256 JWTs whose `iss` is `<env>` or, since the MCP 2026-07-28 rollout,
//! `<env>/resources/<res_id>` (both accepted), and whose `aud` lists the resource id and, when
//! a Server URL is configured, the MCP URL.

use std::time::Duration;

use async_trait::async_trait;
use reqwest::Client;

use super::{JwksCache, JwtVerifier, MetadataCache};
use crate::domain::auth::{
    AuthError, AuthorizationServer, BearerToken, Principal, ProbeFinding, ServerMetadata,
    TokenPolicy,
};

const METADATA_TTL: Duration = Duration::from_secs(3600);

/// Scalekit, verified locally with its JWKS.
pub struct ScalekitAuthorizationServer {
    authorization_server: String,
    jwt: JwtVerifier,
    metadata: MetadataCache,
}

impl ScalekitAuthorizationServer {
    /// The adapter for environment `environment_url` and MCP server `resource_id`. Empty
    /// `issuers`/`audiences` mean Scalekit's defaults (both issuer forms; the resource URL and
    /// the resource id).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        environment_url: &str,
        resource_id: &str,
        resource_url: &str,
        issuers: &[String],
        audiences: &[String],
        leeway: Duration,
        jwks_ttl: Duration,
        http: Client,
    ) -> Self {
        let env = environment_url.trim_end_matches('/');
        let authorization_server = format!("{env}/resources/{resource_id}");
        let issuers = if issuers.is_empty() {
            vec![env.to_owned(), authorization_server.clone()]
        } else {
            issuers.to_vec()
        };
        let audiences = if audiences.is_empty() {
            vec![resource_url.to_owned(), resource_id.to_owned()]
        } else {
            audiences.to_vec()
        };
        let keys = JwksCache::remote(&format!("{env}/keys"), http.clone(), jwks_ttl);
        let metadata_url =
            format!("{env}/.well-known/oauth-authorization-server/resources/{resource_id}");
        Self {
            jwt: JwtVerifier::new(keys, TokenPolicy::new(&issuers, &audiences, leeway)),
            metadata: MetadataCache::new(&metadata_url, &authorization_server, http, METADATA_TTL),
            authorization_server,
        }
    }
}

#[async_trait]
impl AuthorizationServer for ScalekitAuthorizationServer {
    fn authorization_servers(&self) -> Vec<String> {
        vec![self.authorization_server.clone()]
    }

    async fn verify(&self, token: &BearerToken) -> Result<Principal, AuthError> {
        self.jwt.verify(token).await
    }

    async fn metadata(&self) -> Result<Option<ServerMetadata>, AuthError> {
        self.metadata.get().await.map(Some)
    }

    async fn probe(&self) -> Vec<ProbeFinding> {
        let metadata = match self.metadata.get().await {
            Ok(_) => ProbeFinding::ok(
                "metadata",
                format!(
                    "{} names issuer {}",
                    self.metadata.url(),
                    self.authorization_server
                ),
            ),
            Err(error) => ProbeFinding::failed(
                "metadata",
                format!("{error}; check auth.scalekit.environment_url and resource_id"),
            ),
        };
        let keys = self.jwt.keys().probe().await;
        vec![metadata, keys]
    }
}
