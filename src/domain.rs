//! The core of searchgate: domain types with validating constructors, the rules that apply to
//! them, and the ports (traits) that outbound adapters implement.
//!
//! Nothing here depends on poem, rmcp, sqlx or reqwest; adapters translate to and from these
//! types at their seams.

/// Audit events and the `AuditLog` port, plus the batched writer in front of it.
pub mod audit;
/// Bearer tokens, principals, scopes and the `AuthorizationServer` port.
pub mod auth;
/// OAuth client metadata and the `ClientRegistry` port.
pub mod clients;
/// The embedded authorization server's keys, clients and grants, and the `IssuerStore` port.
pub mod issuer;
/// Search requests and results and the `SearchProvider` port.
pub mod search;
/// Time as the domain records and stores it.
pub mod time;
