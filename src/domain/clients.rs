//! OAuth clients that use searchgate: the metadata they register with and the `ClientRegistry`
//! port that records them.

use std::time::SystemTime;

use async_trait::async_trait;

/// Where registered OAuth clients are kept (the IdP's registration endpoint, a static
/// pre-registered client, or the embedded authorization server's own table).
///
/// Contract:
/// - `register` MUST validate nothing itself beyond what its backend requires; metadata rules
///   live in the domain. It MUST return [`ClientError::Rejected`] when the backend refuses the
///   metadata and [`ClientError::Unavailable`] when the backend cannot be reached.
/// - A client secret, when one is issued, is returned once and MUST NOT be stored in plain text.
/// - `find` MUST return `Ok(None)` for an unknown id, never an error.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait ClientRegistry: Send + Sync + 'static {
    /// Registers a client (RFC 7591) and returns its id and, for confidential clients, its secret.
    ///
    /// # Errors
    /// [`ClientError::Rejected`] or [`ClientError::Unavailable`], as above.
    async fn register(&self, metadata: ClientMetadata) -> Result<RegisteredClient, ClientError>;

    /// Looks a client up by id.
    ///
    /// # Errors
    /// [`ClientError::Unavailable`] when the store cannot be read.
    async fn find(&self, client_id: &str) -> Result<Option<RegisteredClient>, ClientError>;
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
    pub created_at: SystemTime,
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
