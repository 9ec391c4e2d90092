//! JWT access tokens (RFC 9068): the header is read, the algorithm checked against the allow-list,
//! the signature verified with the issuer's published key, and the claims handed to the core
//! `TokenPolicy`.

use std::time::SystemTime;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, Validation, errors::ErrorKind};
use serde::Deserialize;

use super::jwks::JwksCache;
use crate::domain::auth::{AuthError, BearerToken, Claims, Principal, Rejection, TokenPolicy};

/// The only algorithms accepted: asymmetric signatures. `none` and HS* never verify here, so a
/// public key cannot be turned into an HMAC secret.
const ALLOWED: [(&str, Algorithm); 9] = [
    ("RS256", Algorithm::RS256),
    ("RS384", Algorithm::RS384),
    ("RS512", Algorithm::RS512),
    ("PS256", Algorithm::PS256),
    ("PS384", Algorithm::PS384),
    ("PS512", Algorithm::PS512),
    ("ES256", Algorithm::ES256),
    ("ES384", Algorithm::ES384),
    ("EdDSA", Algorithm::EdDSA),
];

/// Verifies JWT access tokens of one issuer.
#[derive(Debug, Clone)]
pub struct JwtVerifier {
    keys: JwksCache,
    policy: TokenPolicy,
    strict_typ: bool,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    kid: Option<String>,
    typ: Option<String>,
}

impl JwtVerifier {
    /// Verifies signatures with `keys` and claims with `policy`.
    pub fn new(keys: JwksCache, policy: TokenPolicy) -> Self {
        Self {
            keys,
            policy,
            strict_typ: false,
        }
    }

    /// Requires `typ: at+jwt` (RFC 9068 §4, strictly). Off by default because many IdPs
    /// (Scalekit, Entra, Keycloak) type their access tokens plain `JWT`.
    pub fn with_strict_typ(mut self, strict: bool) -> Self {
        self.strict_typ = strict;
        self
    }

    /// The signing keys, for probes.
    pub fn keys(&self) -> &JwksCache {
        &self.keys
    }

    /// Verifies `token` and returns its principal.
    ///
    /// # Errors
    /// [`AuthError::InvalidToken`] for anything wrong with the token, [`AuthError::Unavailable`]
    /// when the keys cannot be fetched.
    pub async fn verify(&self, token: &BearerToken) -> Result<Principal, AuthError> {
        let text = token.expose();
        let header = read_header(text)?;
        let algorithm = ALLOWED
            .iter()
            .find(|(name, _)| *name == header.alg)
            .map(|(_, alg)| *alg)
            .ok_or_else(|| {
                let shown: String = header.alg.chars().take(16).collect();
                AuthError::invalid(
                    Rejection::DisallowedAlgorithm,
                    format!("tokens signed with {shown} are not accepted"),
                )
            })?;
        if !typ_acceptable(header.typ.as_deref(), self.strict_typ) {
            return Err(AuthError::invalid(
                Rejection::Malformed,
                "the token is not an access token (typ)",
            ));
        }
        let key = self.keys.key_for(header.kid.as_deref()).await?;
        if key.alg.is_some_and(|alg| alg != algorithm) {
            return Err(AuthError::invalid(
                Rejection::DisallowedAlgorithm,
                "the token's algorithm is not the key's",
            ));
        }
        let claims = jsonwebtoken::decode::<Claims>(text, &key.key, &signature_only(algorithm))
            .map_err(|error| match error.kind() {
                ErrorKind::InvalidSignature => {
                    AuthError::invalid(Rejection::BadSignature, "the signature does not verify")
                }
                ErrorKind::InvalidAlgorithm
                | ErrorKind::InvalidAlgorithmName
                | ErrorKind::UnsupportedAlgorithm => AuthError::invalid(
                    Rejection::DisallowedAlgorithm,
                    "the token's algorithm does not fit the key",
                ),
                ErrorKind::InvalidEcdsaKey
                | ErrorKind::InvalidEddsaKey
                | ErrorKind::InvalidRsaKey(_)
                | ErrorKind::InvalidKeyFormat => AuthError::invalid(
                    Rejection::BadSignature,
                    "the issuer's key cannot verify this token",
                ),
                _ => AuthError::invalid(Rejection::Malformed, "the token's claims cannot be read"),
            })?
            .claims;
        self.policy.check(claims, SystemTime::now())
    }
}

/// RFC 9068 access tokens say `at+jwt`; a plain `JWT` (or none) is accepted unless strict. Any
/// other type (a logout token, a DPoP proof, a security event) is never an access token.
fn typ_acceptable(typ: Option<&str>, strict: bool) -> bool {
    let typ = typ.map(|t| {
        t.strip_prefix("application/")
            .unwrap_or(t)
            .to_ascii_lowercase()
    });
    match typ.as_deref() {
        Some("at+jwt") => true,
        Some("jwt") | None => !strict,
        Some(_) => false,
    }
}

/// The header, read by hand so an unknown `alg` (such as `none`) is reported as such.
fn read_header(token: &str) -> Result<Header, AuthError> {
    let malformed = || AuthError::invalid(Rejection::Malformed, "the token is not a JWT");
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed());
    };
    let bytes = URL_SAFE_NO_PAD.decode(header).map_err(|_| malformed())?;
    serde_json::from_slice(&bytes).map_err(|_| malformed())
}

/// Signature checks only; every claim rule is the core policy's.
fn signature_only(algorithm: Algorithm) -> Validation {
    let mut validation = Validation::new(algorithm);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    validation
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_access_token_types_pass() {
        for (typ, strict, ok) in [
            (Some("at+jwt"), true, true),
            (Some("application/at+JWT"), true, true),
            (Some("JWT"), false, true),
            (None, false, true),
            (Some("JWT"), true, false),
            (None, true, false),
            (Some("logout+jwt"), false, false),
            (Some("dpop+jwt"), false, false),
        ] {
            assert_eq!(typ_acceptable(typ, strict), ok, "{typ:?} strict={strict}");
        }
    }

    #[test]
    fn headers_are_read_strictly() {
        let header = |json: &str| format!("{}.e30.sig", URL_SAFE_NO_PAD.encode(json));
        assert_eq!(
            read_header(&header(r#"{"alg":"none"}"#)).unwrap().alg,
            "none"
        );
        assert_eq!(
            read_header(&header(r#"{"alg":"RS256","kid":"k1"}"#))
                .unwrap()
                .kid
                .as_deref(),
            Some("k1")
        );
        for bad in ["a.b", "a.b.c.d", "!!!.e30.sig", &header("[]")] {
            assert!(read_header(bad).is_err(), "{bad}");
        }
    }
}
