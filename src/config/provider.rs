//! What validation proves, as types: the identity provider, the search backend and the static
//! client, each holding the values it needs already parsed. Start-up builds adapters from these,
//! so it never meets a provider whose required setting is missing.

use url::Url;

use super::Secret;

/// The choices [`Settings::validate`](super::Settings::validate) parsed out of the settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Providers {
    /// Who issues and verifies access tokens.
    pub auth: AuthProvider,
    /// Which backends answer the tools, in order of preference (never empty).
    pub search: Vec<SearchBackend>,
    /// The operator's pre-registered client, when `registration.mode` is `static`.
    pub static_client: Option<StaticClient>,
}

/// The identity provider `auth.provider` names, with what it needs.
#[derive(Debug, Clone, PartialEq)]
pub enum AuthProvider {
    /// No authentication (loopback only).
    None,
    /// The embedded development authorization server; its settings are `auth.embedded`.
    Embedded,
    /// Any OpenID Connect provider.
    Oidc(OidcProvider),
    /// Scalekit.
    Scalekit(ScalekitProvider),
}

/// `auth.provider = "oidc"`, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct OidcProvider {
    /// The issuer.
    pub issuer: OidcIssuer,
    /// searchgate's credentials at the provider when tokens are introspected; `None` for JWTs.
    pub introspection: Option<IntrospectionClient>,
}

/// An issuer identifier that parses as an http(s) URL, kept exactly as written: discovery
/// compares it character for character, and parsing would add a trailing slash to a bare host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcIssuer {
    text: String,
    url: Url,
}

impl OidcIssuer {
    /// The issuer when `text` is an absolute http(s) URL without query, fragment or user info.
    pub fn parse(text: &str) -> Option<Self> {
        let url = Url::parse(text)
            .ok()
            .filter(super::validate::is_plain_http_url)?;
        Some(Self {
            text: text.to_owned(),
            url,
        })
    }

    /// The identifier as configured.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The identifier, parsed.
    pub fn url(&self) -> &Url {
        &self.url
    }
}

/// searchgate's client at an OpenID provider, for token introspection (RFC 7662).
#[derive(Debug, Clone, PartialEq)]
pub struct IntrospectionClient {
    /// Its client id (not blank).
    pub client_id: String,
    /// Its client secret (not empty).
    pub client_secret: Secret,
}

/// `auth.provider = "scalekit"`, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct ScalekitProvider {
    /// The environment URL (an absolute http(s) URL).
    pub environment_url: Url,
    /// The MCP server's resource id, trimmed and not empty.
    pub resource_id: String,
}

/// A search backend in effect (see
/// [`Settings::search_providers`](super::Settings::search_providers)), with what it needs. Keys
/// are trimmed printable ASCII without spaces, so they can be sent in a header.
#[derive(Debug, Clone, PartialEq)]
pub enum SearchBackend {
    /// Deterministic mock results.
    Mock,
    /// Tavily, with searchgate's key.
    Tavily {
        /// The key.
        key: Secret,
    },
    /// Brave Search, with searchgate's key.
    Brave {
        /// The key.
        key: Secret,
    },
    /// A SearXNG instance.
    Searxng {
        /// The instance's root.
        base_url: Url,
    },
    /// Exa, with searchgate's key.
    Exa {
        /// The key.
        key: Secret,
    },
}

impl SearchBackend {
    /// Whether the backend reads pages itself (else the built-in reader serves
    /// `web_extract`).
    pub fn reads_pages(&self) -> bool {
        matches!(self, Self::Mock | Self::Tavily { .. } | Self::Exa { .. })
    }

    /// The backend's name, as settings and results spell it.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Mock => "mock",
            Self::Tavily { .. } => "tavily",
            Self::Brave { .. } => "brave",
            Self::Searxng { .. } => "searxng",
            Self::Exa { .. } => "exa",
        }
    }
}

/// `[registration.static]`, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct StaticClient {
    /// Its client id at the IdP (not blank).
    pub client_id: String,
    /// Its redirect URI patterns (at least one).
    pub redirect_patterns: Vec<String>,
}
