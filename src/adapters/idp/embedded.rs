//! The embedded development authorization server: a complete OAuth 2.1 authorization server
//! under `/idp` so that `cargo run` gives a working, authenticated server with no IdP account.
//! It registers clients (RFC 7591, or Client ID Metadata Documents), shows a consent page to
//! the single local operator, issues RS256 `at+jwt` access tokens (RFC 9068) and rotating
//! refresh tokens, and verifies its own tokens through the same core `TokenPolicy` as every
//! other provider. Its keys, clients and grants live in the database (`IssuerStore`), so tokens
//! survive restarts and replicas share them.

mod authorize;
mod cimd;
mod consent;
mod keys;
mod routes;
mod token;

use std::{
    sync::{Arc, RwLock},
    time::Duration,
};

use async_trait::async_trait;
use futures::FutureExt;
use serde::Serialize;

use self::{cimd::CimdResolver, keys::Signer};
use super::{JwksCache, JwksLoader, JwtVerifier};
use crate::domain::{
    auth::{
        AuthError, AuthorizationServer, BearerToken, Principal, ProbeFinding, ServerMetadata,
        TokenPolicy,
    },
    clients::{
        ClientError, ClientMetadata, ClientPolicy, ClientSource, ClientStore, RegisteredClient,
    },
    issuer::{ClientRecord, IssuerStore, UnixTime},
    time::Timestamp,
};

/// How often the published keys are re-read from the store (rotations by the CLI or another
/// replica show up within this long; an unknown `kid` re-reads at once).
const KEY_RELOAD: Duration = Duration::from_secs(30);

/// What the embedded authorization server needs to know.
#[derive(Debug, Clone)]
pub struct EmbeddedConfig {
    /// Its issuer identifier: `public_url + "/idp"`.
    pub issuer: String,
    /// The resource its tokens are for (the MCP endpoint's URL, canonical).
    pub resource: String,
    /// Audiences accepted when verifying (default: the resource).
    pub audiences: Vec<String>,
    /// Scopes clients may ask for (granted when they ask for none).
    pub scopes: Vec<String>,
    /// Scopes granted only when asked for by name on the consent page or `searchgate token`
    /// (the admin scope); never through client credentials.
    pub operator_scopes: Vec<String>,
    /// Clock skew tolerated.
    pub leeway: Duration,
    /// Access-token lifetime.
    pub access_ttl: Duration,
    /// Refresh-token lifetime.
    pub refresh_ttl: Duration,
    /// Authorization-code lifetime.
    pub code_ttl: Duration,
    /// The `sub` of tokens approved on the consent page.
    pub subject: String,
    /// Where clients register (searchgate's `/oauth/register`), when registration is on.
    pub registration_endpoint: Option<String>,
}

/// The embedded authorization server. Cheap to clone.
#[derive(Clone)]
pub struct EmbeddedAuthorizationServer {
    config: Arc<EmbeddedConfig>,
    store: Arc<dyn IssuerStore>,
    jwt: JwtVerifier,
    signer: Arc<RwLock<Option<Signer>>>,
    cimd: CimdResolver,
    clients: Option<ClientCache>,
}

/// The server's client policy, and the registered-client cache that metadata-document
/// clients are recorded in (so the admin API lists them and can deny them).
#[derive(Clone)]
struct ClientCache {
    policy: ClientPolicy,
    store: Arc<dyn ClientStore>,
}

/// What looking a client up found.
#[derive(Debug, Clone)]
pub(crate) enum Lookup {
    /// The client.
    Found(ClientRecord),
    /// No such client, or its metadata document is unusable: the client's fault.
    Unknown(String),
    /// The client policy refuses the client (a deny list, or the admin API).
    Denied(String),
    /// The registry or the document's host cannot be reached: try again.
    Unavailable(String),
}

/// What a denied client is told, on the page or at the token endpoint.
const DENIED: &str = "this client is not allowed to use this server; ask its operator";

/// The claims of an issued access token (RFC 9068 §2.2).
#[derive(Debug, Serialize)]
struct AccessClaims<'a> {
    iss: &'a str,
    aud: &'a str,
    sub: &'a str,
    client_id: &'a str,
    scope: &'a str,
    iat: UnixTime,
    exp: UnixTime,
    jti: String,
}

/// A freshly issued access token.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    /// The JWT.
    pub token: String,
    /// Seconds until it expires.
    pub expires_in: u64,
}

impl EmbeddedAuthorizationServer {
    /// Opens the server on `store`, making its first signing key when there is none.
    ///
    /// # Errors
    /// When the store cannot be read or written.
    pub async fn open(config: EmbeddedConfig, store: Arc<dyn IssuerStore>) -> anyhow::Result<Self> {
        ensure_signing_key(store.as_ref()).await?;
        let signer: Arc<RwLock<Option<Signer>>> = Arc::default();
        let leeway = i64::try_from(config.leeway.as_secs()).unwrap_or(i64::MAX);
        let loader = {
            let store = store.clone();
            let signer = signer.clone();
            JwksLoader(Arc::new(move || {
                let store = store.clone();
                let signer = signer.clone();
                async move {
                    let records = store.keys().await?;
                    if let Some(current) = records.iter().rev().find(|k| k.is_signing()) {
                        let fresh = Signer::new(current)?;
                        *signer
                            .write()
                            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(fresh);
                    }
                    keys::jwks(&records, now(), leeway)
                }
                .boxed()
            }))
        };
        let keys = JwksCache::loaded(loader, KEY_RELOAD);
        keys.refresh()
            .await
            .map_err(|e| anyhow::anyhow!("cannot load the embedded signing keys: {e}"))?;
        let policy = TokenPolicy::new(
            std::slice::from_ref(&config.issuer),
            &config.audiences,
            config.leeway,
        );
        Ok(Self {
            jwt: JwtVerifier::new(keys, policy).with_strict_typ(true),
            cimd: CimdResolver::new(),
            config: Arc::new(config),
            store,
            signer,
            clients: None,
        })
    }

    /// Applies the client policy at `/idp/authorize` and `/idp/token` (a denied client is
    /// refused there, not only when its token is used; metadata-document clients meet the
    /// redirect-host lists), and records metadata-document clients in `clients`.
    #[must_use]
    pub fn with_client_policy(
        mut self,
        policy: ClientPolicy,
        clients: Arc<dyn ClientStore>,
    ) -> Self {
        self.clients = Some(ClientCache {
            policy,
            store: clients,
        });
        self
    }

    /// Its issuer identifier.
    pub fn issuer(&self) -> &str {
        &self.config.issuer
    }

    /// The issuer's path (`/idp`, after any public path prefix): where its pages post to.
    fn issuer_path(&self) -> String {
        url::Url::parse(&self.config.issuer)
            .map(|u| u.path().trim_end_matches('/').to_owned())
            .unwrap_or_default()
    }

    /// The JWKS as stored now.
    async fn published_keys(&self) -> anyhow::Result<serde_json::Value> {
        let leeway = i64::try_from(self.config.leeway.as_secs()).unwrap_or(i64::MAX);
        keys::jwks(&self.store.keys().await?, now(), leeway)
    }

    /// Signs an access token for `subject` and `client_id` with `scope`, valid for `ttl`.
    ///
    /// # Errors
    /// When there is no signing key or the store cannot record the token's lifetime.
    pub async fn mint(
        &self,
        subject: &str,
        client_id: &str,
        scope: &str,
        resource: &str,
        ttl: Duration,
    ) -> anyhow::Result<IssuedToken> {
        let iat = now();
        let exp = iat.saturating_add(i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX));
        // Recorded first, so a key is never withdrawn while a token it signed still lives. A key
        // retired since the last reload is refused: reload and sign with its successor.
        let mut signer = self.current_signer()?;
        if !self.store.extend_key(&signer.kid, exp).await? {
            self.jwt
                .keys()
                .refresh()
                .await
                .map_err(|e| anyhow::anyhow!("cannot reload the signing keys: {e}"))?;
            signer = self.current_signer()?;
            anyhow::ensure!(
                self.store.extend_key(&signer.kid, exp).await?,
                "the signing key {} is retired and no other is available",
                signer.kid
            );
        }
        let claims = AccessClaims {
            iss: &self.config.issuer,
            aud: resource,
            sub: subject,
            client_id,
            scope,
            iat,
            exp,
            jti: keys::random_string(16),
        };
        Ok(IssuedToken {
            token: signer.sign("at+jwt", &claims)?,
            expires_in: ttl.as_secs(),
        })
    }

    /// The authorization server metadata (RFC 8414), also served as OpenID discovery.
    pub fn metadata_document(&self) -> serde_json::Value {
        let issuer = &self.config.issuer;
        let mut scopes = self.config.scopes.clone();
        scopes.push("offline_access".to_owned());
        let mut document = serde_json::json!({
            "issuer": issuer,
            "authorization_endpoint": format!("{issuer}/authorize"),
            "token_endpoint": format!("{issuer}/token"),
            "jwks_uri": format!("{issuer}/jwks"),
            "scopes_supported": scopes,
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
            "token_endpoint_auth_methods_supported": ["none", "client_secret_basic", "client_secret_post"],
            "code_challenge_methods_supported": ["S256"],
            "authorization_response_iss_parameter_supported": true,
            "client_id_metadata_document_supported": true,
            // Required of OpenID discovery documents; no ID tokens are issued here.
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
        });
        if let Some(endpoint) = &self.config.registration_endpoint {
            document["registration_endpoint"] = endpoint.clone().into();
        }
        document
    }

    /// A registered client, or one described by a Client ID Metadata Document when `client_id`
    /// is an https URL.
    async fn find_client(&self, client_id: &str) -> Lookup {
        let lookup = self.lookup_client(client_id).await;
        match (&lookup, &self.clients) {
            (Lookup::Found(client), Some(cache))
                if !cache.policy.allows_client(&client.client_id) =>
            {
                Lookup::Denied(DENIED.to_owned())
            }
            _ => lookup,
        }
    }

    /// Whether the client policy still lets `client_id` in (it may have been denied since its
    /// consent page was shown).
    fn client_allowed(&self, client_id: &str) -> bool {
        self.clients
            .as_ref()
            .is_none_or(|cache| cache.policy.allows_client(client_id))
    }

    async fn lookup_client(&self, client_id: &str) -> Lookup {
        if client_id.starts_with("https://") {
            let (client, fetched) = match self.cimd.resolve(client_id).await {
                Ok(resolved) => resolved,
                Err(lookup) => return lookup,
            };
            let Some(cache) = &self.clients else {
                return Lookup::Found(client);
            };
            // The same redirect-host lists as clients registering at /oauth/register.
            if let Err(ClientError::Rejected { description, .. }) =
                cache.policy.check_redirects(&client.redirect_uris)
            {
                return Lookup::Unknown(description);
            }
            if fetched {
                record_cimd_client(cache.store.as_ref(), &client).await;
            }
            return Lookup::Found(client);
        }
        match self.store.client(client_id).await {
            Ok(Some(client)) => Lookup::Found(client),
            Ok(None) => Lookup::Unknown(
                "this client is not registered with this server; register it first, or restart \
                 the sign-in from your MCP client"
                    .to_owned(),
            ),
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "cannot read the client registry");
                Lookup::Unavailable("the client registry cannot be read; try again".to_owned())
            }
        }
    }

    /// The key new tokens are signed with.
    fn current_signer(&self) -> anyhow::Result<Signer> {
        self.signer
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
            .ok_or_else(|| anyhow::anyhow!("the embedded authorization server has no signing key"))
    }
}

#[async_trait]
impl AuthorizationServer for EmbeddedAuthorizationServer {
    fn authorization_servers(&self) -> Vec<String> {
        vec![self.config.issuer.clone()]
    }

    async fn verify(&self, token: &BearerToken) -> Result<Principal, AuthError> {
        self.jwt.verify(token).await
    }

    async fn metadata(&self) -> Result<Option<ServerMetadata>, AuthError> {
        Ok(Some(ServerMetadata(Arc::new(self.metadata_document()))))
    }

    async fn probe(&self) -> Vec<ProbeFinding> {
        vec![
            ProbeFinding::ok("issuer", &self.config.issuer),
            self.jwt.keys().probe().await,
        ]
    }
}

/// Remembers a metadata-document client in the registered-client cache (source `cimd`), so
/// the admin API lists it and can deny it. A failure only hides it from the admin API, so the
/// sign-in goes on.
async fn record_cimd_client(store: &dyn ClientStore, client: &ClientRecord) {
    let registered = RegisteredClient {
        client_id: client.client_id.clone(),
        metadata: ClientMetadata {
            client_name: client.client_name.clone(),
            redirect_uris: client.redirect_uris.clone(),
            grant_types: client.grant_types.clone(),
            token_endpoint_auth_method: client.token_endpoint_auth_method.clone(),
        },
        client_secret: None,
        created_at: Timestamp::now(),
    };
    if let Err(error) = store.record(&registered, ClientSource::Cimd).await {
        tracing::error!(error = %format!("{error:#}"), client_id = %client.client_id, "cannot remember a metadata-document client");
    }
}

/// Makes the first signing key when the store has none that signs.
///
/// # Errors
/// When the store cannot be used.
pub async fn ensure_signing_key(store: &dyn IssuerStore) -> anyhow::Result<()> {
    if !store.keys().await?.iter().any(|k| k.is_signing()) {
        let key = keys::generate(now())?;
        if store.add_first_signing_key(&key).await? {
            tracing::info!(kid = %key.kid, "made the embedded authorization server's signing key");
        }
    }
    Ok(())
}

/// Makes a new signing key; the previous one stays published until its tokens expire.
///
/// # Errors
/// When the store cannot be used.
pub async fn rotate_signing_key(store: &dyn IssuerStore) -> anyhow::Result<String> {
    let key = keys::generate(now())?;
    store.add_signing_key(&key).await?;
    Ok(key.kid)
}

/// Seconds since the Unix epoch.
fn now() -> UnixTime {
    Timestamp::now().unix_seconds()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::{
        adapters::store::{Database, PoolSettings},
        domain::clients::PolicyLists,
    };

    const GOOD: &str = "https://app.example/client.json";
    const EVIL: &str = "https://other.example/client.json";

    fn config() -> EmbeddedConfig {
        EmbeddedConfig {
            issuer: "http://127.0.0.1:9/idp".into(),
            resource: "http://127.0.0.1:9/mcp".into(),
            audiences: vec!["http://127.0.0.1:9/mcp".into()],
            scopes: vec!["web-search:read".into()],
            operator_scopes: vec![],
            leeway: Duration::from_secs(60),
            access_ttl: Duration::from_secs(60),
            refresh_ttl: Duration::from_secs(60),
            code_ttl: Duration::from_secs(60),
            subject: "operator".into(),
            registration_endpoint: None,
        }
    }

    fn authorization(client_id: &str, redirect_uri: &str) -> HashMap<String, String> {
        [
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", redirect_uri),
            (
                "code_challenge",
                "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            ),
            ("code_challenge_method", "S256"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    #[tokio::test]
    async fn metadata_document_clients_meet_the_redirect_lists_are_listed_as_cimd_and_can_be_denied()
     {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let url = format!("sqlite://{}", dir.path().join("idp.db").display());
        let db = Database::connect(&url, &PoolSettings::default())
            .await
            .expect("the store opens");
        let policy = ClientPolicy::new(
            PolicyLists {
                deny_redirect_hosts: vec!["evil.example".into()],
                ..PolicyLists::default()
            },
            [],
        );
        let idp = EmbeddedAuthorizationServer::open(config(), db.issuer.clone())
            .await
            .expect("the server opens")
            .with_client_policy(policy.clone(), db.clients.clone());
        idp.cimd.served.lock().unwrap().extend([
            (
                GOOD.to_owned(),
                format!(
                    r#"{{"client_id":"{GOOD}","client_name":"App","redirect_uris":["http://127.0.0.1:3000/cb"]}}"#
                ),
            ),
            (
                EVIL.to_owned(),
                format!(r#"{{"client_id":"{EVIL}","redirect_uris":["https://evil.example/cb"]}}"#),
            ),
        ]);

        let consent = idp
            .authorize(&authorization(GOOD, "http://127.0.0.1:3000/cb"))
            .await;
        assert!(
            matches!(consent, authorize::Answer::Consent(_)),
            "{consent:?}"
        );
        let listed = db.clients.list(None, 10).await.unwrap().clients;
        assert_eq!(listed.len(), 1, "{listed:?}");
        assert_eq!(
            (listed[0].client_id.as_str(), listed[0].source),
            (GOOD, ClientSource::Cimd),
            "the admin API lists it, as a metadata-document client"
        );

        let refused = idp
            .authorize(&authorization(EVIL, "https://evil.example/cb"))
            .await;
        assert!(
            matches!(&refused, authorize::Answer::Problem { status: 400, message } if message.contains("client policy")),
            "the redirect-host lists hold for metadata documents: {refused:?}"
        );
        assert_eq!(
            db.clients.list(None, 10).await.unwrap().clients.len(),
            1,
            "a refused document is not recorded"
        );

        // The admin API's deny: the store, then the shared policy.
        assert!(db.clients.deny(GOOD, now()).await.unwrap());
        policy.deny(GOOD);
        let denied = idp
            .authorize(&authorization(GOOD, "http://127.0.0.1:3000/cb"))
            .await;
        assert!(
            matches!(denied, authorize::Answer::Problem { status: 403, .. }),
            "{denied:?}"
        );
        let form: HashMap<String, String> = [
            ("grant_type", "authorization_code"),
            ("client_id", GOOD),
            ("code", "c"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let token = idp.token(&form, None).await.expect_err("refused");
        assert_eq!((token.status, token.error), (401, "invalid_client"));
    }
}
