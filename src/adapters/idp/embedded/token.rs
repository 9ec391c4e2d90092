//! The token endpoint (RFC 6749 §3.2, OAuth 2.1): authorization code with PKCE, refresh token
//! with rotation and reuse detection, and client credentials for confidential clients; and the
//! server's own client registry (RFC 7591, served by searchgate's registration endpoint).

use std::collections::HashMap;

use base64::{Engine, engine::general_purpose::STANDARD};
use serde::Serialize;

use super::{EmbeddedAuthorizationServer, Lookup, keys, now};
use crate::domain::{
    clients::{ClientError, ClientMetadata, ClientRegistry, RegisteredClient},
    issuer::{ClientRecord, RefreshRecord},
    time::Timestamp,
};

/// A successful token response.
#[derive(Debug, Serialize)]
pub struct TokenResponse {
    /// The RS256 JWT access token.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// The granted scopes.
    pub scope: String,
    /// A new refresh token, when the client may refresh.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
}

/// An OAuth error answer (RFC 6749 §5.2).
#[derive(Debug, Serialize)]
pub struct OAuthError {
    /// The HTTP status: 400, or 401 for `invalid_client`, or 503.
    #[serde(skip)]
    pub status: u16,
    /// Whether to add `WWW-Authenticate: Basic` (the client tried HTTP Basic).
    #[serde(skip)]
    pub basic_challenge: bool,
    /// The error code.
    pub error: &'static str,
    /// What went wrong, for the client's developer.
    pub error_description: String,
}

fn error(error: &'static str, description: impl Into<String>) -> OAuthError {
    OAuthError {
        status: 400,
        basic_challenge: false,
        error,
        error_description: description.into(),
    }
}

fn unavailable(what: &str, cause: &anyhow::Error) -> OAuthError {
    tracing::error!(error = %format!("{cause:#}"), "the embedded authorization server cannot {what}");
    OAuthError {
        status: 503,
        basic_challenge: false,
        error: "temporarily_unavailable",
        error_description: format!("the server cannot {what} right now; try again"),
    }
}

/// The client's credentials as presented.
struct Presented {
    client_id: String,
    secret: Option<String>,
    basic: bool,
}

impl EmbeddedAuthorizationServer {
    /// Answers a token request: `form` is the decoded body, `authorization` the header.
    ///
    /// # Errors
    /// The OAuth error to send.
    pub async fn token(
        &self,
        form: &HashMap<String, String>,
        authorization: Option<&str>,
    ) -> Result<TokenResponse, OAuthError> {
        let presented = presented_credentials(form, authorization)?;
        let client = self.authenticate(&presented).await?;
        let Some(grant_type) = param(form, "grant_type") else {
            return Err(error("invalid_request", "grant_type is missing"));
        };
        if !matches!(
            grant_type,
            "authorization_code" | "refresh_token" | "client_credentials"
        ) {
            return Err(error(
                "unsupported_grant_type",
                "use authorization_code, refresh_token or client_credentials",
            ));
        }
        if !client.grant_types.iter().any(|g| g == grant_type) {
            return Err(error(
                "unauthorized_client",
                format!("the client did not register the {grant_type} grant"),
            ));
        }
        match grant_type {
            "authorization_code" => self.exchange_code(&client, form).await,
            "refresh_token" => self.refresh(&client, form).await,
            _ => self.client_credentials(&client, form).await,
        }
    }

    async fn exchange_code(
        &self,
        client: &ClientRecord,
        form: &HashMap<String, String>,
    ) -> Result<TokenResponse, OAuthError> {
        let (Some(code), Some(verifier)) = (param(form, "code"), param(form, "code_verifier"))
        else {
            return Err(error(
                "invalid_request",
                "code and code_verifier (PKCE) are required",
            ));
        };
        let code_hash = keys::sha256_hex(code);
        // Checked first and spent last, so a refused request leaves the code as it was.
        let record = match self.store.find_code(&code_hash).await {
            Ok(Some(stored)) if stored.spent => {
                // A replayed code may be stolen: revoke what the first exchange issued.
                return Err(self
                    .revoke_replayed(
                        &code_hash,
                        client,
                        "the authorization code was already used; the refresh tokens issued for \
                         it are revoked",
                    )
                    .await);
            }
            Ok(Some(stored)) => stored.record,
            Ok(None) => {
                return Err(error(
                    "invalid_grant",
                    "the authorization code is not valid",
                ));
            }
            Err(e) => return Err(unavailable("read the code", &e)),
        };
        if record.client_id != client.client_id {
            return Err(error(
                "invalid_grant",
                "the authorization code was issued to another client",
            ));
        }
        if record.expires_at < now() {
            return Err(error(
                "invalid_grant",
                "the authorization code has expired; sign in again",
            ));
        }
        // RFC 6749 §4.1.3: required when the authorization request carried one.
        if !record.redirect_uri.is_empty()
            && param(form, "redirect_uri") != Some(record.redirect_uri.as_str())
        {
            return Err(error(
                "invalid_grant",
                "redirect_uri must be the one of the authorization request",
            ));
        }
        if !is_code_verifier(verifier) {
            return Err(error(
                "invalid_request",
                "code_verifier must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~ (RFC 7636)",
            ));
        }
        if !keys::pkce_matches(verifier, &record.code_challenge) {
            return Err(error(
                "invalid_grant",
                "the PKCE code_verifier does not match the code_challenge",
            ));
        }
        self.same_resource(form, &record.resource)?;
        let refresh = client
            .grant_types
            .iter()
            .any(|g| g == "refresh_token")
            .then(|| {
                self.next_refresh(&RefreshRecord {
                    token_hash: String::new(),
                    family: code_hash.clone(),
                    client_id: client.client_id.clone(),
                    subject: record.subject.clone(),
                    scope: record.scope.clone(),
                    resource: record.resource.clone(),
                    expires_at: 0,
                })
            });
        let access = self
            .mint(
                &record.subject,
                &client.client_id,
                &record.scope,
                &record.resource,
                self.config.access_ttl,
            )
            .await
            .map_err(|e| unavailable("issue a token", &e))?;
        let consumed = self
            .store
            .consume_code(&code_hash, refresh.as_ref().map(|(_, r)| r))
            .await
            .map_err(|e| unavailable("redeem the code", &e))?;
        if !consumed {
            return Err(self
                .revoke_replayed(
                    &code_hash,
                    client,
                    "the authorization code was used by another request at the same time",
                )
                .await);
        }
        Ok(TokenResponse {
            access_token: access.token,
            token_type: "Bearer",
            expires_in: access.expires_in,
            scope: record.scope,
            refresh_token: refresh.map(|(token, _)| token),
        })
    }

    async fn refresh(
        &self,
        client: &ClientRecord,
        form: &HashMap<String, String>,
    ) -> Result<TokenResponse, OAuthError> {
        let Some(token) = param(form, "refresh_token") else {
            return Err(error("invalid_request", "refresh_token is missing"));
        };
        let token_hash = keys::sha256_hex(token);
        let record = match self.store.find_refresh(&token_hash).await {
            Ok(Some(stored)) if stored.spent => {
                // Reuse means two parties hold the grant: end it for both (OAuth 2.1 §4.3.1).
                return Err(self
                    .revoke_replayed(
                        &stored.record.family,
                        client,
                        "the refresh token was already used or revoked; sign in again",
                    )
                    .await);
            }
            Ok(Some(stored)) => stored.record,
            Ok(None) => {
                return Err(error("invalid_grant", "the refresh token is not valid"));
            }
            Err(e) => return Err(unavailable("read the refresh token", &e)),
        };
        if record.client_id != client.client_id {
            return Err(error(
                "invalid_grant",
                "the refresh token was issued to another client",
            ));
        }
        if record.expires_at < now() {
            return Err(error(
                "invalid_grant",
                "the refresh token has expired; sign in again",
            ));
        }
        let granted: Vec<&str> = record.scope.split_whitespace().collect();
        let asked: Vec<&str> = param(form, "scope")
            .unwrap_or_default()
            .split_whitespace()
            .filter(|s| !matches!(*s, "offline_access" | "openid"))
            .collect();
        if asked.iter().any(|s| !granted.contains(s)) {
            return Err(error(
                "invalid_scope",
                format!("a refresh may only narrow the grant ({})", record.scope),
            ));
        }
        // The family keeps the whole grant's scope; the access token carries the narrowed one.
        let scope = if asked.is_empty() {
            record.scope.clone()
        } else {
            asked.join(" ")
        };
        self.same_resource(form, &record.resource)?;
        let (refresh_token, next) = self.next_refresh(&record);
        let access = self
            .mint(
                &record.subject,
                &client.client_id,
                &scope,
                &record.resource,
                self.config.access_ttl,
            )
            .await
            .map_err(|e| unavailable("issue a token", &e))?;
        let rotated = self
            .store
            .rotate_refresh(&token_hash, &next)
            .await
            .map_err(|e| unavailable("rotate the refresh token", &e))?;
        if !rotated {
            return Err(self
                .revoke_replayed(
                    &record.family,
                    client,
                    "the refresh token was used by another request at the same time; sign in again",
                )
                .await);
        }
        Ok(TokenResponse {
            access_token: access.token,
            token_type: "Bearer",
            expires_in: access.expires_in,
            scope,
            refresh_token: Some(refresh_token),
        })
    }

    async fn client_credentials(
        &self,
        client: &ClientRecord,
        form: &HashMap<String, String>,
    ) -> Result<TokenResponse, OAuthError> {
        if client.secret_hash.is_none() {
            return Err(error(
                "unauthorized_client",
                "client_credentials is for confidential clients",
            ));
        }
        let scope = self
            .scope_from(param(form, "scope"), false)
            .map_err(|d| error("invalid_scope", d))?;
        let resource = self
            .check_resource(param(form, "resource"))
            .map_err(|d| error("invalid_target", d))?;
        let access = self
            .mint(
                &client.client_id,
                &client.client_id,
                &scope,
                &resource,
                self.config.access_ttl,
            )
            .await
            .map_err(|e| unavailable("issue a token", &e))?;
        Ok(TokenResponse {
            access_token: access.token,
            token_type: "Bearer",
            expires_in: access.expires_in,
            scope,
            refresh_token: None,
        })
    }

    /// A `resource` sent at the token endpoint must be searchgate's and the grant's.
    fn same_resource(
        &self,
        form: &HashMap<String, String>,
        granted: &str,
    ) -> Result<(), OAuthError> {
        if let Some(resource) = param(form, "resource") {
            let resource = self
                .check_resource(Some(resource))
                .map_err(|d| error("invalid_target", d))?;
            if resource != granted {
                return Err(error("invalid_target", "resource differs from the grant's"));
            }
        }
        Ok(())
    }

    /// Revokes the grant family of a replayed code or refresh token and says so.
    async fn revoke_replayed(
        &self,
        family: &str,
        client: &ClientRecord,
        description: &str,
    ) -> OAuthError {
        if let Err(e) = self.store.revoke_family(family).await {
            return unavailable("revoke tokens", &e);
        }
        tracing::warn!(client_id = %client.client_id, "a single-use credential was replayed; its grant is revoked");
        error("invalid_grant", description)
    }

    /// A new refresh token continuing `grant`, and the record to store for it.
    fn next_refresh(&self, grant: &RefreshRecord) -> (String, RefreshRecord) {
        let token = keys::random_string(32);
        let record = RefreshRecord {
            token_hash: keys::sha256_hex(&token),
            expires_at: now() + i64::try_from(self.config.refresh_ttl.as_secs()).unwrap_or(0),
            ..grant.clone()
        };
        (token, record)
    }

    /// Finds the client and checks its secret (confidential) or that it sent none (public).
    async fn authenticate(&self, presented: &Presented) -> Result<ClientRecord, OAuthError> {
        let invalid = |description: &str| OAuthError {
            status: 401,
            basic_challenge: presented.basic,
            error: "invalid_client",
            error_description: description.to_owned(),
        };
        let client = match self.find_client(&presented.client_id).await {
            Lookup::Found(client) => client,
            Lookup::Unknown(why) | Lookup::Denied(why) => return Err(invalid(&why)),
            // Not the client's fault: a 401 would make it throw its registration away.
            Lookup::Unavailable(why) => {
                return Err(OAuthError {
                    status: 503,
                    basic_challenge: false,
                    error: "temporarily_unavailable",
                    error_description: why,
                });
            }
        };
        // The method the client registered is the one it must use.
        let method_ok = match client.token_endpoint_auth_method.as_str() {
            "client_secret_basic" => presented.basic,
            "client_secret_post" => !presented.basic,
            _ => true,
        };
        if !method_ok {
            return Err(invalid(&format!(
                "this client registered token_endpoint_auth_method {}",
                client.token_endpoint_auth_method
            )));
        }
        match (&client.secret_hash, &presented.secret) {
            (Some(hash), Some(secret)) if keys::secret_matches(hash, secret) => Ok(client),
            (Some(_), _) => Err(invalid("the client secret is missing or wrong")),
            (None, None) => Ok(client),
            (None, Some(_)) => Err(invalid("this public client has no secret")),
        }
    }
}

#[async_trait::async_trait]
impl ClientRegistry for EmbeddedAuthorizationServer {
    /// Registers a client in the embedded server's own table; a confidential client's secret
    /// is returned once and stored as its SHA-256.
    async fn register(&self, metadata: ClientMetadata) -> Result<RegisteredClient, ClientError> {
        let client_id = format!("sg_{}", keys::random_string(16));
        let secret = metadata.is_confidential().then(|| keys::random_string(32));
        let record = ClientRecord {
            client_id: client_id.clone(),
            client_name: metadata.client_name.clone(),
            redirect_uris: metadata.redirect_uris.clone(),
            grant_types: metadata.grant_types.clone(),
            token_endpoint_auth_method: metadata.token_endpoint_auth_method.clone(),
            secret_hash: secret.as_deref().map(keys::sha256_hex),
            created_at: now(),
        };
        self.store.add_client(&record).await.map_err(|error| {
            tracing::error!(error = %format!("{error:#}"), "cannot store a registered client");
            ClientError::Unavailable
        })?;
        tracing::info!(client_id = %client_id, client_name = ?record.client_name, "registered a client");
        Ok(RegisteredClient {
            client_id,
            metadata,
            client_secret: secret,
            created_at: Timestamp::now(),
        })
    }
}

/// RFC 7636 §4.1: 43 to 128 unreserved characters.
fn is_code_verifier(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// A non-empty parameter.
fn param<'a>(form: &'a HashMap<String, String>, name: &str) -> Option<&'a str> {
    form.get(name).map(String::as_str).filter(|v| !v.is_empty())
}

/// Reads the client's credentials from HTTP Basic (RFC 6749 §2.3.1, form-encoded parts) or the
/// body; both at once is an error.
fn presented_credentials(
    form: &HashMap<String, String>,
    authorization: Option<&str>,
) -> Result<Presented, OAuthError> {
    let basic = authorization.and_then(|h| {
        let (scheme, value) = h.trim().split_once(' ')?;
        scheme.eq_ignore_ascii_case("basic").then_some(value.trim())
    });
    if let Some(encoded) = basic {
        if form.contains_key("client_secret") {
            return Err(error(
                "invalid_request",
                "use one client authentication method, not Basic and client_secret together",
            ));
        }
        let malformed = || OAuthError {
            status: 401,
            basic_challenge: true,
            error: "invalid_client",
            error_description: "the Basic credentials cannot be read".to_owned(),
        };
        let decoded = STANDARD.decode(encoded).map_err(|_| malformed())?;
        let text = String::from_utf8(decoded).map_err(|_| malformed())?;
        let (id, secret) = text.split_once(':').ok_or_else(malformed)?;
        let decode = |part: &str| {
            url::form_urlencoded::parse(format!("x={part}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        };
        let client_id = decode(id);
        if form
            .get("client_id")
            .is_some_and(|body_id| *body_id != client_id)
        {
            return Err(error(
                "invalid_request",
                "client_id in the body differs from the Basic credentials",
            ));
        }
        return Ok(Presented {
            client_id,
            secret: Some(decode(secret)).filter(|s| !s.is_empty()),
            basic: true,
        });
    }
    let Some(client_id) = form.get("client_id").filter(|v| !v.is_empty()) else {
        return Err(OAuthError {
            status: 401,
            basic_challenge: false,
            error: "invalid_client",
            error_description: "the request does not identify the client (client_id)".to_owned(),
        });
    };
    Ok(Presented {
        client_id: client_id.clone(),
        secret: param(form, "client_secret").map(str::to_owned),
        basic: false,
    })
}
