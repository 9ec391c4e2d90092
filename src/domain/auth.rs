//! Authentication and authorization: bearer tokens, the principal a verified token stands for,
//! scope sets, and the `AuthorizationServer` port that verifies tokens.

use std::{collections::BTreeSet, fmt, time::Duration};

use async_trait::async_trait;

/// The identity provider behind searchgate (Scalekit, an OIDC provider, the embedded one, or a
/// library user's own).
///
/// Contract:
/// - `verify` MUST check the token's signature (or ask the issuer), issuer, audience and expiry,
///   and return [`AuthError::InvalidToken`] when any check fails: never a principal for a token it
///   could not verify (fail closed).
/// - It MUST return [`AuthError::Unavailable`] when it cannot decide because the IdP is
///   unreachable and nothing usable is cached; callers answer 503, not 401.
/// - It SHOULD answer from cache on the hot path; network I/O belongs to cache refreshes.
#[cfg_attr(test, mockall::automock)]
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
}

/// Why a request could not be authenticated.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The `Authorization` header is not one well-formed bearer token (RFC 6750 `invalid_request`).
    #[error("malformed authorization: {reason}")]
    MalformedRequest {
        /// What is wrong with the header.
        reason: &'static str,
    },
    /// The token is expired, badly signed, for another audience or issuer, or unknown.
    #[error("invalid token: {reason}")]
    InvalidToken {
        /// Why, in words safe to show to the client (no token material).
        reason: String,
    },
    /// The IdP cannot be reached and nothing usable is cached.
    #[error("the identity provider is unavailable")]
    Unavailable {
        /// When to try again, when known.
        retry_after: Option<Duration>,
    },
    /// Anything else; logged in full, answered as unavailable.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
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
    /// [`AuthError::MalformedRequest`] when it is empty, over 8 KiB or has characters a bearer
    /// token cannot have.
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
        let valid = !body.is_empty()
            && body
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b));
        if !valid {
            return Err(AuthError::MalformedRequest {
                reason: "the bearer token has characters RFC 6750 does not allow",
            });
        }
        Ok(Self(raw.to_owned()))
    }

    /// The token text, for verifiers only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

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

    /// The scopes of `required` that this set lacks, in order.
    pub fn missing<'a>(&self, required: &'a [String]) -> Vec<&'a str> {
        required
            .iter()
            .filter(|s| !self.contains(s))
            .map(String::as_str)
            .collect()
    }

    /// The scopes, sorted.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
}

impl FromIterator<String> for ScopeSet {
    fn from_iter<I: IntoIterator<Item = String>>(iter: I) -> Self {
        Self(iter.into_iter().collect())
    }
}

/// Who a verified token stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The `sub` claim.
    pub subject: String,
    /// The OAuth client the token was issued to, when the token says.
    pub client_id: Option<String>,
    /// The token's issuer.
    pub issuer: String,
    /// The scopes the token grants.
    pub scopes: ScopeSet,
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
        for (raw, reason) in [
            ("", "empty"),
            ("has space", "whitespace"),
            ("====", "padding only"),
            ("tok\"en", "quote"),
        ] {
            assert!(BearerToken::parse(raw).is_err(), "{reason} must be refused");
        }
        assert!(
            BearerToken::parse(&"a".repeat(8 * 1024)).is_ok(),
            "8 KiB is the limit"
        );
        assert!(
            BearerToken::parse(&"a".repeat(8 * 1024 + 1)).is_err(),
            "over 8 KiB is refused"
        );
    }

    #[test]
    fn scope_sets_report_what_is_missing_in_order() {
        let granted = ScopeSet::from_space_separated("openid  web-search:read\tprofile");
        let required = vec![
            "web-search:read".to_owned(),
            "admin".to_owned(),
            "audit".to_owned(),
        ];
        assert_eq!(granted.missing(&required), ["admin", "audit"]);
        assert!(granted.contains("profile"));
        assert_eq!(
            granted.iter().count(),
            3,
            "runs of whitespace separate scopes"
        );
    }
}
