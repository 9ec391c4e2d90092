//! The registered-client cache: every client registered through searchgate, where it came
//! from, and when it was last seen.

use async_trait::async_trait;

use super::RegisteredClient;

/// Which registry issued a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientSource {
    /// The IdP's registration endpoint.
    Upstream,
    /// The operator's pre-registered client.
    Static,
    /// The embedded authorization server.
    Embedded,
}

impl ClientSource {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Upstream => "upstream",
            Self::Static => "static",
            Self::Embedded => "embedded",
        }
    }
}

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
    /// `upstream`, `static` or `embedded`.
    pub source: String,
    /// First registration, Unix seconds.
    pub created_at: i64,
    /// When a token naming it was last used, Unix seconds.
    pub last_seen_at: Option<i64>,
    /// When an operator denied it, Unix seconds.
    pub denied_at: Option<i64>,
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
    pub created_at: i64,
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
    async fn deny(&self, client_id: &str, at: i64) -> anyhow::Result<bool>;
    /// Every denied client id.
    async fn denied(&self) -> anyhow::Result<Vec<String>>;
    /// Records that tokens of `client_ids` were used at `at`.
    async fn touch(&self, client_ids: &[String], at: i64) -> anyhow::Result<()>;
}
