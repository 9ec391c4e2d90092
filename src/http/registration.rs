//! `POST /oauth/register` (RFC 7591): client registration through searchgate, whatever the
//! registry behind it, rate limited per source address and audited.

use std::{net::IpAddr, num::NonZeroU32, sync::Arc, time::Instant};

use poem::{FromRequest, Request, RequestBody};
use poem_openapi::{
    ApiExtractor, ApiExtractorType, ApiResponse, ExtractParamOptions, Object, OpenApi,
    payload::{Json, Payload},
    registry::{MetaMediaType, MetaRequest, Registry},
    types::Type,
};

use super::{
    error::{ApiError, Reply},
    request_id::action_event,
};
use crate::domain::{
    audit::{AuditSink, Outcome},
    clients::{RegisteredClient, Registrar, RegistrationRequest},
    rate_limit::KeyedLimiter,
};

/// The audit trail's name for a registration.
const ACTION: &str = "oauth/register";

/// A registered client (RFC 7591 §3.2.1).
#[derive(ApiResponse)]
pub enum Registered {
    /// Registered: the client's id and, for confidential clients, its secret (shown once).
    #[oai(status = 201)]
    Created(
        Json<serde_json::Value>,
        #[oai(header = "Cache-Control")] String,
    ),
}

// The OpenAPI document's description of the body; it is read as a `MetadataBody` and checked
// by the registrar.
/// Client metadata (RFC 7591 §2). Other members are ignored.
#[derive(Object)]
#[oai(rename = "ClientMetadata", example)]
struct ClientMetadataSchema {
    /// Where authorization responses may be sent (at most 20): https, or http on a loopback
    /// host (RFC 8252); no fragments. Needed for the `authorization_code` grant.
    redirect_uris: Option<Vec<String>>,
    /// A name to show people (at most 200 characters).
    client_name: Option<String>,
    /// `authorization_code` (the default), `refresh_token`, `client_credentials`.
    grant_types: Option<Vec<String>>,
    /// `code`, for the `authorization_code` grant.
    response_types: Option<Vec<String>>,
    /// `none` (a public client), `client_secret_basic` (the default) or `client_secret_post`.
    token_endpoint_auth_method: Option<String>,
}

impl poem_openapi::types::Example for ClientMetadataSchema {
    fn example() -> Self {
        Self {
            redirect_uris: Some(vec!["http://127.0.0.1:33418/callback".to_owned()]),
            client_name: Some("My MCP client".to_owned()),
            grant_types: Some(vec![
                "authorization_code".to_owned(),
                "refresh_token".to_owned(),
            ]),
            response_types: Some(vec!["code".to_owned()]),
            token_endpoint_auth_method: Some("none".to_owned()),
        }
    }
}

/// The request body as sent: a JSON object, or why it is not one. poem-openapi's `Json` would
/// refuse a malformed body or another `Content-Type` itself, with a `text/plain` 400, before the
/// operation runs (so neither counted nor audited); RFC 7591 §3.2.2 answers every unreadable
/// registration with `invalid_client_metadata`. The body is bounded before it gets here
/// (`RegistrationLimit`).
pub struct MetadataBody(Result<serde_json::Value, &'static str>);

impl MetadataBody {
    /// The JSON object sent, or why the body is not client metadata.
    fn read(content_type: Option<&str>, bytes: &[u8]) -> Self {
        let json = content_type.is_some_and(Json::<serde_json::Value>::check_content_type);
        Self(if !json {
            Err("send the client metadata as application/json")
        } else {
            match serde_json::from_slice::<serde_json::Value>(bytes) {
                Ok(value) if value.is_object() => Ok(value),
                Ok(_) => Err("the client metadata must be a JSON object"),
                Err(_) => Err("the client metadata is not valid JSON"),
            }
        })
    }
}

// Documented as a JSON body of client metadata.
impl<'a> ApiExtractor<'a> for MetadataBody {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::RequestObject];

    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        <Json<ClientMetadataSchema> as Payload>::register(registry);
    }

    fn request_meta() -> Option<MetaRequest> {
        Some(MetaRequest {
            description: None,
            content: vec![MetaMediaType {
                content_type: <Json<ClientMetadataSchema> as Payload>::CONTENT_TYPE,
                schema: ClientMetadataSchema::schema_ref(),
            }],
            required: true,
        })
    }

    async fn from_request(
        request: &'a Request,
        body: &mut RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        let bytes = <Vec<u8> as FromRequest>::from_request(request, body).await?;
        Ok(Self::read(request.content_type(), &bytes))
    }
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

    /// Checks the rate limit and the metadata, then registers through `registrar`.
    async fn admit_and_register(
        &self,
        registrar: &Registrar,
        req: &Request,
        body: MetadataBody,
    ) -> Result<RegisteredClient, ApiError> {
        if let Some(ip) = super::ClientAddr::of(req).map(|a| a.client)
            && let Err(wait) = self.limiter.check(&ip)
        {
            let wait = wait.as_secs().max(1);
            return Err(ApiError::rate_limited(
                format!("too many registrations from this address; retry in {wait} s"),
                wait,
            ));
        }
        // Counted above, refused here: an unreadable body costs a sender as much as any other.
        let body = body
            .0
            .map_err(|why| ApiError::bad_request("invalid_client_metadata", why))?;
        let request: RegistrationRequest = serde_json::from_value(body).map_err(|error| {
            ApiError::bad_request(
                "invalid_client_metadata",
                format!("the client metadata cannot be read: {error}"),
            )
        })?;
        Ok(registrar.register(request).await?)
    }
}

/// The RFC 7591 §3.2.1 document for `client`.
fn client_document(client: RegisteredClient) -> serde_json::Value {
    let metadata = &client.metadata;
    let has_code = metadata
        .grant_types
        .iter()
        .any(|g| g == "authorization_code");
    let issued_at = client.created_at.unix_seconds();
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
    document
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
    async fn register(
        &self,
        req: &Request,
        body: MetadataBody,
    ) -> Reply<Registered, 400, 404, 429, 503> {
        let started = Instant::now();
        let Some(registrar) = &self.registrar else {
            return Reply::Err(ApiError::not_found(
                "client registration is off on this server (registration.mode = off)",
            ));
        };
        let answer = self.admit_and_register(registrar, req, body).await;
        let mut event = match &answer {
            Ok(client) => {
                let mut event = action_event(req, ACTION, Outcome::Success, 201);
                event.client_id = Some(client.client_id.clone());
                event
            }
            Err(error) => {
                let failed = error.status() >= 500;
                let outcome = if failed {
                    Outcome::Failed
                } else {
                    Outcome::Rejected
                };
                let mut event = action_event(req, ACTION, outcome, error.status());
                // The row says which part failed; the client is told only to retry.
                let code = if failed {
                    "registry_unavailable"
                } else {
                    error.code()
                };
                event.error_code = Some(code.to_owned());
                event
            }
        };
        event.latency = started.elapsed();
        self.audit.record(event).await;
        answer
            .map(|client| Registered::Created(Json(client_document(client)), "no-store".to_owned()))
            .into()
    }
}
