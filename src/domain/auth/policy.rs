//! The core token policy (RFC 9068 / RFC 7662 claims): issuer, audience, expiry, not-before,
//! subject and scopes. Adapters decode and verify signatures; this decides, once, for all of them.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer};

use super::{AuthError, Principal, Rejection, ScopeSet};

/// The claims searchgate reads from a JWT access token or an introspection response.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub struct Claims {
    /// Issuer.
    pub iss: Option<String>,
    /// Subject.
    pub sub: Option<String>,
    /// Audience: one string or a list.
    #[serde(default, deserialize_with = "one_or_many")]
    pub aud: Vec<String>,
    /// Expiry (seconds since the epoch).
    pub exp: Option<f64>,
    /// Not before.
    pub nbf: Option<f64>,
    /// Issued at.
    pub iat: Option<f64>,
    /// The client the token was issued to (RFC 9068).
    pub client_id: Option<String>,
    /// Authorized party, the client id in some IdPs' tokens.
    pub azp: Option<String>,
    /// The client id in Okta's tokens.
    pub cid: Option<String>,
    /// The client id in Entra v1 tokens.
    pub appid: Option<String>,
    /// Scopes as a space-separated string (or, in some IdPs, a list).
    #[serde(default, deserialize_with = "scope_claim")]
    pub scope: Vec<String>,
    /// Scopes as a list (Scalekit).
    #[serde(default, deserialize_with = "scope_claim")]
    pub scopes: Vec<String>,
    /// Scopes as `scp` (Entra, Okta): a string or a list.
    #[serde(default, deserialize_with = "scope_claim")]
    pub scp: Vec<String>,
    /// Introspection's verdict (RFC 7662); absent in JWTs.
    pub active: Option<bool>,
}

fn one_or_many<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Option::<OneOrMany>::deserialize(deserializer)? {
        None => Vec::new(),
        Some(OneOrMany::One(one)) => vec![one],
        Some(OneOrMany::Many(many)) => many,
    })
}

fn scope_claim<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    Ok(one_or_many(deserializer)?
        .iter()
        .flat_map(|s| s.split_ascii_whitespace())
        .map(str::to_owned)
        .collect())
}

/// What a token must say to be accepted.
#[derive(Debug, Clone)]
pub struct TokenPolicy {
    issuers: Vec<String>,
    audiences: Vec<String>,
    leeway: Duration,
    require_exp: bool,
    require_active: bool,
    implicit_issuer: Option<String>,
}

impl TokenPolicy {
    /// Accepts tokens from one of `issuers` for one of `audiences`, with `leeway` of clock skew.
    /// Values are compared after normalizing URLs (lowercase scheme and host, no trailing `/`).
    pub fn new(issuers: &[String], audiences: &[String], leeway: Duration) -> Self {
        Self {
            issuers: issuers.iter().map(|i| canonical(i)).collect(),
            audiences: audiences.iter().map(|a| canonical(a)).collect(),
            leeway,
            require_exp: true,
            require_active: false,
            implicit_issuer: None,
        }
    }

    /// For introspection responses, which may omit `exp` and `iss` (RFC 7662 §2.2): a missing
    /// `iss` is taken to be `issuer`, the server that was asked; `active: true` is required.
    pub fn for_introspection(mut self, issuer: &str) -> Self {
        self.require_exp = false;
        self.require_active = true;
        self.implicit_issuer = Some(issuer.to_owned());
        self
    }

    /// The accepted issuers, normalized.
    pub fn issuers(&self) -> &[String] {
        &self.issuers
    }

    /// Checks `claims` at time `now` and returns the principal they describe.
    ///
    /// # Errors
    /// [`AuthError::InvalidToken`] naming the first rule broken.
    pub fn check(&self, claims: Claims, now: SystemTime) -> Result<Principal, AuthError> {
        // RFC 7662 §2.2: `active` is REQUIRED in an introspection answer; only `true` admits.
        if claims.active == Some(false) || (self.require_active && claims.active != Some(true)) {
            return Err(AuthError::invalid(
                Rejection::Inactive,
                "the token is not active",
            ));
        }
        let issuer = claims
            .iss
            .clone()
            .or_else(|| self.implicit_issuer.clone())
            .ok_or_else(|| {
                AuthError::invalid(Rejection::MissingClaim, "the token has no issuer (iss)")
            })?;
        if !self.issuers.contains(&canonical(&issuer)) {
            return Err(AuthError::invalid(
                Rejection::WrongIssuer,
                "the token's issuer is not accepted here",
            ));
        }
        if !claims
            .aud
            .iter()
            .any(|aud| self.audiences.contains(&canonical(aud)))
        {
            return Err(AuthError::invalid(
                Rejection::WrongAudience,
                "the token was not issued for this resource (aud)",
            ));
        }
        let now = seconds(now);
        let leeway = self.leeway.as_secs_f64();
        let expires_at = match claims.exp {
            Some(exp) if exp + leeway <= now => {
                return Err(AuthError::invalid(
                    Rejection::Expired,
                    "the token has expired",
                ));
            }
            Some(exp) => Some(exp),
            None if self.require_exp => {
                return Err(AuthError::invalid(
                    Rejection::MissingClaim,
                    "the token has no expiry (exp)",
                ));
            }
            None => None,
        };
        if claims.nbf.is_some_and(|nbf| nbf - leeway > now) {
            return Err(AuthError::invalid(
                Rejection::NotYetValid,
                "the token is not valid yet (nbf)",
            ));
        }
        if claims.iat.is_some_and(|iat| iat - leeway > now) {
            return Err(AuthError::invalid(
                Rejection::NotYetValid,
                "the token was issued in the future (iat)",
            ));
        }
        // RFC 9068 names it `client_id`; OIDC-style IdPs say `azp`, Okta `cid`, Entra v1
        // `appid`. The first one present names the client the client policy judges.
        let client_id = claims
            .client_id
            .or(claims.azp)
            .or(claims.cid)
            .or(claims.appid);
        // Client-credentials tokens may have no `sub`; the client is then the subject.
        let subject = claims.sub.or_else(|| client_id.clone()).ok_or_else(|| {
            AuthError::invalid(Rejection::MissingClaim, "the token has no subject (sub)")
        })?;
        let mut scopes = ScopeSet::default();
        scopes.extend(claims.scope);
        scopes.extend(claims.scopes);
        scopes.extend(claims.scp);
        Ok(Principal {
            subject,
            client_id,
            issuer,
            scopes,
            expires_at: match expires_at {
                // Numeric dates beyond any real expiry would overflow SystemTime.
                Some(exp) => Some(
                    Duration::try_from_secs_f64(exp.max(0.0))
                        .ok()
                        .and_then(|since| UNIX_EPOCH.checked_add(since))
                        .ok_or_else(|| {
                            AuthError::invalid(
                                Rejection::Malformed,
                                "the token's exp is not a usable date",
                            )
                        })?,
                ),
                None => None,
            },
            token_hash_prefix: String::new(),
        })
    }
}

fn seconds(time: SystemTime) -> f64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The form issuers and audiences are compared in: exactly as written, except that a URL's
/// scheme and host are case-insensitive (MCP: canonical server URI) and one trailing slash is
/// ignored. Nothing else is resolved (dot segments, default ports, backslashes), so look-alike
/// identifiers stay different.
pub fn canonical(value: &str) -> String {
    let value = value.strip_suffix('/').unwrap_or(value);
    match value.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            format!(
                "{}://{}{path}",
                scheme.to_ascii_lowercase(),
                authority.to_ascii_lowercase()
            )
        }
        None => value.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const NOW: u64 = 1_800_000_000;

    fn policy() -> TokenPolicy {
        TokenPolicy::new(
            &[
                "https://idp.example.com".into(),
                "https://idp.example.com/resources/res_1".into(),
            ],
            &["https://search.example.com/mcp".into(), "res_1".into()],
            Duration::from_secs(60),
        )
    }

    fn claims(value: serde_json::Value) -> Claims {
        serde_json::from_value(value).expect("claims")
    }

    fn base() -> serde_json::Value {
        json!({
            "iss": "https://idp.example.com", "sub": "usr_1", "aud": "https://search.example.com/mcp",
            "exp": NOW + 600, "iat": NOW - 10, "client_id": "cli_1", "scope": "openid web-search:read"
        })
    }

    fn check(value: serde_json::Value) -> Result<Principal, AuthError> {
        policy().check(claims(value), UNIX_EPOCH + Duration::from_secs(NOW))
    }

    fn rejection(value: serde_json::Value) -> Option<Rejection> {
        match check(value) {
            Err(AuthError::InvalidToken { rejection, .. }) => Some(rejection),
            _ => None,
        }
    }

    fn with(key: &str, value: serde_json::Value) -> serde_json::Value {
        let mut claims = base();
        claims[key] = value;
        claims
    }

    fn without(key: &str) -> serde_json::Value {
        let mut claims = base();
        claims.as_object_mut().unwrap().remove(key);
        claims
    }

    #[test]
    fn a_good_token_becomes_a_principal() {
        let principal = check(base()).expect("valid");
        assert_eq!(principal.subject, "usr_1");
        assert_eq!(principal.client_id.as_deref(), Some("cli_1"));
        assert!(principal.scopes.contains("web-search:read"));
        assert_eq!(
            principal.expires_at,
            Some(UNIX_EPOCH + Duration::from_secs(NOW + 600))
        );
    }

    #[test]
    fn each_rule_rejects_with_its_reason() {
        let cases = [
            (
                with("iss", json!("https://evil.example.com")),
                Rejection::WrongIssuer,
                "foreign issuer",
            ),
            (without("iss"), Rejection::MissingClaim, "no issuer"),
            (
                with("aud", json!("https://other.example.com/mcp")),
                Rejection::WrongAudience,
                "another resource",
            ),
            (
                with("aud", json!(["a", "b"])),
                Rejection::WrongAudience,
                "none of a list",
            ),
            (
                without("aud"),
                Rejection::WrongAudience,
                "no audience at all",
            ),
            (
                with("exp", json!(NOW - 61)),
                Rejection::Expired,
                "expired beyond the leeway",
            ),
            (without("exp"), Rejection::MissingClaim, "exp is required"),
            (
                with("nbf", json!(NOW + 61)),
                Rejection::NotYetValid,
                "nbf beyond the leeway",
            ),
            (
                with("iat", json!(NOW + 3600)),
                Rejection::NotYetValid,
                "issued in the future",
            ),
            (
                with("active", json!(false)),
                Rejection::Inactive,
                "introspection says inactive",
            ),
        ];
        for (value, expected, why) in cases {
            assert_eq!(rejection(value), Some(expected), "{why}");
        }
    }

    #[test]
    fn leeway_tolerates_small_clock_skew() {
        assert!(
            check(with("exp", json!(NOW - 30))).is_ok(),
            "expired 30 s ago is within 60 s leeway"
        );
        assert!(
            check(with("nbf", json!(NOW + 30))).is_ok(),
            "nbf 30 s ahead is within leeway"
        );
    }

    #[test]
    fn audiences_and_issuers_compare_canonically() {
        assert!(
            check(with("aud", json!(["res_1"]))).is_ok(),
            "the Scalekit resource id is an audience"
        );
        assert!(
            check(with("aud", json!("HTTPS://Search.Example.com/mcp/"))).is_ok(),
            "case of host, trailing slash"
        );
        assert!(
            check(with("iss", json!("https://idp.example.com/"))).is_ok(),
            "trailing slash on the issuer"
        );
        assert!(
            check(with(
                "iss",
                json!("https://idp.example.com/resources/res_1")
            ))
            .is_ok(),
            "second issuer"
        );
        assert_eq!(
            rejection(with("aud", json!("res_2"))),
            Some(Rejection::WrongAudience),
            "ids compare exactly"
        );
    }

    #[test]
    fn scopes_are_the_union_of_scope_scopes_and_scp() {
        let mut value = base();
        value["scope"] = json!("a b");
        value["scopes"] = json!(["c"]);
        value["scp"] = json!(["d e", "f"]);
        let scopes: Vec<_> = check(value)
            .unwrap()
            .scopes
            .iter()
            .map(str::to_owned)
            .collect();
        assert_eq!(scopes, ["a", "b", "c", "d", "e", "f"]);
        let mut entra = base();
        entra.as_object_mut().unwrap().remove("scope");
        entra["scp"] = json!("web-search:read");
        assert!(
            check(entra).unwrap().scopes.contains("web-search:read"),
            "scp as a string"
        );
    }

    #[test]
    fn client_credentials_tokens_without_sub_use_the_client() {
        let mut value = without("sub");
        value["client_id"] = json!("m2m_1");
        assert_eq!(check(value).unwrap().subject, "m2m_1");
        let mut neither = without("sub");
        neither.as_object_mut().unwrap().remove("client_id");
        assert_eq!(rejection(neither), Some(Rejection::MissingClaim));
    }

    #[test]
    fn the_client_is_read_from_client_id_azp_cid_then_appid() {
        let client = |pairs: &[(&str, &str)]| {
            let mut value = without("client_id");
            for (claim, id) in pairs {
                value[*claim] = json!(id);
            }
            check(value).unwrap().client_id
        };
        assert_eq!(client(&[]), None, "no client claim names no client");
        assert_eq!(client(&[("appid", "entra")]).as_deref(), Some("entra"));
        assert_eq!(
            client(&[("appid", "entra"), ("cid", "okta")]).as_deref(),
            Some("okta")
        );
        assert_eq!(
            client(&[("cid", "okta"), ("azp", "oidc")]).as_deref(),
            Some("oidc")
        );
        assert_eq!(
            client(&[("azp", "oidc"), ("client_id", "rfc9068")]).as_deref(),
            Some("rfc9068")
        );
    }

    #[test]
    fn canonical_forms_forgive_only_case_and_one_trailing_slash() {
        assert_eq!(
            canonical("HTTPS://Search.Example.com/mcp/"),
            "https://search.example.com/mcp"
        );
        assert_eq!(
            canonical("https://idp.example.com/"),
            "https://idp.example.com"
        );
        assert_eq!(canonical("res_1"), "res_1");
        for (a, b) in [
            ("https://x.com/a/../mcp", "https://x.com/mcp"),
            ("https://x.com:443/mcp", "https://x.com/mcp"),
            ("https://x.com/mcp//", "https://x.com/mcp"),
            (" res_1", "res_1"),
            ("https://x.com/MCP", "https://x.com/mcp"),
        ] {
            assert_ne!(canonical(a), canonical(b), "{a} must not pass for {b}");
        }
    }

    #[test]
    fn introspection_answers_must_say_active_true() {
        let policy = policy().for_introspection("https://idp.example.com");
        let at = UNIX_EPOCH + Duration::from_secs(NOW);
        assert!(
            matches!(
                policy.check(claims(base()), at),
                Err(AuthError::InvalidToken {
                    rejection: Rejection::Inactive,
                    ..
                })
            ),
            "no `active` member is not active"
        );
        assert!(
            policy
                .check(claims(with("active", json!(true))), at)
                .is_ok()
        );
    }

    #[test]
    fn absurd_expiry_dates_are_malformed_not_a_panic() {
        assert_eq!(
            rejection(with("exp", json!(1e300))),
            Some(Rejection::Malformed)
        );
    }

    #[test]
    fn introspection_may_omit_exp_and_iss() {
        let policy = policy().for_introspection("https://idp.example.com");
        let mut value = without("exp");
        value.as_object_mut().unwrap().remove("iss");
        value["active"] = json!(true);
        let principal = policy
            .check(claims(value), UNIX_EPOCH + Duration::from_secs(NOW))
            .unwrap();
        assert_eq!(principal.issuer, "https://idp.example.com");
        assert_eq!(principal.expires_at, None);
    }
}
