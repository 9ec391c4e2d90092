//! Outbound adapters: they implement the domain ports with real technology and translate driver
//! errors into domain errors at the seam. Only `startup` names them.

/// The shared outbound HTTP client.
pub mod http_client;
/// Identity providers: OIDC, Scalekit, and the JWT and introspection machinery they share.
pub mod idp;
/// The guard for fetching URLs a stranger chose: public addresses only.
pub mod public_web;
/// Client registries: the IdP's registration endpoint, or a pre-registered client.
pub mod registration;
/// Search providers.
pub mod search;
/// Storage on SQLite or PostgreSQL: the audit trail, registered clients and the embedded
/// authorization server's keys, clients and grants.
pub mod store;
