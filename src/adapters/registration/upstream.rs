//! Registration forwarded to the IdP's RFC 7591 endpoint, found in its metadata.

use std::{sync::Arc, time::SystemTime};

use async_trait::async_trait;
use serde::Deserialize;

use crate::{
    adapters::http_client::read_limited,
    domain::{
        auth::AuthorizationServer,
        clients::{ClientError, ClientMetadata, ClientRegistry, RegisteredClient},
    },
};

const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// Forwards registrations to the IdP.
pub struct UpstreamRegistry {
    idp: Arc<dyn AuthorizationServer>,
    http: reqwest::Client,
}

#[derive(Deserialize)]
struct Answer {
    client_id: String,
    client_secret: Option<String>,
    client_name: Option<String>,
    redirect_uris: Option<Vec<String>>,
    grant_types: Option<Vec<String>>,
    token_endpoint_auth_method: Option<String>,
}

#[derive(Deserialize)]
struct ErrorAnswer {
    error: Option<String>,
    error_description: Option<String>,
}

impl UpstreamRegistry {
    /// Registers at `idp`'s registration endpoint with `http`.
    pub fn new(idp: Arc<dyn AuthorizationServer>, http: reqwest::Client) -> Self {
        Self { idp, http }
    }

    /// The IdP's registration endpoint, when its metadata names one.
    ///
    /// # Errors
    /// [`ClientError::Unavailable`] when the metadata cannot be fetched.
    pub async fn endpoint(&self) -> Result<Option<String>, ClientError> {
        let metadata = self.idp.metadata().await.map_err(|error| {
            tracing::warn!(error = %error, "cannot read the IdP's metadata for registration");
            ClientError::Unavailable
        })?;
        Ok(metadata.and_then(|m| {
            m.0.get("registration_endpoint")
                .and_then(|e| e.as_str())
                .map(str::to_owned)
        }))
    }
}

#[async_trait]
impl ClientRegistry for UpstreamRegistry {
    async fn register(&self, metadata: ClientMetadata) -> Result<RegisteredClient, ClientError> {
        let Some(endpoint) = self.endpoint().await? else {
            return Err(ClientError::Rejected {
                code: "invalid_client_metadata",
                description: "the identity provider does not offer dynamic registration; ask \
                              the operator for a client id (registration.mode = static)"
                    .to_owned(),
            });
        };
        let has_code = metadata
            .grant_types
            .iter()
            .any(|g| g == "authorization_code");
        let mut body = serde_json::json!({
            "redirect_uris": metadata.redirect_uris,
            "grant_types": metadata.grant_types,
            "response_types": if has_code { vec!["code"] } else { vec![] },
            "token_endpoint_auth_method": metadata.token_endpoint_auth_method,
        });
        if let Some(name) = &metadata.client_name {
            body["client_name"] = name.clone().into();
        }
        let response = self
            .http
            .post(&endpoint)
            .json(&body)
            .send()
            .await
            .map_err(|error| {
                tracing::warn!(error = %error.without_url(), endpoint = %endpoint, "cannot reach the IdP's registration endpoint");
                ClientError::Unavailable
            })?;
        let status = response.status();
        let bytes = read_limited(response, &endpoint, MAX_ANSWER_BYTES)
            .await
            .map_err(|_| ClientError::Unavailable)?;
        if status.is_client_error() {
            let answer: ErrorAnswer = serde_json::from_slice(&bytes).unwrap_or(ErrorAnswer {
                error: None,
                error_description: None,
            });
            let code = match answer.error.as_deref() {
                Some("invalid_redirect_uri") => "invalid_redirect_uri",
                _ => "invalid_client_metadata",
            };
            let description = answer
                .error_description
                .or(answer.error)
                .unwrap_or_else(|| format!("HTTP {}", status.as_u16()));
            return Err(ClientError::Rejected {
                code,
                description: format!(
                    "the identity provider refused the registration: {}",
                    description.chars().take(300).collect::<String>()
                ),
            });
        }
        if !status.is_success() {
            tracing::warn!(status = status.as_u16(), endpoint = %endpoint, "the IdP's registration endpoint failed");
            return Err(ClientError::Unavailable);
        }
        let answer: Answer = serde_json::from_slice(&bytes).map_err(|error| {
            tracing::error!(error = %error, "the IdP's registration answer cannot be read");
            ClientError::Unavailable
        })?;
        Ok(RegisteredClient {
            client_id: answer.client_id,
            metadata: ClientMetadata {
                client_name: answer.client_name.or(metadata.client_name),
                redirect_uris: answer.redirect_uris.unwrap_or(metadata.redirect_uris),
                grant_types: answer.grant_types.unwrap_or(metadata.grant_types),
                token_endpoint_auth_method: answer
                    .token_endpoint_auth_method
                    .unwrap_or(metadata.token_endpoint_auth_method),
            },
            client_secret: answer.client_secret,
            created_at: SystemTime::now(),
        })
    }
}
