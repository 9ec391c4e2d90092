//! Authorization on the MCP endpoint, in the order of the MCP checklist §2.9 (after the
//! transport's Host/Origin check): no token → 401 with `resource_metadata` and `scope` (no error
//! code), and the same for another scheme (RFC 6750 §3.1); a malformed request (two
//! `Authorization` headers, a token in the query, an empty or over-8-KiB credential) → 400
//! `invalid_request`; any other Bearer credential that is not a valid token → 401
//! `invalid_token`; an unreachable IdP → 503 with `Retry-After`; then, once the body names the
//! tool, a missing scope → 403 `insufficient_scope` listing every scope the tool needs.

use std::{sync::Arc, time::Duration};

use poem::{
    Endpoint, IntoResponse, Middleware, Request, Response, Result,
    http::{HeaderMap, HeaderValue, StatusCode, header},
};

use super::{Layered, error::ErrorBody};
use crate::{
    domain::{
        auth::{AuthError, AuthorizationServer, BearerToken, Principal, Rejection, ScopePolicy},
        clients::{ClientActivity, ClientPolicy, ClientVerdict},
    },
    mcp::CallRecord,
};

/// The client checks after a token verifies: the client policy (deny lists, clients denied
/// through the admin API) and the last-seen tracker.
#[derive(Clone)]
pub struct ClientGate {
    /// Which clients may use searchgate.
    pub policy: ClientPolicy,
    /// Notes each client whose token is used.
    pub activity: ClientActivity,
}

/// What every challenge names: where the protected-resource metadata is and which scopes to ask
/// for (MCP authorization: RFC 9728 §5.1 and RFC 6750 §3).
#[derive(Debug, Clone)]
pub struct Challenge {
    /// The path-suffixed protected-resource metadata URL.
    pub resource_metadata: String,
    /// The minimal scopes, space-separated (empty when none are needed).
    pub scope: String,
}

impl Challenge {
    /// The `WWW-Authenticate` value for an error code (none for a missing token).
    pub fn www_authenticate(&self, error: Option<(&str, &str)>, scope: &str) -> String {
        let mut parts = Vec::new();
        if let Some((code, description)) = error {
            parts.push(format!("error=\"{code}\""));
            parts.push(format!("error_description=\"{}\"", quoted(description)));
        }
        parts.push(format!(
            "resource_metadata=\"{}\"",
            quoted(&self.resource_metadata)
        ));
        if !scope.is_empty() {
            parts.push(format!("scope=\"{}\"", quoted(scope)));
        }
        format!("Bearer {}", parts.join(", "))
    }

    pub(crate) fn response(
        &self,
        status: StatusCode,
        error: Option<(&str, &str)>,
        scope: &str,
    ) -> Response {
        let (code, description) = error.unwrap_or(("unauthorized", "a bearer token is required"));
        let mut response = ErrorBody::new(code, description).response(status);
        if let Ok(value) = HeaderValue::try_from(self.www_authenticate(error, scope)) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, value);
        }
        response
    }
}

/// Quoted-string content: no quotes or backslashes, no control characters.
fn quoted(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c == '"' || c == '\\' || c.is_control() {
                '\''
            } else {
                c
            }
        })
        .collect()
}

/// Middleware verifying bearer tokens.
#[derive(Clone)]
pub struct BearerGuard {
    /// The verifier (with core's token cache in front).
    pub auth: Arc<dyn AuthorizationServer>,
    /// The challenge parameters.
    pub challenge: Arc<Challenge>,
    /// The client checks, when there are any.
    pub clients: Option<ClientGate>,
}

impl<E: Endpoint> Middleware<E> for BearerGuard {
    type Output = Layered<Self, E>;

    fn transform(&self, inner: E) -> Self::Output {
        Layered::new(self.clone(), inner)
    }
}

impl<E: Endpoint> Endpoint for Layered<BearerGuard, E> {
    type Output = Response;

    async fn call(&self, req: Request) -> Result<Self::Output> {
        let record = req.extensions().get::<CallRecord>().cloned();
        let outcome = match extract(req.headers(), req.uri().query()) {
            Ok(Some(token)) => self.layer.auth.verify(&token).await.map(Some),
            Ok(None) => Ok(None),
            Err(error) => Err(error),
        };
        let principal = match outcome {
            Ok(Some(principal)) => principal,
            Ok(None) => {
                note_failure(record.as_ref(), "missing_token");
                return Ok(self.layer.challenge.response(
                    StatusCode::UNAUTHORIZED,
                    None,
                    &self.layer.challenge.scope,
                ));
            }
            Err(error) => {
                note_failure(record.as_ref(), error.code());
                return Ok(self.rejection(&error));
            }
        };
        if let Some(gate) = &self.layer.clients {
            match gate.policy.judge(principal.client_id.as_deref()) {
                ClientVerdict::Allowed => {
                    if let Some(client_id) = &principal.client_id {
                        gate.activity.seen(client_id);
                    }
                }
                ClientVerdict::Denied => {
                    tracing::warn!(client_id = ?principal.client_id, "refused a token of a denied client");
                    note_principal(record.as_ref(), principal);
                    note_failure(record.as_ref(), "client_denied");
                    return Ok(self.layer.challenge.response(
                        StatusCode::FORBIDDEN,
                        Some((
                            "access_denied",
                            "this client is not allowed to use this server; ask its operator",
                        )),
                        &self.layer.challenge.scope,
                    ));
                }
                ClientVerdict::Unnamed => {
                    let error = no_client();
                    note_principal(record.as_ref(), principal);
                    note_failure(record.as_ref(), error.code());
                    return Ok(self.rejection(&error));
                }
            }
        }
        // The record carries the principal on to the scope check, the tool and the audit row;
        // without one (never, inside the audited pipeline) nothing past here is allowed a tool.
        note_principal(record.as_ref(), principal);
        self.inner.call(req).await.map(IntoResponse::into_response)
    }
}

impl<E> Layered<BearerGuard, E> {
    fn rejection(&self, error: &AuthError) -> Response {
        rejection(&self.layer.challenge, error)
    }
}

/// Verifies the request's bearer token for a handler outside the MCP pipeline (the admin
/// API): the principal, or the challenge response to send.
///
/// # Errors
/// The 400/401/503 response of the MCP endpoint's guard.
pub async fn authenticate(
    auth: &dyn AuthorizationServer,
    challenge: &Challenge,
    headers: &HeaderMap,
    query: Option<&str>,
) -> std::result::Result<Principal, Response> {
    match extract(headers, query) {
        Ok(Some(token)) => auth
            .verify(&token)
            .await
            .map_err(|e| rejection(challenge, &e)),
        Ok(None) => Err(challenge.response(StatusCode::UNAUTHORIZED, None, &challenge.scope)),
        Err(error) => Err(rejection(challenge, &error)),
    }
}

/// The refusal of a token that names no client while a client policy is in force: the
/// policy cannot judge it, so it is not a usable token here (401 `invalid_token`).
pub fn no_client() -> AuthError {
    AuthError::invalid(Rejection::NoClient, "the token names no client")
}

/// Answers `error` as the MCP endpoint's guard does (400, 401 or 503, with the challenge).
pub fn refusal(challenge: &Challenge, error: &AuthError) -> Response {
    rejection(challenge, error)
}

/// A 403 `insufficient_scope` naming `scope`.
pub fn insufficient_scope(challenge: &Challenge, scope: &str, description: &str) -> Response {
    challenge.response(
        StatusCode::FORBIDDEN,
        Some(("insufficient_scope", description)),
        scope,
    )
}

fn rejection(challenge: &Challenge, error: &AuthError) -> Response {
    {
        match error {
            AuthError::MalformedRequest { reason } => challenge.response(
                StatusCode::BAD_REQUEST,
                Some(("invalid_request", reason)),
                &challenge.scope,
            ),
            AuthError::InvalidToken { detail, .. } => challenge.response(
                StatusCode::UNAUTHORIZED,
                Some(("invalid_token", detail)),
                &challenge.scope,
            ),
            AuthError::Unavailable {
                detail,
                retry_after,
            } => {
                tracing::warn!(detail = %detail, "cannot verify a token: the identity provider is unavailable");
                unavailable(*retry_after)
            }
            AuthError::Unexpected(inner) => {
                tracing::error!(error = ?inner, "token verification failed unexpectedly");
                unavailable(None)
            }
        }
    }
}

/// Hands the verified principal to the request's record.
fn note_principal(record: Option<&CallRecord>, principal: Principal) {
    if let Some(record) = record {
        record.update(|info| info.principal = Some(principal));
    }
}

fn note_failure(record: Option<&CallRecord>, code: &'static str) {
    if let Some(record) = record {
        record.update(|info| info.auth_failure = Some(code));
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
    // Split on bytes, not `to_str`: a credential with non-ASCII bytes is still one Bearer
    // credential, and so an invalid token (401), not a malformed request.
    let value = value.as_bytes();
    let split = value.iter().position(|&b| b == b' ');
    let (scheme, credential) =
        split.map_or((value, &[][..]), |at| (&value[..at], &value[at + 1..]));
    // RFC 9110 §11.1: the scheme is case-insensitive. RFC 6750 §3.1: a request that uses
    // another authentication method carries no bearer credentials: challenged like no header,
    // with no error code.
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return Ok(None);
    }
    let credential = trim_spaces(credential);
    match std::str::from_utf8(credential) {
        Ok(token) => BearerToken::parse(token).map(Some),
        // Bounds first, so that an over-8-KiB credential is a malformed request whatever its
        // bytes.
        Err(_) if credential.len() > BearerToken::MAX_BYTES => Err(AuthError::MalformedRequest {
            reason: "the bearer token is over 8 KiB",
        }),
        Err(_) => Err(AuthError::invalid(
            Rejection::Malformed,
            "the bearer token is not a valid token: it has characters RFC 6750 does not allow",
        )),
    }
}

/// `bytes` without leading or trailing spaces.
fn trim_spaces(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|&b| b != b' ').unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|&b| b != b' ')
        .map_or(start, |i| i + 1);
    &bytes[start..end.max(start)]
}

fn unavailable(retry_after: Option<Duration>) -> Response {
    let secs = retry_after.map_or(5, |d| d.as_secs().max(1));
    let mut response = ErrorBody::new(
        "temporarily_unavailable",
        "the identity provider cannot be reached to verify the token; retry shortly",
    )
    .response(StatusCode::SERVICE_UNAVAILABLE);
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, secs.into());
    response
}

/// Middleware checking a `tools/call`'s scopes against the tool's requirements (after the body
/// has been read, so the tool is known).
#[derive(Clone)]
pub struct ScopeGuard {
    /// Tool → scopes, and implications.
    pub policy: Arc<ScopePolicy>,
    /// The challenge parameters.
    pub challenge: Arc<Challenge>,
}

impl<E: Endpoint> Middleware<E> for ScopeGuard {
    type Output = Layered<Self, E>;

    fn transform(&self, inner: E) -> Self::Output {
        Layered::new(self.clone(), inner)
    }
}

impl<E: Endpoint> Endpoint for Layered<ScopeGuard, E> {
    type Output = Response;

    async fn call(&self, req: Request) -> Result<Self::Output> {
        let record = req.extensions().get::<CallRecord>().cloned();
        // The tool called, when it is one the principal's scopes do not open.
        let refused = record.as_ref().and_then(|r| {
            r.read(|info| {
                let tool = info
                    .tool
                    .as_deref()
                    .filter(|_| info.method.as_deref() == Some("tools/call"))?;
                let required = self.layer.policy.required_for_tool(tool);
                let granted = info.principal.as_ref().map(|p| &p.scopes);
                let allowed =
                    granted.is_some_and(|scopes| self.layer.policy.satisfies(scopes, required));
                (!allowed).then(|| (tool.to_owned(), required))
            })
        });
        if let Some((tool, required)) = refused {
            note_failure(record.as_ref(), "insufficient_scope");
            // One challenge with every scope the operation needs (MCP 2026-07-28 §Scope).
            let scope = required.join(" ");
            let description = format!("calling {tool} needs the scope {scope}");
            return Ok(self.layer.challenge.response(
                StatusCode::FORBIDDEN,
                Some(("insufficient_scope", &description)),
                &scope,
            ));
        }
        self.inner.call(req).await.map(IntoResponse::into_response)
    }
}

#[cfg(test)]
mod tests {
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
        for values in [
            vec!["Basic dXNlcjpwYXNz"],
            vec!["Digest x"],
            vec!["Bearerish"],
        ] {
            assert!(
                extract(&headers(&values), None).unwrap().is_none(),
                "another scheme is no credentials (RFC 6750 §3.1): {values:?}"
            );
        }
        let long = format!("Bearer {}", "a".repeat(BearerToken::MAX_BYTES + 1));
        for (values, query, why) in [
            (vec!["Bearer a", "Bearer b"], None, "two headers"),
            (vec!["Bearer"], None, "no token"),
            (vec!["Bearer   "], None, "only spaces"),
            (vec![long.as_str()], None, "over 8 KiB"),
            (vec![], Some("x=1&access_token=abc"), "token in the query"),
        ] {
            let err = extract(&headers(&values), query).expect_err(why);
            assert!(matches!(err, AuthError::MalformedRequest { .. }), "{why}");
        }
        let mut non_ascii = HeaderMap::new();
        non_ascii.append(
            header::AUTHORIZATION,
            HeaderValue::from_bytes(b"Bearer abc\xff").unwrap(),
        );
        for (map, why) in [
            (headers(&["Bearer not-a-token.%%%"]), "bad characters"),
            (non_ascii, "non-ASCII bytes"),
        ] {
            let err = extract(&map, None).expect_err(why);
            assert!(
                matches!(
                    err,
                    AuthError::InvalidToken {
                        rejection: Rejection::Malformed,
                        ..
                    }
                ),
                "{why}: one Bearer credential that is not a token is an invalid token"
            );
        }
    }

    #[test]
    fn challenges_carry_resource_metadata_and_scope() {
        let challenge = Challenge {
            resource_metadata: "https://s.example/.well-known/oauth-protected-resource/mcp".into(),
            scope: "web-search:read".into(),
        };
        assert_eq!(
            challenge.www_authenticate(None, &challenge.scope),
            "Bearer resource_metadata=\"https://s.example/.well-known/oauth-protected-resource/mcp\", scope=\"web-search:read\"",
            "no error code without credentials (RFC 6750 §3.1)"
        );
        assert_eq!(
            challenge.www_authenticate(Some(("invalid_token", "token \"expired\"")), ""),
            "Bearer error=\"invalid_token\", error_description=\"token 'expired'\", resource_metadata=\"https://s.example/.well-known/oauth-protected-resource/mcp\"",
            "quotes cannot break the header; no scope parameter when none is needed"
        );
    }

    /// Properties over generated `Authorization` headers and query strings: `extract` never
    /// panics and gives exactly the documented answer, and every refusal is a 400 or 401
    /// challenge.
    mod properties {
        use proptest::{collection, prelude::*};

        use super::*;

        /// What the module doc promises for these headers and this query.
        #[derive(Debug, PartialEq)]
        enum Answer {
            NoCredentials,
            Token(String),
            MalformedRequest,
            InvalidToken,
        }

        fn promised(values: &[Vec<u8>], query: Option<&str>) -> Answer {
            if query.is_some_and(|q| {
                q.split('&')
                    .any(|p| p.split('=').next() == Some("access_token"))
            }) {
                return Answer::MalformedRequest;
            }
            let value = match values {
                [] => return Answer::NoCredentials,
                [value] => value,
                _ => return Answer::MalformedRequest,
            };
            let (scheme, credential) = match value.iter().position(|&b| b == b' ') {
                Some(at) => (&value[..at], &value[at + 1..]),
                None => (&value[..], &[][..]),
            };
            if !scheme.eq_ignore_ascii_case(b"bearer") {
                return Answer::NoCredentials;
            }
            let credential = trim_spaces(credential);
            if credential.is_empty() || credential.len() > BearerToken::MAX_BYTES {
                return Answer::MalformedRequest;
            }
            // RFC 6750 §2.1 b64token.
            let body_end = credential
                .iter()
                .rposition(|&b| b != b'=')
                .map_or(0, |i| i + 1);
            let b64token = body_end > 0
                && credential[..body_end]
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(b));
            if b64token {
                Answer::Token(String::from_utf8(credential.to_vec()).unwrap())
            } else {
                Answer::InvalidToken
            }
        }

        /// The bytes a header value may hold (RFC 9110 §5.5: visible, space, tab, obs-text).
        fn header_byte() -> impl Strategy<Value = u8> {
            prop_oneof![
                4 => prop::sample::select(
                    b"abcXYZ019-._~+/= %\"\\,;:".to_vec()
                ),
                1 => 0x20u8..0x7f,
                1 => 0x80u8..=0xff,
                1 => Just(b'\t'),
            ]
        }

        fn header_value() -> impl Strategy<Value = Vec<u8>> {
            let scheme = prop::sample::select(vec![
                "Bearer", "bearer", "BEARER", "Bearerx", "Basic", "Digest", "", "Bearer ",
            ]);
            let credential = prop_oneof![
                "[A-Za-z0-9._~+/-]{1,40}={0,2}".prop_map(String::into_bytes),
                collection::vec(header_byte(), 0..48),
                (BearerToken::MAX_BYTES - 2..BearerToken::MAX_BYTES + 3)
                    .prop_map(|n| "a".repeat(n).into_bytes()),
            ];
            (scheme, 0..3usize, credential, 0..3usize).prop_map(
                |(scheme, before, credential, after)| {
                    let mut value = scheme.as_bytes().to_vec();
                    value.extend(std::iter::repeat_n(b' ', before));
                    value.extend(credential);
                    value.extend(std::iter::repeat_n(b' ', after));
                    value
                },
            )
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            #[test]
            fn every_authorization_header_gets_the_documented_answer(
                values in collection::vec(header_value(), 0..3),
                query in prop::option::of(prop_oneof![
                    Just("access_token=abc".to_owned()),
                    Just("x=1&access_token".to_owned()),
                    "[a-z_=&]{0,24}",
                ]),
            ) {
                // A header value cannot start or end with whitespace on the wire.
                let values: Vec<Vec<u8>> = values
                    .into_iter()
                    .map(|v| v.trim_ascii().to_vec())
                    .collect();
                let mut headers = HeaderMap::new();
                for value in &values {
                    headers.append(header::AUTHORIZATION, HeaderValue::from_bytes(value).unwrap());
                }
                let extracted = extract(&headers, query.as_deref());
                let answer = match &extracted {
                    Ok(None) => Answer::NoCredentials,
                    Ok(Some(token)) => Answer::Token(token.expose().to_owned()),
                    Err(AuthError::MalformedRequest { .. }) => Answer::MalformedRequest,
                    Err(AuthError::InvalidToken { rejection: Rejection::Malformed, .. }) => {
                        Answer::InvalidToken
                    }
                    Err(other) => return Err(TestCaseError::fail(format!("undocumented: {other:?}"))),
                };
                prop_assert_eq!(&answer, &promised(&values, query.as_deref()));

                let challenge = Challenge {
                    resource_metadata: "https://s.example/.well-known/oauth-protected-resource/mcp".into(),
                    scope: "web-search:read".into(),
                };
                if let Err(error) = &extracted {
                    let response = rejection(&challenge, error);
                    let status = response.status().as_u16();
                    prop_assert!(
                        (status, &answer) == (400, &Answer::MalformedRequest)
                            || (status, &answer) == (401, &Answer::InvalidToken),
                        "{} for {:?}", status, answer
                    );
                    prop_assert!(response.headers().contains_key(header::WWW_AUTHENTICATE));
                }
            }
        }
    }
}
