//! Identity-provider adapters: they fetch keys, metadata and introspection answers and decode
//! tokens; the core `TokenPolicy` decides what is accepted.

mod embedded;
mod introspection;
mod jwks;
mod jwt;
mod metadata;
mod oidc;
mod scalekit;

pub use embedded::{
    EmbeddedAuthorizationServer, EmbeddedConfig, ensure_signing_key, rotate_signing_key,
};
pub use introspection::IntrospectionVerifier;
pub use jwks::{JwksCache, JwksLoader, fetch_counts as key_fetch_counts};
pub use jwt::JwtVerifier;
pub use metadata::MetadataCache;
pub use oidc::{OidcAuthorizationServer, OidcConfig};
pub use scalekit::ScalekitAuthorizationServer;
