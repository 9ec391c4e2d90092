//! The registered-client cache: every client registered through searchgate, where it came
//! from, and when it was last seen.

use std::{fmt, str::FromStr};

use async_trait::async_trait;

use super::RegisteredClient;
use crate::domain::time::UnixTime;

/// Which registry issued a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientSource {
    /// The IdP's registration endpoint.
    Upstream,
    /// The operator's pre-registered client.
    Static,
    /// The embedded authorization server.
    Embedded,
    /// A Client ID Metadata Document: the client's id is the https URL of its own metadata,
    /// which the embedded authorization server fetched.
    Cimd,
}

impl ClientSource {
    /// Every source.
    pub const ALL: [Self; 4] = [Self::Upstream, Self::Static, Self::Embedded, Self::Cimd];

    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Upstream => "upstream",
            Self::Static => "static",
            Self::Embedded => "embedded",
            Self::Cimd => "cimd",
        }
    }
}

impl fmt::Display for ClientSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ClientSource {
    type Err = UnknownClientSource;

    /// Reads the stored spelling (`upstream`, `static`, `embedded`, `cimd`).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|s| s.as_str() == text)
            .ok_or_else(|| UnknownClientSource(text.to_owned()))
    }
}

/// A text that names no [`ClientSource`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a client source: use upstream, static, embedded or cimd")]
pub struct UnknownClientSource(pub String);

/// A remembered client (never its secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRow {
    /// The client id.
    pub client_id: String,
    /// Its name, when it gave one.
    pub client_name: Option<String>,
    /// Its redirect URIs.
    pub redirect_uris: Vec<String>,
    /// Its grant types.
    pub grant_types: Vec<String>,
    /// How it authenticates at the token endpoint.
    pub token_endpoint_auth_method: String,
    /// Which registry issued it.
    pub source: ClientSource,
    /// First registration.
    pub created_at: UnixTime,
    /// When a token naming it was last used.
    pub last_seen_at: Option<UnixTime>,
    /// When an operator denied it.
    pub denied_at: Option<UnixTime>,
}

/// One page of clients, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientPage {
    /// The clients.
    pub clients: Vec<ClientRow>,
    /// Where the next page starts, when there is one.
    pub next_cursor: Option<String>,
}

/// Where a page of clients ends: `<created_at>.<client_id>`, the position of its last row in
/// the list's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCursor {
    /// The last row's `created_at`.
    pub created_at: UnixTime,
    /// The last row's client id.
    pub client_id: String,
}

impl ClientCursor {
    /// The cursor after `row`.
    pub fn after(row: &ClientRow) -> Self {
        Self {
            created_at: row.created_at,
            client_id: row.client_id.clone(),
        }
    }

    /// Reads a cursor written by [`ClientCursor::to_string`]; `None` when it is not one.
    pub fn parse(cursor: &str) -> Option<Self> {
        let (created_at, client_id) = cursor.split_once('.')?;
        Some(Self {
            created_at: created_at.parse().ok()?,
            client_id: client_id.to_owned(),
        })
    }
}

impl std::fmt::Display for ClientCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.created_at, self.client_id)
    }
}

/// Where registered clients are remembered.
///
/// Contract:
/// - `record` MUST be idempotent per client id (a static client registered twice is one row,
///   keeping its first `created_at`) and MUST NOT store a secret.
/// - `list` pages by an opaque cursor; every row appears on exactly one page.
/// - Every method returns an error only when the store cannot be used.
#[async_trait]
pub trait ClientStore: Send + Sync + 'static {
    /// Remembers a registered client.
    async fn record(&self, client: &RegisteredClient, source: ClientSource) -> anyhow::Result<()>;
    /// One client.
    async fn client(&self, client_id: &str) -> anyhow::Result<Option<ClientRow>>;
    /// A page of at most `limit` clients after `cursor`.
    async fn list(&self, cursor: Option<&ClientCursor>, limit: u32) -> anyhow::Result<ClientPage>;
    /// Denies a client from now on; `false` when it is unknown.
    async fn deny(&self, client_id: &str, at: UnixTime) -> anyhow::Result<bool>;
    /// Every denied client id.
    async fn denied(&self) -> anyhow::Result<Vec<String>>;
    /// Records that tokens of `client_ids` were used at `at`.
    async fn touch(&self, client_ids: &[String], at: UnixTime) -> anyhow::Result<()>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_read_their_stored_spelling() {
        for source in ClientSource::ALL {
            assert_eq!(source.as_str().parse(), Ok(source), "{source}");
        }
        assert_eq!(
            "imported".parse::<ClientSource>(),
            Err(UnknownClientSource("imported".into())),
            "a row searchgate did not write is an error, not a guess"
        );
    }
}
