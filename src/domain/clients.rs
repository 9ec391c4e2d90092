//! OAuth clients that use searchgate: the metadata they register with and its rules, the
//! `ClientRegistry` port that registers them (at the IdP, statically, or in the embedded
//! server), the `ClientStore` port that remembers them, the client policy, and the batched
//! last-seen tracker.

mod activity;
mod policy;
mod registrar;
mod store;

use async_trait::async_trait;
use serde::Deserialize;

pub use activity::ClientActivity;
pub use policy::{ClientPolicy, ClientVerdict, PolicyLists};
pub use registrar::Registrar;
pub use store::{
    ClientCursor, ClientPage, ClientRow, ClientSource, ClientStore, UnknownClientSource,
};
use url::{Host, Url};

use crate::domain::time::Timestamp;

/// Most redirect URIs one client may register.
const MAX_REDIRECT_URIS: usize = 20;
/// Longest redirect URI accepted.
const MAX_URI_BYTES: usize = 2000;
/// Longest client name kept (characters).
const MAX_NAME_CHARS: usize = 200;
/// Grant types searchgate's authorization paths understand.
const GRANT_TYPES: &[&str] = &["authorization_code", "refresh_token", "client_credentials"];
/// Client authentication methods at the token endpoint.
const AUTH_METHODS: &[&str] = &["none", "client_secret_basic", "client_secret_post"];

/// Where registered OAuth clients are kept (the IdP's registration endpoint, a static
/// pre-registered client, or the embedded authorization server's own table).
///
/// Contract:
/// - `register` MUST validate nothing itself beyond what its backend requires; metadata rules
///   live in the domain. It MUST return [`ClientError::Rejected`] when the backend refuses the
///   metadata and [`ClientError::Unavailable`] when the backend cannot be reached.
/// - A client secret, when one is issued, is returned once and MUST NOT be stored in plain text.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait ClientRegistry: Send + Sync + 'static {
    /// Registers a client (RFC 7591) and returns its id and, for confidential clients, its secret.
    ///
    /// # Errors
    /// [`ClientError::Rejected`] or [`ClientError::Unavailable`], as above.
    async fn register(&self, metadata: ClientMetadata) -> Result<RegisteredClient, ClientError>;
}

/// What a client says about itself when it registers (RFC 7591 §2, the fields searchgate uses).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientMetadata {
    /// A name to show people on consent pages and in the admin API.
    pub client_name: Option<String>,
    /// Where authorization responses may be sent.
    pub redirect_uris: Vec<String>,
    /// OAuth grant types the client will use.
    pub grant_types: Vec<String>,
    /// `none`, `client_secret_basic` or `client_secret_post`.
    pub token_endpoint_auth_method: String,
}

/// A client as the registry knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredClient {
    /// The client id issued by the registry.
    pub client_id: String,
    /// The metadata it registered with.
    pub metadata: ClientMetadata,
    /// A secret for confidential clients, present only in the answer to `register`.
    pub client_secret: Option<String>,
    /// When it was registered.
    pub created_at: Timestamp,
}

/// Why a registration or lookup failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The registry refused the metadata (RFC 7591 §3.2.2 error code and description).
    #[error("registration rejected ({code}): {description}")]
    Rejected {
        /// `invalid_redirect_uri` or `invalid_client_metadata`.
        code: &'static str,
        /// What is wrong, for the client's developer.
        description: String,
    },
    /// The registry's backend cannot be reached.
    #[error("the client registry is unavailable")]
    Unavailable,
    /// Anything else.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// An RFC 7591 registration request as sent; [`ClientMetadata::from_request`] validates it.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RegistrationRequest {
    /// Where authorization responses may be sent.
    pub redirect_uris: Option<Vec<String>>,
    /// A name to show people.
    pub client_name: Option<String>,
    /// Default `["authorization_code"]` (RFC 7591 §2).
    pub grant_types: Option<Vec<String>>,
    /// Default `["code"]`.
    pub response_types: Option<Vec<String>>,
    /// Default `client_secret_basic` (RFC 7591 §2).
    pub token_endpoint_auth_method: Option<String>,
}

impl ClientMetadata {
    /// Validates a registration request (RFC 7591 §2 and OAuth 2.1): known grant and response
    /// types that agree with each other, redirect URIs for authorization-code clients (https,
    /// or http on a loopback host per RFC 8252; no fragments), a known client authentication
    /// method, and bounded lengths.
    ///
    /// # Errors
    /// [`ClientError::Rejected`] with `invalid_redirect_uri` or `invalid_client_metadata`.
    pub fn from_request(request: RegistrationRequest) -> Result<Self, ClientError> {
        let metadata_error = |description: String| ClientError::Rejected {
            code: "invalid_client_metadata",
            description,
        };
        let method = request
            .token_endpoint_auth_method
            .unwrap_or_else(|| "client_secret_basic".to_owned());
        if !AUTH_METHODS.contains(&method.as_str()) {
            return Err(metadata_error(format!(
                "token_endpoint_auth_method must be one of {}",
                AUTH_METHODS.join(", ")
            )));
        }
        let grant_types = request
            .grant_types
            .unwrap_or_else(|| vec!["authorization_code".to_owned()]);
        if grant_types.is_empty() || grant_types.len() > GRANT_TYPES.len() {
            return Err(metadata_error(format!(
                "grant_types must list some of {}",
                GRANT_TYPES.join(", ")
            )));
        }
        if let Some(unknown) = grant_types
            .iter()
            .find(|g| !GRANT_TYPES.contains(&g.as_str()))
        {
            return Err(metadata_error(format!(
                "grant type {:?} is not supported; use {}",
                truncate(unknown, 64),
                GRANT_TYPES.join(", ")
            )));
        }
        let has = |grant: &str| grant_types.iter().any(|g| g == grant);
        let response_types = request
            .response_types
            .unwrap_or_else(|| vec!["code".to_owned()]);
        if response_types.iter().any(|r| r != "code") {
            return Err(metadata_error(
                "response_types may only contain \"code\"".to_owned(),
            ));
        }
        if has("authorization_code") == response_types.is_empty() {
            return Err(metadata_error(
                "response_types must be [\"code\"] exactly when grant_types includes \
                 authorization_code"
                    .to_owned(),
            ));
        }
        if has("client_credentials") && method == "none" {
            return Err(metadata_error(
                "client_credentials needs a confidential client: set token_endpoint_auth_method \
                 to client_secret_basic or client_secret_post"
                    .to_owned(),
            ));
        }
        if has("refresh_token") && !has("authorization_code") {
            return Err(metadata_error(
                "refresh_token is only issued with authorization_code".to_owned(),
            ));
        }
        let redirect_uris = request.redirect_uris.unwrap_or_default();
        if has("authorization_code") && redirect_uris.is_empty() {
            return Err(ClientError::Rejected {
                code: "invalid_redirect_uri",
                description: "redirect_uris is required for the authorization_code grant".into(),
            });
        }
        if redirect_uris.len() > MAX_REDIRECT_URIS {
            return Err(ClientError::Rejected {
                code: "invalid_redirect_uri",
                description: format!("at most {MAX_REDIRECT_URIS} redirect_uris are accepted"),
            });
        }
        for uri in &redirect_uris {
            check_redirect_uri(uri).map_err(|description| ClientError::Rejected {
                code: "invalid_redirect_uri",
                description,
            })?;
        }
        let client_name = match request.client_name {
            Some(name) if name.chars().count() > MAX_NAME_CHARS => {
                return Err(metadata_error(format!(
                    "client_name is longer than {MAX_NAME_CHARS} characters"
                )));
            }
            Some(name) if name.chars().any(is_deceptive) => {
                return Err(metadata_error(
                    "client_name must not contain control or text-direction characters".to_owned(),
                ));
            }
            Some(name) if name.trim().is_empty() => None,
            other => other,
        };
        Ok(Self {
            client_name,
            redirect_uris,
            grant_types,
            token_endpoint_auth_method: method,
        })
    }

    /// Whether the client authenticates with a secret.
    pub fn is_confidential(&self) -> bool {
        self.token_endpoint_auth_method != "none"
    }
}

/// Checks one redirect URI: absolute, no fragment, https, or http on a loopback host
/// (RFC 8252 §7.3; `localhost` too, as MCP clients use it).
///
/// # Errors
/// What is wrong, for the client's developer.
pub fn check_redirect_uri(uri: &str) -> Result<(), String> {
    if uri.len() > MAX_URI_BYTES {
        return Err(format!(
            "redirect URIs are limited to {MAX_URI_BYTES} bytes"
        ));
    }
    let shown = truncate(uri, 200);
    let parsed = Url::parse(uri).map_err(|_| format!("{shown:?} is not an absolute URI"))?;
    if parsed.fragment().is_some() {
        return Err(format!(
            "{shown:?} has a fragment, which redirect URIs must not"
        ));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(format!("{shown:?} carries credentials"));
    }
    match parsed.scheme() {
        "https" if parsed.host().is_some() => Ok(()),
        "http" if is_loopback(&parsed) => Ok(()),
        "http" => Err(format!(
            "{shown:?} uses http on a non-loopback host; use https, or http://127.0.0.1 or \
             http://localhost for native clients (RFC 8252)"
        )),
        _ => Err(format!(
            "{shown:?} must use https (or http on a loopback host)"
        )),
    }
}

/// Whether `requested` is one of `registered`: exactly, or, for loopback http URIs, equal but
/// for the port (RFC 8252 §7.3: native clients pick a free port at each sign-in).
pub fn redirect_uri_registered(registered: &[String], requested: &str) -> bool {
    registered.iter().any(|r| {
        r == requested
            || match (Url::parse(r), Url::parse(requested)) {
                (Ok(mut r), Ok(mut q)) if r.scheme() == "http" && is_loopback(&r) => {
                    let _ = r.set_port(None);
                    let _ = q.set_port(None);
                    r == q
                }
                _ => false,
            }
    })
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Characters that could make a consent page show something other than what is written:
/// controls, bidirectional overrides and isolates, zero-width characters.
fn is_deceptive(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

fn truncate(value: &str, chars: usize) -> String {
    value.chars().take(chars).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(uris: &[&str], method: &str, grants: &[&str]) -> RegistrationRequest {
        RegistrationRequest {
            redirect_uris: Some(uris.iter().map(|u| (*u).to_owned()).collect()),
            client_name: Some("Test".into()),
            grant_types: Some(grants.iter().map(|g| (*g).to_owned()).collect()),
            response_types: None,
            token_endpoint_auth_method: Some(method.into()),
        }
    }

    fn code_of(result: Result<ClientMetadata, ClientError>) -> &'static str {
        match result {
            Err(ClientError::Rejected { code, .. }) => code,
            other => panic!("expected a rejection, got {other:?}"),
        }
    }

    #[test]
    fn mcp_client_registrations_pass() {
        let ok = ClientMetadata::from_request(request(
            &[
                "http://127.0.0.1:33418/callback",
                "https://app.example.com/cb",
            ],
            "none",
            &["authorization_code", "refresh_token"],
        ))
        .unwrap();
        assert!(!ok.is_confidential());
        let cc = ClientMetadata::from_request(RegistrationRequest {
            grant_types: Some(vec!["client_credentials".into()]),
            response_types: Some(vec![]),
            ..RegistrationRequest::default()
        })
        .unwrap();
        assert!(
            cc.is_confidential(),
            "RFC 7591 defaults to client_secret_basic"
        );
    }

    #[test]
    fn bad_redirect_uris_are_invalid_redirect_uri() {
        let grants = &["authorization_code"];
        for uris in [
            &[][..],
            &["http://evil.example.com/cb"][..],
            &["https://app.example.com/cb#frag"][..],
            &["/relative"][..],
            &["javascript:alert(1)"][..],
            &["https://user:pw@app.example.com/cb"][..],
        ] {
            assert_eq!(
                code_of(ClientMetadata::from_request(request(uris, "none", grants))),
                "invalid_redirect_uri",
                "{uris:?}"
            );
        }
    }

    #[test]
    fn inconsistent_metadata_is_invalid_client_metadata() {
        let uris = &["http://localhost:1/cb"];
        for (method, grants) in [
            ("private_key_jwt", &["authorization_code"][..]),
            ("none", &["implicit"][..]),
            ("none", &["client_credentials"][..]),
            ("none", &["refresh_token"][..]),
            ("none", &[][..]),
        ] {
            assert_eq!(
                code_of(ClientMetadata::from_request(request(uris, method, grants))),
                "invalid_client_metadata",
                "{method} {grants:?}"
            );
        }
        let mut token = request(uris, "none", &["authorization_code"]);
        token.response_types = Some(vec!["token".into()]);
        assert_eq!(
            code_of(ClientMetadata::from_request(token)),
            "invalid_client_metadata"
        );
        let mut bidi = request(uris, "none", &["authorization_code"]);
        bidi.client_name = Some("Good \u{202E}lixE".into());
        assert_eq!(
            code_of(ClientMetadata::from_request(bidi)),
            "invalid_client_metadata"
        );
        let mut long = request(uris, "none", &["authorization_code"]);
        long.client_name = Some("x".repeat(201));
        assert_eq!(
            code_of(ClientMetadata::from_request(long)),
            "invalid_client_metadata"
        );
    }

    #[test]
    fn loopback_redirects_match_on_any_port() {
        let registered = vec![
            "http://127.0.0.1:5000/cb".to_owned(),
            "https://a.example/cb".to_owned(),
        ];
        assert!(redirect_uri_registered(
            &registered,
            "http://127.0.0.1:6123/cb"
        ));
        assert!(redirect_uri_registered(&registered, "https://a.example/cb"));
        assert!(!redirect_uri_registered(
            &registered,
            "http://127.0.0.1:6123/other"
        ));
        assert!(!redirect_uri_registered(
            &registered,
            "https://a.example:8443/cb"
        ));
        assert!(!redirect_uri_registered(
            &registered,
            "https://a.example/cb?x=1"
        ));
    }
}
