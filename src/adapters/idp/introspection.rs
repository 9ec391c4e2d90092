//! Opaque access tokens, checked with the issuer's RFC 7662 introspection endpoint. The answer
//! goes through the same core `TokenPolicy` as a JWT's claims; caching is core's
//! (`CachingAuthorizationServer`): results live until the token's `exp` or the maximum TTL,
//! failures are never cached, and concurrent lookups of one token are coalesced.

use std::{fmt, time::SystemTime};

use reqwest::{Client, StatusCode};

use crate::{
    adapters::http_client::read_limited,
    domain::auth::{AuthError, BearerToken, Claims, Principal, TokenPolicy},
};

/// Largest introspection answer accepted.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// Asks an introspection endpoint about tokens, authenticating as searchgate's client.
#[derive(Clone)]
pub struct IntrospectionVerifier {
    endpoint: String,
    client_id: String,
    client_secret: String,
    http: Client,
    policy: TokenPolicy,
}

impl fmt::Debug for IntrospectionVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IntrospectionVerifier")
            .field("endpoint", &self.endpoint)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl IntrospectionVerifier {
    /// Introspects at `endpoint` with HTTP Basic client authentication (RFC 7662 §2.1).
    pub fn new(
        endpoint: &str,
        client_id: &str,
        client_secret: &str,
        http: Client,
        policy: TokenPolicy,
    ) -> Self {
        Self {
            endpoint: endpoint.to_owned(),
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
            http,
            policy,
        }
    }

    /// The endpoint, for probes.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Asks whether `token` is active and applies the policy to the answer.
    ///
    /// # Errors
    /// [`AuthError::InvalidToken`] for inactive or unacceptable tokens; [`AuthError::Unavailable`]
    /// when the endpoint cannot answer; [`AuthError::Unexpected`] when it refuses searchgate's
    /// own credentials (an operator problem, logged as an error).
    pub async fn verify(&self, token: &BearerToken) -> Result<Principal, AuthError> {
        let response = self
            .http
            .post(&self.endpoint)
            .basic_auth(&self.client_id, Some(&self.client_secret))
            .form(&[
                ("token", token.expose()),
                ("token_type_hint", "access_token"),
            ])
            .send()
            .await
            .map_err(|e| {
                AuthError::unavailable(format!("introspection failed: {}", e.without_url()))
            })?;
        match response.status() {
            StatusCode::OK => {}
            status @ (StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) => {
                tracing::error!(%status, "the introspection endpoint refused searchgate's client credentials; check auth.oidc.client_id and client_secret");
                return Err(AuthError::Unexpected(anyhow::anyhow!(
                    "introspection refused searchgate's credentials ({status})"
                )));
            }
            status => {
                return Err(AuthError::unavailable(format!(
                    "introspection answered HTTP {status}"
                )));
            }
        }
        let body = read_limited(response, &self.endpoint, MAX_RESPONSE_BYTES)
            .await
            .map_err(|e| AuthError::unavailable(e.to_string()))?;
        let claims: Claims = serde_json::from_slice(&body).map_err(|e| {
            AuthError::unavailable(format!("introspection sent an unreadable answer: {e}"))
        })?;
        self.policy.check(claims, SystemTime::now())
    }
}
