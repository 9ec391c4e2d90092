//! Authentication and authorization: bearer tokens, the principal a verified token stands for,
//! the token and scope policies, the verified-token cache, and the `AuthorizationServer` port.

mod cache;
mod policy;
mod scopes;

use std::{collections::BTreeSet, fmt, sync::Arc, time::Duration, time::SystemTime};

use async_trait::async_trait;
use sha2::{Digest, Sha256};

pub use cache::{CacheCounters, CachingAuthorizationServer};
pub use policy::{Claims, TokenPolicy, canonical};
pub use scopes::ScopePolicy;

/// The identity provider behind searchgate (Scalekit, an OIDC provider, the embedded one, or a
/// library user's own).
///
/// Contract:
/// - `verify` MUST check the token's signature (or ask the issuer), issuer, audience and expiry,
///   and return [`AuthError::InvalidToken`] when any check fails: never a principal for a token it
///   could not verify (fail closed). Core applies [`TokenPolicy`] for JWTs; adapters only decode.
/// - It MUST return [`AuthError::Unavailable`] when it cannot decide because the IdP is
///   unreachable and nothing usable is cached; callers answer 503, not 401.
/// - It SHOULD answer from cache on the hot path; network I/O belongs to cache refreshes.
/// - `metadata` returns the authorization server's metadata document as published (for clients
///   of MCP 2025-03-26, which look for it on searchgate's origin), or `None` when there is none.
#[async_trait]
pub trait AuthorizationServer: Send + Sync + 'static {
    /// Issuer identifiers to advertise as `authorization_servers` in the protected-resource
    /// metadata (RFC 9728).
    fn authorization_servers(&self) -> Vec<String>;

    /// Verifies an access token and returns who it was issued to.
    ///
    /// # Errors
    /// [`AuthError::InvalidToken`] for a token that fails any check; [`AuthError::Unavailable`]
    /// when the IdP cannot be consulted.
    async fn verify(&self, token: &BearerToken) -> Result<Principal, AuthError>;

    /// The authorization server metadata document (RFC 8414 / OpenID Connect Discovery).
    ///
    /// # Errors
    /// [`AuthError::Unavailable`] when it cannot be fetched and none is cached.
    async fn metadata(&self) -> Result<Option<ServerMetadata>, AuthError> {
        Ok(None)
    }

    /// Checks the IdP from end to end (discovery, keys) for `searchgate check-config`.
    async fn probe(&self) -> Vec<ProbeFinding> {
        vec![ProbeFinding::ok(
            "authorization server",
            "supplied by the program; nothing to probe",
        )]
    }
}

#[cfg(test)]
mockall::mock! {
    /// A programmable `AuthorizationServer` for unit tests.
    pub AuthPort {}

    #[async_trait]
    impl AuthorizationServer for AuthPort {
        fn authorization_servers(&self) -> Vec<String>;
        async fn verify(&self, token: &BearerToken) -> Result<Principal, AuthError>;
    }
}

/// An authorization server's metadata document, forwarded as published.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerMetadata(pub Arc<serde_json::Value>);

/// One line of an IdP probe: what was checked and what was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeFinding {
    /// What was checked (`discovery`, `jwks`, …).
    pub check: String,
    /// `Ok(what was found)` or `Err(what is wrong and how to fix it)`.
    pub result: Result<String, String>,
}

impl ProbeFinding {
    /// A check that passed.
    pub fn ok(check: &str, found: impl Into<String>) -> Self {
        Self {
            check: check.to_owned(),
            result: Ok(found.into()),
        }
    }

    /// A check that failed.
    pub fn failed(check: &str, problem: impl Into<String>) -> Self {
        Self {
            check: check.to_owned(),
            result: Err(problem.into()),
        }
    }
}

/// Why a token was not accepted; the code is audited and the message sent as
/// `error_description`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// Not a JWT, or claims that cannot be read.
    Malformed,
    /// `none`, HS*, or an algorithm the key does not allow.
    DisallowedAlgorithm,
    /// No published key has the token's `kid`.
    UnknownKey,
    /// The signature does not verify.
    BadSignature,
    /// `exp` is in the past.
    Expired,
    /// `nbf` or `iat` is in the future.
    NotYetValid,
    /// `iss` is not an accepted issuer.
    WrongIssuer,
    /// `aud` names none of the accepted audiences.
    WrongAudience,
    /// A required claim (`exp`, `sub`) is missing.
    MissingClaim,
    /// The issuer says the token is not active (introspection).
    Inactive,
    /// Refused by a program's own authorization server.
    Refused,
    /// A client policy is in force and the token names no client (`client_id`, `azp`, `cid`
    /// or `appid`), so the policy cannot judge it.
    NoClient,
}

impl Rejection {
    /// The audit reason code.
    pub fn code(self) -> &'static str {
        match self {
            Self::Malformed => "malformed_token",
            Self::DisallowedAlgorithm => "disallowed_algorithm",
            Self::UnknownKey => "unknown_kid",
            Self::BadSignature => "bad_signature",
            Self::Expired => "token_expired",
            Self::NotYetValid => "token_not_yet_valid",
            Self::WrongIssuer => "wrong_issuer",
            Self::WrongAudience => "wrong_audience",
            Self::MissingClaim => "missing_claim",
            Self::Inactive => "token_inactive",
            Self::Refused => "token_refused",
            Self::NoClient => "no_client",
        }
    }
}

/// Why a request could not be authenticated.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The request is malformed (RFC 6750 `invalid_request`): two `Authorization` headers, a
    /// token in the query string, or an empty or over-8-KiB credential.
    #[error("malformed authorization: {reason}")]
    MalformedRequest {
        /// What is wrong with the header.
        reason: &'static str,
    },
    /// The token is expired, badly signed, for another audience or issuer, or unknown.
    #[error("invalid token: {detail}")]
    InvalidToken {
        /// The kind of failure, for audit rows.
        rejection: Rejection,
        /// Why, in words safe to show to the client (no token material).
        detail: String,
    },
    /// The IdP cannot be reached and nothing usable is cached.
    #[error("the identity provider is unavailable: {detail}")]
    Unavailable {
        /// What failed, for logs.
        detail: String,
        /// When to try again, when known.
        retry_after: Option<Duration>,
    },
    /// Anything else; logged in full, answered as unavailable.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl AuthError {
    /// An invalid-token error.
    pub fn invalid(rejection: Rejection, detail: impl Into<String>) -> Self {
        Self::InvalidToken {
            rejection,
            detail: detail.into(),
        }
    }

    /// An unavailable-IdP error.
    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::Unavailable {
            detail: detail.into(),
            retry_after: None,
        }
    }

    /// The audit reason code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::MalformedRequest { .. } => "malformed_authorization",
            Self::InvalidToken { rejection, .. } => rejection.code(),
            Self::Unavailable { .. } | Self::Unexpected(_) => "idp_unavailable",
        }
    }

    /// A copy, for errors shared between coalesced callers.
    fn duplicate(&self) -> Self {
        match self {
            Self::MalformedRequest { reason } => Self::MalformedRequest { reason },
            Self::InvalidToken { rejection, detail } => Self::invalid(*rejection, detail.clone()),
            Self::Unavailable {
                detail,
                retry_after,
            } => Self::Unavailable {
                detail: detail.clone(),
                retry_after: *retry_after,
            },
            Self::Unexpected(error) => Self::Unexpected(anyhow::anyhow!("{error:#}")),
        }
    }
}

/// An access token as presented by a client. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct BearerToken(String);

impl BearerToken {
    /// Tokens longer than this are refused before any parsing (8 KiB).
    pub const MAX_BYTES: usize = 8 * 1024;

    /// Checks that `raw` looks like an RFC 6750 `b64token` of a sane size.
    ///
    /// # Errors
    /// [`AuthError::MalformedRequest`] when it is empty or over 8 KiB (a malformed request);
    /// [`AuthError::InvalidToken`] (`Malformed`) when it has characters a bearer token cannot
    /// have: a corrupted token is an invalid token, and MCP clients re-authenticate only on 401.
    pub fn parse(raw: &str) -> Result<Self, AuthError> {
        if raw.is_empty() {
            return Err(AuthError::MalformedRequest {
                reason: "the bearer token is empty",
            });
        }
        if raw.len() > Self::MAX_BYTES {
            return Err(AuthError::MalformedRequest {
                reason: "the bearer token is over 8 KiB",
            });
        }
        // RFC 6750 §2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
        let body = raw.trim_end_matches('=');
        let valid = !body.is_empty() && body.bytes().all(|b| B64TOKEN[usize::from(b)]);
        if !valid {
            return Err(AuthError::invalid(
                Rejection::Malformed,
                "the bearer token is not a valid token: it has characters RFC 6750 does not allow",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    /// The token text, for verifiers only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// SHA-256 of the token: the key of caches and, abbreviated, of audit rows (never the
    /// token itself).
    pub fn fingerprint(&self) -> [u8; 32] {
        Sha256::digest(self.0.as_bytes()).into()
    }
}

/// The bytes of RFC 6750's b64token before its `=` padding, as a table: every request's token
/// is checked byte by byte.
const B64TOKEN: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] =
            c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~' | b'+' | b'/');
        b += 1;
    }
    table
};

impl fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BearerToken(<redacted>)")
    }
}

/// A set of OAuth scopes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScopeSet(BTreeSet<String>);

impl ScopeSet {
    /// Parses a space-separated `scope` string (RFC 6749 §3.3).
    pub fn from_space_separated(scopes: &str) -> Self {
        scopes.split_ascii_whitespace().map(str::to_owned).collect()
    }

    /// Whether the set holds `scope`.
    pub fn contains(&self, scope: &str) -> bool {
        self.0.contains(scope)
    }

    /// Adds a scope.
    pub fn insert(&mut self, scope: String) -> bool {
        self.0.insert(scope)
    }

    /// The scopes, sorted.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromIterator<String> for ScopeSet {
    fn from_iter<I: IntoIterator<Item = String>>(iter: I) -> Self {
        Self(iter.into_iter().collect())
    }
}

impl Extend<String> for ScopeSet {
    fn extend<I: IntoIterator<Item = String>>(&mut self, iter: I) {
        self.0.extend(iter);
    }
}

/// Who a verified token stands for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Principal {
    /// The `sub` claim (or the client id for tokens without one).
    pub subject: String,
    /// The OAuth client the token was issued to, when the token says.
    pub client_id: Option<String>,
    /// The token's issuer.
    pub issuer: String,
    /// The scopes the token grants.
    pub scopes: ScopeSet,
    /// When the token expires, when known.
    pub expires_at: Option<SystemTime>,
    /// The first hex digits of the token's SHA-256, for audit rows; set by core.
    pub token_hash_prefix: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens_are_bounded_and_never_printed() {
        let token = BearerToken::parse("abc.DEF-ghi_~+/==").expect("a b64token");
        assert_eq!(
            format!("{token:?}"),
            "BearerToken(<redacted>)",
            "Debug must not leak the token"
        );
        assert!(
            matches!(
                BearerToken::parse(""),
                Err(AuthError::MalformedRequest { .. })
            ),
            "an empty credential is a malformed request"
        );
        for (raw, reason) in [
            ("has space", "whitespace"),
            ("====", "padding only"),
            ("tok\"en", "quote"),
            ("not-a-token.%%%", "percent signs"),
        ] {
            assert!(
                matches!(
                    BearerToken::parse(raw),
                    Err(AuthError::InvalidToken {
                        rejection: Rejection::Malformed,
                        ..
                    })
                ),
                "{reason}: an invalid token (401), not a malformed request"
            );
        }
        assert!(
            BearerToken::parse(&"a".repeat(8 * 1024)).is_ok(),
            "8 KiB is the limit"
        );
        assert!(
            matches!(
                BearerToken::parse(&"a".repeat(8 * 1024 + 1)),
                Err(AuthError::MalformedRequest { .. })
            ),
            "over 8 KiB is a malformed request"
        );
    }

    #[test]
    fn fingerprints_are_sha256_of_the_token() {
        let token = BearerToken::parse("abc").unwrap();
        let hex: String = token
            .fingerprint()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            hex,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn every_rejection_has_its_own_code() {
        let all = [
            Rejection::Malformed,
            Rejection::DisallowedAlgorithm,
            Rejection::UnknownKey,
            Rejection::BadSignature,
            Rejection::Expired,
            Rejection::NotYetValid,
            Rejection::WrongIssuer,
            Rejection::WrongAudience,
            Rejection::MissingClaim,
            Rejection::Inactive,
            Rejection::Refused,
            Rejection::NoClient,
        ];
        let codes: BTreeSet<_> = all.iter().map(|r| r.code()).collect();
        assert_eq!(codes.len(), all.len());
    }

    /// Properties over generated credentials.
    mod properties {
        use proptest::prelude::*;

        use super::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            /// Any text is a token, a malformed request (empty, over 8 KiB) or an invalid token
            /// (RFC 6750 §2.1 characters only), never anything else, and a token is kept as sent.
            #[test]
            fn a_bearer_credential_is_a_token_a_malformed_request_or_an_invalid_token(
                raw in prop_oneof![
                    "[A-Za-z0-9._~+/-]{0,40}={0,3}",
                    "\\PC{0,40}",
                    (BearerToken::MAX_BYTES - 1..BearerToken::MAX_BYTES + 2)
                        .prop_map(|n| "a".repeat(n)),
                ]
            ) {
                let b64token = {
                    let body = raw.trim_end_matches('=');
                    !body.is_empty()
                        && body.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b))
                };
                let bounded = !raw.is_empty() && raw.len() <= BearerToken::MAX_BYTES;
                match BearerToken::parse(&raw) {
                    Ok(token) => {
                        prop_assert!(b64token && bounded);
                        prop_assert_eq!(token.expose(), raw.as_str());
                    }
                    Err(AuthError::MalformedRequest { .. }) => prop_assert!(!bounded),
                    Err(AuthError::InvalidToken { rejection: Rejection::Malformed, .. }) => {
                        prop_assert!(!b64token && bounded);
                    }
                    Err(other) => prop_assert!(false, "undocumented: {:?}", other),
                }
            }
        }
    }
}
