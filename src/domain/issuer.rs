//! The embedded development authorization server's state: signing keys, registered clients,
//! authorization codes, refresh tokens and used consent tickets, behind the `IssuerStore` port. Codes and refresh
//! tokens are stored by their SHA-256 only; client secrets likewise.

use async_trait::async_trait;

pub use super::time::UnixTime;

/// A signing key of the embedded authorization server.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyRecord {
    /// The key id (`kid`) tokens name.
    pub kid: String,
    /// The private key, PKCS#8 PEM.
    pub private_pem: String,
    /// When it was made.
    pub created_at: UnixTime,
    /// When a newer key replaced it for signing; it stays published while its tokens live.
    pub rotated_at: Option<UnixTime>,
    /// The latest `exp` of any token it signed.
    pub tokens_expire_at: UnixTime,
    /// When an operator withdrew it; from then on its tokens are refused.
    pub retired_at: Option<UnixTime>,
}

impl std::fmt::Debug for KeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRecord")
            .field("kid", &self.kid)
            .field("private_pem", &"<redacted>")
            .field("created_at", &self.created_at)
            .field("rotated_at", &self.rotated_at)
            .field("tokens_expire_at", &self.tokens_expire_at)
            .field("retired_at", &self.retired_at)
            .finish()
    }
}

impl KeyRecord {
    /// Whether tokens signed with it are still accepted at `now` (`leeway` for clock skew).
    pub fn is_published(&self, now: UnixTime, leeway: i64) -> bool {
        self.retired_at.is_none()
            && self
                .rotated_at
                .is_none_or(|_| self.tokens_expire_at.saturating_add(leeway) > now)
    }

    /// Whether it is the one new tokens are signed with (the newest not rotated out).
    pub fn is_signing(&self) -> bool {
        self.retired_at.is_none() && self.rotated_at.is_none()
    }
}

/// A client registered with the embedded authorization server (RFC 7591).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRecord {
    /// The id issued at registration.
    pub client_id: String,
    /// The name shown on the consent page.
    pub client_name: Option<String>,
    /// Exact redirect URIs (loopback ones match on any port, RFC 8252 §7.3).
    pub redirect_uris: Vec<String>,
    /// `authorization_code`, `refresh_token`, `client_credentials`.
    pub grant_types: Vec<String>,
    /// `none`, `client_secret_basic` or `client_secret_post`.
    pub token_endpoint_auth_method: String,
    /// SHA-256 (hex) of the client secret, for confidential clients.
    pub secret_hash: Option<String>,
    /// When it registered.
    pub created_at: UnixTime,
}

/// An issued authorization code, waiting to be exchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeRecord {
    /// SHA-256 (hex) of the code.
    pub code_hash: String,
    /// The client it was issued to.
    pub client_id: String,
    /// The redirect URI the authorization request named, which the token request must repeat;
    /// empty when the request named none (the client's only registered one was used).
    pub redirect_uri: String,
    /// The PKCE S256 challenge.
    pub code_challenge: String,
    /// Granted scopes, space-separated.
    pub scope: String,
    /// The resource (audience) the tokens are for.
    pub resource: String,
    /// Who approved it.
    pub subject: String,
    /// When it stops being exchangeable.
    pub expires_at: UnixTime,
}

/// An issued refresh token. Each use replaces it with a new one of the same family; using a
/// replaced one revokes the whole family (OAuth 2.1 §4.3.1, reuse detection).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshRecord {
    /// SHA-256 (hex) of the token.
    pub token_hash: String,
    /// The grant it descends from (the code's hash, or the first token's).
    pub family: String,
    /// The client it was issued to.
    pub client_id: String,
    /// Who approved the grant.
    pub subject: String,
    /// Granted scopes, space-separated.
    pub scope: String,
    /// The resource (audience) the tokens are for.
    pub resource: String,
    /// When it stops being usable.
    pub expires_at: UnixTime,
}

/// A stored single-use credential and whether it is spent (used, or revoked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored<T> {
    /// The credential.
    pub record: T,
    /// Whether it was used or revoked: presenting it again is a replay.
    pub spent: bool,
}

/// Where the embedded authorization server keeps its state.
///
/// Contract:
/// - Credentials are looked up (`find_*`) and checked first, and spent only when the answer is
///   ready, so a refused request never spends one.
/// - `consume_code` and `rotate_refresh` MUST be atomic: they mark the credential spent and
///   store its successor in one transaction, and of two concurrent calls for one credential
///   exactly one returns `true`. A family revoked before or after either call stays revoked,
///   successor included.
/// - Secrets, codes and refresh tokens arrive hashed; the store never sees them in plain text.
/// - Every method returns an error only when the store cannot be used.
#[async_trait]
pub trait IssuerStore: Send + Sync + 'static {
    /// Every signing key, oldest first.
    async fn keys(&self) -> anyhow::Result<Vec<KeyRecord>>;
    /// Adds `key` and marks every other signing key as rotated out at `key.created_at`.
    async fn add_signing_key(&self, key: &KeyRecord) -> anyhow::Result<()>;
    /// Adds `key` only when no key signs yet, deciding under the same lock as
    /// `add_signing_key`: of several servers starting together on an empty store, one adds its
    /// key. `false` when another key already signs.
    async fn add_first_signing_key(&self, key: &KeyRecord) -> anyhow::Result<bool>;
    /// Records that `kid` signed a token expiring at `exp` (keeps it published until then);
    /// `false` when `kid` is retired or unknown (sign with another key).
    async fn extend_key(&self, kid: &str, exp: UnixTime) -> anyhow::Result<bool>;
    /// Withdraws `kid` at `at`; `false` when there is no such key.
    async fn retire_key(&self, kid: &str, at: UnixTime) -> anyhow::Result<bool>;

    /// Stores a newly registered client.
    async fn add_client(&self, client: &ClientRecord) -> anyhow::Result<()>;
    /// Looks a client up.
    async fn client(&self, client_id: &str) -> anyhow::Result<Option<ClientRecord>>;

    /// Stores an issued authorization code.
    async fn add_code(&self, code: &CodeRecord) -> anyhow::Result<()>;
    /// Looks a code up without spending it.
    async fn find_code(&self, code_hash: &str) -> anyhow::Result<Option<Stored<CodeRecord>>>;
    /// Spends a code and stores the refresh token issued for it, atomically; `false` when the
    /// code was spent already.
    async fn consume_code(
        &self,
        code_hash: &str,
        refresh: Option<&RefreshRecord>,
    ) -> anyhow::Result<bool>;

    /// Looks a refresh token up without spending it.
    async fn find_refresh(&self, token_hash: &str)
    -> anyhow::Result<Option<Stored<RefreshRecord>>>;
    /// Spends a refresh token and stores its successor, atomically; `false` when it was spent
    /// or revoked already.
    async fn rotate_refresh(&self, token_hash: &str, next: &RefreshRecord) -> anyhow::Result<bool>;
    /// Revokes every refresh token of `family` (a code's family is its hash).
    async fn revoke_family(&self, family: &str) -> anyhow::Result<()>;

    /// Records that the consent ticket `ticket_id`, valid until `expires_at`, has been used;
    /// `false` when it was used already. Of two concurrent calls for one id exactly one
    /// returns `true`. Ids are kept until their ticket has expired, then pruned.
    async fn spend_ticket(&self, ticket_id: &str, expires_at: UnixTime) -> anyhow::Result<bool>;
}
