//! The errors of the JSON API (discovery, registration, admin) and their one body shape,
//! `{"error": "snake_case_code", "error_description": "…"}` (RFC 6749 §5.2, RFC 7591 §3.2.2).
//! Domain errors become an [`ApiError`] through `From`; a failure of ours (5xx) is logged with
//! its whole chain, inside the request's span (so with its request id), and answered with a
//! generic description: no store or driver text ever reaches a client.

use std::error::Error as StdError;

use poem::{IntoResponse, Response, http::StatusCode};
use poem_openapi::{
    ApiResponse, Object,
    payload::Json,
    registry::{MetaResponses, Registry},
};
use serde::Serialize;

use crate::domain::{audit::AuditError, auth::AuthError, clients::ClientError};

/// Every JSON error answer: a code a program can test and a sentence for a person.
#[derive(Debug, Clone, PartialEq, Eq, Object, Serialize)]
pub struct ErrorBody {
    /// A snake_case code (`invalid_request`, `invalid_token`, `not_found`, …).
    pub error: String,
    /// What happened, for a person.
    pub error_description: String,
}

impl ErrorBody {
    /// A body with `code` and `description`.
    pub fn new(code: &str, description: impl Into<String>) -> Self {
        Self {
            error: code.to_owned(),
            error_description: description.into(),
        }
    }

    /// This body as a `status` answer, for the plain poem endpoints and middleware that cannot
    /// return an [`ApiError`] (the bearer guard, the registration size limit).
    pub fn response(&self, status: StatusCode) -> Response {
        Response::builder()
            .status(status)
            .content_type("application/json")
            .body(serde_json::to_string(self).unwrap_or_default())
    }
}

/// Seconds a client waits before retrying a 503 when nothing better is known.
const DEFAULT_RETRY_SECS: u64 = 5;

/// An error answer of the JSON API; the `Err` of every operation, so each status appears in the
/// OpenAPI document with the one [`ErrorBody`] schema.
#[derive(Debug, ApiResponse)]
pub enum ApiError {
    /// The request cannot be served as sent (`invalid_request`, `invalid_client_metadata`,
    /// `invalid_redirect_uri`).
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>),
    /// No such resource, or the feature is off on this server (`not_found`).
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
    /// Too many requests from this address (`rate_limited`); retry after the given seconds.
    #[oai(status = 429)]
    TooManyRequests(Json<ErrorBody>, #[oai(header = "Retry-After")] u64),
    /// An upstream (the authorization server) answered with something unusable.
    #[oai(status = 502)]
    BadGateway(Json<ErrorBody>),
    /// A store or upstream cannot be used now; retry (after `Retry-After` when given).
    #[oai(status = 503)]
    Unavailable(Json<ErrorBody>, #[oai(header = "Retry-After")] Option<u64>),
}

impl ApiError {
    /// A 400 with `code`.
    pub fn bad_request(code: &str, description: impl Into<String>) -> Self {
        Self::BadRequest(Json(ErrorBody::new(code, description)))
    }

    /// A 404 `not_found`.
    pub fn not_found(description: impl Into<String>) -> Self {
        Self::NotFound(Json(ErrorBody::new("not_found", description)))
    }

    /// A 429 `rate_limited`, to retry after `retry_after` seconds.
    pub fn rate_limited(description: impl Into<String>, retry_after: u64) -> Self {
        Self::TooManyRequests(
            Json(ErrorBody::new("rate_limited", description)),
            retry_after,
        )
    }

    /// A 503 that is no failure of ours (a part this server does not have), so nothing is
    /// logged.
    pub fn unavailable(code: &str, description: impl Into<String>) -> Self {
        Self::Unavailable(Json(ErrorBody::new(code, description)), None)
    }

    /// A 503 for a failure of ours: `cause` is logged with its whole chain, the client gets
    /// only `description` (what cannot be used, in general words).
    pub fn failed(
        code: &str,
        description: &str,
        retry_after: Option<u64>,
        cause: &(dyn StdError + 'static),
    ) -> Self {
        tracing::error!(error = %chain(cause), "{description}");
        Self::Unavailable(Json(ErrorBody::new(code, description)), retry_after)
    }

    /// The HTTP status, for the audit row.
    pub fn status(&self) -> u16 {
        match self {
            Self::BadRequest(_) => 400,
            Self::NotFound(_) => 404,
            Self::TooManyRequests(..) => 429,
            Self::BadGateway(_) => 502,
            Self::Unavailable(..) => 503,
        }
    }

    /// The body's `error` code, for the audit row.
    pub fn code(&self) -> &str {
        match self {
            Self::BadRequest(body)
            | Self::NotFound(body)
            | Self::TooManyRequests(body, _)
            | Self::BadGateway(body)
            | Self::Unavailable(body, _) => &body.error,
        }
    }
}

/// What an operation of the JSON API answers: `T`, an [`ApiError`] whose status is one of
/// `A`..`D` (0: none), or a refusal made before the operation ran (the admin API's bearer
/// challenges, which `openapi::finish` documents). The statuses are what the OpenAPI document
/// lists for the operation: poem-openapi would otherwise list every status of `ApiError` on
/// every operation.
pub enum Reply<T, const A: u16, const B: u16 = 0, const C: u16 = 0, const D: u16 = 0> {
    /// The operation's answer.
    Ok(T),
    /// Its error.
    Err(ApiError),
    /// Refused before it ran.
    Refused(poem::Error),
}

impl<T, const A: u16, const B: u16, const C: u16, const D: u16> From<Result<T, ApiError>>
    for Reply<T, A, B, C, D>
{
    fn from(result: Result<T, ApiError>) -> Self {
        match result {
            Ok(answer) => Self::Ok(answer),
            Err(error) => Self::Err(error),
        }
    }
}

impl<T: IntoResponse, const A: u16, const B: u16, const C: u16, const D: u16> IntoResponse
    for Reply<T, A, B, C, D>
{
    fn into_response(self) -> Response {
        match self {
            Self::Ok(answer) => answer.into_response(),
            Self::Err(error) => error.into_response(),
            Self::Refused(refusal) => refusal.into_response(),
        }
    }
}

impl<T: ApiResponse, const A: u16, const B: u16, const C: u16, const D: u16> ApiResponse
    for Reply<T, A, B, C, D>
{
    fn meta() -> MetaResponses {
        let mut meta = T::meta();
        meta.responses.extend(
            ApiError::meta()
                .responses
                .into_iter()
                .filter(|r| r.status.is_some_and(|s| [A, B, C, D].contains(&s))),
        );
        meta
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
        ApiError::register(registry);
    }
}

/// The audit trail cannot be read: the admin API's 503.
impl From<AuditError> for ApiError {
    fn from(error: AuditError) -> Self {
        let description =
            "the audit trail cannot be read now (the database is unavailable); try again";
        match &error {
            AuditError::Unavailable(_) | AuditError::Refused(_) | AuditError::Unexpected(_) => {
                Self::failed("unavailable", description, None, &error)
            }
        }
    }
}

/// Registration: the registry's refusals are the client's to read (RFC 7591 §3.2.2); a
/// registry that cannot be reached is a 503 to retry.
impl From<ClientError> for ApiError {
    fn from(error: ClientError) -> Self {
        match error {
            ClientError::Rejected { code, description } => Self::bad_request(code, description),
            ClientError::Unavailable | ClientError::Unexpected(_) => Self::failed(
                "temporarily_unavailable",
                "the client registry cannot be reached; retry shortly",
                Some(DEFAULT_RETRY_SECS),
                &error,
            ),
        }
    }
}

/// The authorization server's metadata, forwarded by the discovery endpoints.
impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        match error {
            AuthError::Unavailable {
                ref detail,
                retry_after,
            } => {
                tracing::warn!(detail = %detail, "cannot fetch the authorization server's metadata");
                Self::Unavailable(
                    Json(ErrorBody::new(
                        "temporarily_unavailable",
                        "the authorization server cannot be reached; retry shortly",
                    )),
                    Some(retry_after.map_or(DEFAULT_RETRY_SECS, |d| d.as_secs().max(1))),
                )
            }
            // The metadata adapter's contract: `Unexpected` is a document naming another issuer
            // (MCP 2026-07-28), and saying which is what lets the operator fix it; both
            // issuers are public.
            AuthError::Unexpected(_)
            | AuthError::InvalidToken { .. }
            | AuthError::MalformedRequest { .. } => {
                tracing::error!(error = %chain(&error), "the authorization server's metadata is unusable");
                Self::BadGateway(Json(ErrorBody::new("bad_gateway", error.to_string())))
            }
        }
    }
}

/// `error: cause: cause…` on one line, the way `{:#}` shows an `anyhow::Error`.
fn chain(error: &(dyn StdError + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_failures_answer_a_generic_503_without_the_driver_text() {
        for error in [
            ApiError::from(AuditError::Unavailable(
                "error returned from database: no such table: audit_events".into(),
            )),
            ApiError::from(AuditError::Unexpected(anyhow::anyhow!(
                "pool timed out while waiting for an open connection"
            ))),
        ] {
            let ApiError::Unavailable(Json(body), _) = &error else {
                panic!("a store failure is a 503: {error:?}");
            };
            assert_eq!(body.error, "unavailable");
            assert!(
                !body.error_description.contains("table")
                    && !body.error_description.contains("pool"),
                "no driver text in {body:?}"
            );
        }
    }

    #[test]
    fn registry_refusals_reach_the_client_and_outages_do_not() {
        let refused = ApiError::from(ClientError::Rejected {
            code: "invalid_redirect_uri",
            description: "use https".into(),
        });
        assert_eq!(
            (refused.status(), refused.code()),
            (400, "invalid_redirect_uri")
        );
        let down = ApiError::from(ClientError::Unexpected(anyhow::anyhow!("connection reset")));
        let ApiError::Unavailable(Json(body), Some(5)) = &down else {
            panic!("an outage is a 503 with Retry-After: {down:?}");
        };
        assert!(!body.error_description.contains("reset"), "{body:?}");
    }

    #[test]
    fn a_chain_names_every_cause() {
        let error = anyhow::anyhow!("disk full").context("cannot write the audit batch");
        let error: &(dyn StdError + 'static) = error.as_ref();
        assert_eq!(chain(error), "cannot write the audit batch: disk full");
    }
}
