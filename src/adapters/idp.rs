//! Identity-provider adapters: they fetch keys, metadata and introspection answers and decode
//! tokens; the core `TokenPolicy` decides what is accepted.

mod introspection;
mod jwks;
mod jwt;
mod metadata;
mod oidc;
mod scalekit;

pub use introspection::IntrospectionVerifier;
pub use jwks::JwksCache;
pub use jwt::JwtVerifier;
pub use metadata::MetadataCache;
pub use oidc::{OidcAuthorizationServer, OidcConfig};
pub use scalekit::ScalekitAuthorizationServer;
