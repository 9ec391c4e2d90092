//! `POST /oauth/register` (RFC 7591): client registration through searchgate, whatever the
//! registry behind it, rate limited per source address and audited.

use std::{net::IpAddr, num::NonZeroU32, sync::Arc, time::Instant};

use poem::Request;
use poem_openapi::{ApiResponse, Object, OpenApi, payload::Json};

use super::RequestId;
use crate::domain::{
    audit::{AuditEvent, AuditSink, Outcome},
    clients::{ClientError, Registrar, RegistrationRequest},
    rate_limit::KeyedLimiter,
};

/// An RFC 7591 error answer.
#[derive(Debug, Object)]
pub struct RegistrationError {
    /// `invalid_redirect_uri`, `invalid_client_metadata`, `temporarily_unavailable` or
    /// `rate_limited`.
    pub error: String,
    /// What is wrong, for the client's developer.
    pub error_description: String,
}

/// Answers of the registration endpoint.
#[derive(ApiResponse)]
pub enum RegistrationResponse {
    /// Registered: the client's id and, for confidential clients, its secret (shown once).
    #[oai(status = 201)]
    Created(
        Json<serde_json::Value>,
        #[oai(header = "Cache-Control")] String,
    ),
    /// The metadata was refused (RFC 7591 §3.2.2).
    #[oai(status = 400)]
    BadRequest(Json<RegistrationError>),
    /// Registration is off on this server.
    #[oai(status = 404)]
    NotFound(Json<RegistrationError>),
    /// Too many registrations from this address; retry after the given seconds.
    #[oai(status = 429)]
    TooMany(Json<RegistrationError>, #[oai(header = "Retry-After")] u64),
    /// The registry (the IdP, or the database) cannot be reached; retry shortly.
    #[oai(status = 503)]
    Unavailable(Json<RegistrationError>, #[oai(header = "Retry-After")] u64),
}

fn answer(error: &str, description: impl Into<String>) -> Json<RegistrationError> {
    Json(RegistrationError {
        error: error.to_owned(),
        error_description: description.into(),
    })
}

/// The registration endpoint.
pub struct RegistrationApi {
    registrar: Option<Arc<Registrar>>,
    limiter: KeyedLimiter<IpAddr>,
    audit: AuditSink,
}

impl RegistrationApi {
    /// Registers through `registrar` (`None`: registration is off), at most `per_minute` per
    /// source address.
    pub fn new(registrar: Option<Arc<Registrar>>, per_minute: u32, audit: AuditSink) -> Self {
        let per_minute = NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN);
        Self {
            registrar,
            limiter: KeyedLimiter::per_minute(per_minute),
            audit,
        }
    }

    async fn audit(
        &self,
        req: &Request,
        started: Instant,
        status: u16,
        outcome: Outcome,
        client_id: Option<String>,
        error_code: Option<&str>,
    ) {
        let request_id = req
            .extensions()
            .get::<RequestId>()
            .map(|r| r.0.clone())
            .unwrap_or_default();
        let mut event = AuditEvent::action(request_id, "oauth/register", outcome, status);
        event.latency = started.elapsed();
        event.client_id = client_id;
        event.error_code = error_code.map(str::to_owned);
        event.source_addr = req
            .remote_addr()
            .as_socket_addr()
            .map(|a| a.ip().to_string());
        self.audit.record(event).await;
    }
}

#[OpenApi]
impl RegistrationApi {
    /// Registers an OAuth client (RFC 7591 dynamic registration) with searchgate's identity
    /// provider, the embedded authorization server, or the operator's pre-registered client.
    /// Redirect URIs must be https, or http on a loopback host (RFC 8252); no fragments.
    #[oai(
        path = "/oauth/register",
        method = "post",
        operation_id = "register_client"
    )]
    async fn register(&self, req: &Request, body: Json<serde_json::Value>) -> RegistrationResponse {
        let started = Instant::now();
        let Some(registrar) = &self.registrar else {
            return RegistrationResponse::NotFound(answer(
                "not_found",
                "client registration is off on this server (registration.mode = off)",
            ));
        };
        if let Some(ip) = req.remote_addr().as_socket_addr().map(|a| a.ip())
            && let Err(wait) = self.limiter.check(&ip)
        {
            let wait = wait.as_secs().max(1);
            self.audit(
                req,
                started,
                429,
                Outcome::Rejected,
                None,
                Some("rate_limited"),
            )
            .await;
            return RegistrationResponse::TooMany(
                answer(
                    "rate_limited",
                    format!("too many registrations from this address; retry in {wait} s"),
                ),
                wait,
            );
        }
        let request: RegistrationRequest = match serde_json::from_value(body.0) {
            Ok(request) => request,
            Err(error) => {
                self.audit(
                    req,
                    started,
                    400,
                    Outcome::Rejected,
                    None,
                    Some("invalid_client_metadata"),
                )
                .await;
                return RegistrationResponse::BadRequest(answer(
                    "invalid_client_metadata",
                    format!("the client metadata cannot be read: {error}"),
                ));
            }
        };
        match registrar.register(request).await {
            Ok(client) => {
                self.audit(
                    req,
                    started,
                    201,
                    Outcome::Success,
                    Some(client.client_id.clone()),
                    None,
                )
                .await;
                let metadata = &client.metadata;
                let has_code = metadata
                    .grant_types
                    .iter()
                    .any(|g| g == "authorization_code");
                let issued_at = client
                    .created_at
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                let mut document = serde_json::json!({
                    "client_id": client.client_id,
                    "client_id_issued_at": issued_at,
                    "redirect_uris": metadata.redirect_uris,
                    "grant_types": metadata.grant_types,
                    "response_types": if has_code { vec!["code"] } else { vec![] },
                    "token_endpoint_auth_method": metadata.token_endpoint_auth_method,
                });
                if let Some(name) = &metadata.client_name {
                    document["client_name"] = name.clone().into();
                }
                if let Some(secret) = client.client_secret {
                    document["client_secret"] = secret.into();
                    document["client_secret_expires_at"] = 0.into();
                }
                RegistrationResponse::Created(Json(document), "no-store".to_owned())
            }
            Err(ClientError::Rejected { code, description }) => {
                self.audit(req, started, 400, Outcome::Rejected, None, Some(code))
                    .await;
                RegistrationResponse::BadRequest(answer(code, description))
            }
            Err(error) => {
                tracing::warn!(error = %error, "a registration could not be completed");
                self.audit(
                    req,
                    started,
                    503,
                    Outcome::Failed,
                    None,
                    Some("registry_unavailable"),
                )
                .await;
                RegistrationResponse::Unavailable(
                    answer(
                        "temporarily_unavailable",
                        "the client registry cannot be reached; retry shortly",
                    ),
                    5,
                )
            }
        }
    }
}
