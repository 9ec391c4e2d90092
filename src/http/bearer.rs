//! The bearer guard: exactly one `Authorization: Bearer` token, verified through the
//! `AuthorizationServer` port, or an RFC 6750 challenge. Active when an authorization server is
//! configured; the verified `Principal` travels on in the request's extensions.

use std::{sync::Arc, time::Duration};

use poem::{
    Endpoint, IntoResponse, Middleware, Request, Response, Result,
    http::{HeaderMap, StatusCode, header},
};

use crate::{
    domain::auth::{AuthError, AuthorizationServer, BearerToken},
    mcp::CallRecord,
};

/// Middleware verifying bearer tokens.
pub struct BearerGuard(pub Arc<dyn AuthorizationServer>);

impl<E: Endpoint> Middleware<E> for BearerGuard {
    type Output = BearerGuardEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        BearerGuardEndpoint {
            auth: self.0.clone(),
            inner,
        }
    }
}

/// See [`BearerGuard`].
pub struct BearerGuardEndpoint<E> {
    auth: Arc<dyn AuthorizationServer>,
    inner: E,
}

impl<E: Endpoint> Endpoint for BearerGuardEndpoint<E> {
    type Output = Response;

    async fn call(&self, mut req: Request) -> Result<Self::Output> {
        let token = match extract(req.headers(), req.uri().query()) {
            Ok(Some(token)) => token,
            // RFC 6750 §3.1: no credentials, no error code.
            Ok(None) => {
                return Ok(challenge(
                    StatusCode::UNAUTHORIZED,
                    None,
                    "a bearer token is required",
                ));
            }
            Err(error) => return Ok(rejection(&error)),
        };
        let principal = match self.auth.verify(&token).await {
            Ok(principal) => principal,
            Err(error) => return Ok(rejection(&error)),
        };
        if let Some(record) = req.extensions().get::<CallRecord>() {
            record.update(|info| info.principal = Some(principal.clone()));
        }
        req.extensions_mut().insert(principal);
        self.inner.call(req).await.map(IntoResponse::into_response)
    }
}

/// The token of a request, `None` when it carries no credentials at all.
fn extract(headers: &HeaderMap, query: Option<&str>) -> Result<Option<BearerToken>, AuthError> {
    // MCP authorization: tokens MUST NOT travel in the query string.
    if query.is_some_and(|q| {
        q.split('&')
            .any(|pair| pair.split('=').next() == Some("access_token"))
    }) {
        return Err(AuthError::MalformedRequest {
            reason: "access tokens must be sent in the Authorization header, not the query string",
        });
    }
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(AuthError::MalformedRequest {
            reason: "send exactly one Authorization header",
        });
    }
    let value = value.to_str().map_err(|_| AuthError::MalformedRequest {
        reason: "the Authorization header is not ASCII",
    })?;
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    // RFC 9110 §11.1: the scheme is case-insensitive.
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(AuthError::MalformedRequest {
            reason: "use the Bearer authorization scheme",
        });
    }
    BearerToken::parse(token.trim_start_matches(' ')).map(Some)
}

fn rejection(error: &AuthError) -> Response {
    match error {
        AuthError::MalformedRequest { reason } => {
            challenge(StatusCode::BAD_REQUEST, Some("invalid_request"), reason)
        }
        AuthError::InvalidToken { reason } => {
            challenge(StatusCode::UNAUTHORIZED, Some("invalid_token"), reason)
        }
        AuthError::Unavailable { retry_after } => unavailable(*retry_after),
        AuthError::Unexpected(inner) => {
            tracing::error!(error = ?inner, "token verification failed unexpectedly");
            unavailable(None)
        }
    }
}

/// An RFC 6750 §3 challenge with an OAuth-shaped JSON body.
fn challenge(status: StatusCode, code: Option<&str>, description: &str) -> Response {
    let description = description.replace(['"', '\\'], "'");
    let header = match code {
        Some(code) => format!("Bearer error=\"{code}\", error_description=\"{description}\""),
        None => "Bearer".to_owned(),
    };
    let body = serde_json::json!({ "error": code.unwrap_or("unauthorized"), "error_description": description });
    Response::builder()
        .status(status)
        .header(header::WWW_AUTHENTICATE, header)
        .content_type("application/json")
        .body(body.to_string())
}

fn unavailable(retry_after: Option<Duration>) -> Response {
    let secs = retry_after.map_or(5, |d| d.as_secs().max(1));
    let body = serde_json::json!({
        "error": "temporarily_unavailable",
        "error_description": "the identity provider cannot be reached; retry shortly",
    });
    Response::builder()
        .status(StatusCode::SERVICE_UNAVAILABLE)
        .header(header::RETRY_AFTER, secs.to_string())
        .content_type("application/json")
        .body(body.to_string())
}

#[cfg(test)]
mod tests {
    use poem::http::HeaderValue;

    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for v in values {
            map.append(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        }
        map
    }

    #[test]
    fn exactly_one_bearer_header_is_accepted_case_insensitively() {
        let token = extract(&headers(&["bEaReR abc.def"]), None)
            .unwrap()
            .unwrap();
        assert_eq!(token.expose(), "abc.def");
        assert!(
            extract(&headers(&[]), None).unwrap().is_none(),
            "no header, no credentials"
        );
        for (values, query, why) in [
            (vec!["Bearer a", "Bearer b"], None, "two headers"),
            (vec!["Basic dXNlcjpwYXNz"], None, "another scheme"),
            (vec!["Bearer"], None, "no token"),
            (vec![], Some("x=1&access_token=abc"), "token in the query"),
        ] {
            let err = extract(&headers(&values), query).expect_err(why);
            assert!(matches!(err, AuthError::MalformedRequest { .. }), "{why}");
        }
    }

    #[test]
    fn challenges_follow_rfc_6750() {
        let missing = challenge(StatusCode::UNAUTHORIZED, None, "x");
        assert_eq!(
            missing.headers()[header::WWW_AUTHENTICATE],
            "Bearer",
            "no error code without credentials"
        );
        let invalid = rejection(&AuthError::InvalidToken {
            reason: "token \"expired\"".into(),
        });
        assert_eq!(invalid.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            invalid.headers()[header::WWW_AUTHENTICATE],
            "Bearer error=\"invalid_token\", error_description=\"token 'expired'\"",
            "quotes cannot break the header"
        );
        let down = rejection(&AuthError::Unavailable {
            retry_after: Some(Duration::from_secs(7)),
        });
        assert_eq!(down.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(down.headers()[header::RETRY_AFTER], "7");
    }
}
