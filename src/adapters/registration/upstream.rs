//! Registration forwarded to the IdP's RFC 7591 endpoint, found in its metadata.

use std::sync::Arc;

use async_trait::async_trait;
use serde::Deserialize;

use crate::{
    adapters::http_client::read_limited,
    domain::{
        auth::AuthorizationServer,
        clients::{ClientError, ClientMetadata, ClientRegistry, RegisteredClient},
        time::Timestamp,
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
        // Refusals of searchgate itself (registration needs an initial access token, or the
        // IdP is limiting us) are not the client's fault: the registry is unavailable.
        if matches!(status.as_u16(), 401 | 403 | 429) {
            tracing::error!(
                status = status.as_u16(),
                endpoint = %endpoint,
                "the IdP's registration endpoint refused searchgate (does it need an initial access \
                 token, or is it rate limiting?); use registration.mode = static if it does not allow \
                 open registration"
            );
            return Err(ClientError::Unavailable);
        }
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
            created_at: Timestamp::now(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::auth::{AuthError, BearerToken, Principal, ServerMetadata};

    /// An IdP whose metadata names `endpoint` for registration.
    struct Idp {
        endpoint: String,
    }

    #[async_trait]
    impl AuthorizationServer for Idp {
        fn authorization_servers(&self) -> Vec<String> {
            Vec::new()
        }
        async fn verify(&self, _: &BearerToken) -> Result<Principal, AuthError> {
            Err(AuthError::Unexpected(anyhow::anyhow!("not in this test")))
        }
        async fn metadata(&self) -> Result<Option<ServerMetadata>, AuthError> {
            Ok(Some(ServerMetadata(Arc::new(
                serde_json::json!({ "registration_endpoint": self.endpoint }),
            ))))
        }
    }

    fn metadata() -> ClientMetadata {
        ClientMetadata {
            client_name: None,
            redirect_uris: vec!["http://127.0.0.1/cb".into()],
            grant_types: vec!["authorization_code".into()],
            token_endpoint_auth_method: "none".into(),
        }
    }

    async fn answer(status: u16, body: serde_json::Value) -> Result<RegisteredClient, ClientError> {
        let idp = wiremock::MockServer::start().await;
        wiremock::Mock::given(wiremock::matchers::method("POST"))
            .respond_with(wiremock::ResponseTemplate::new(status).set_body_json(body))
            .mount(&idp)
            .await;
        let registry = UpstreamRegistry::new(
            Arc::new(Idp {
                endpoint: format!("{}/register", idp.uri()),
            }),
            reqwest::Client::new(),
        );
        registry.register(metadata()).await
    }

    #[tokio::test]
    async fn refusals_of_searchgate_itself_are_unavailable_not_the_clients_fault() {
        for status in [401, 403, 429] {
            let result = answer(status, serde_json::json!({ "error": "invalid_token" })).await;
            assert!(matches!(result, Err(ClientError::Unavailable)), "{status}");
        }
        let bad = answer(400, serde_json::json!({ "error": "invalid_redirect_uri" })).await;
        assert!(
            matches!(
                bad,
                Err(ClientError::Rejected {
                    code: "invalid_redirect_uri",
                    ..
                })
            ),
            "{bad:?}"
        );
        let ok = answer(201, serde_json::json!({ "client_id": "idp-1" })).await;
        assert_eq!(ok.unwrap().client_id, "idp-1");
    }
}
