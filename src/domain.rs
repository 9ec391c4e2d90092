//! The core of searchgate: domain types with validating constructors, the rules that apply to
//! them, and the ports (traits) that outbound adapters implement.
//!
//! Nothing here depends on poem, rmcp, sqlx or reqwest; adapters translate to and from these
//! types at their seams.
//!
//! # Crates the domain may use
//!
//! This is the architecture rule of the core, and `.ci/run` checks it (reading this list): a file
//! under `src/domain` uses `std`, `core`, the domain itself (`crate::domain`, `super`, `self`)
//! and only these crates. Anything else (a framework, a driver, an outer layer of this crate)
//! belongs in an adapter. Adding a crate here is a design decision: say why in its line.
//!
//! - `anyhow`: the `Unexpected` variant of each error enum
//! - `async_trait`: the ports
//! - `chrono`: reading RFC 3339 times (audit filters)
//! - `fastrand`: jitter for retry backoff
//! - `governor`: per-caller rate limits
//! - `moka`: the verified-token and search-result caches
//! - `serde`: claims and client metadata as they arrive
//! - `serde_json`: JSON kept as it is (the IdP's metadata)
//! - `sha2`: token fingerprints
//! - `thiserror`: the error enums
//! - `tokio`: its `sync`, `time` and `task` parts only (channels, locks, timers, background
//!   tasks); never its I/O (`net`, `fs`, `io`, `process`, `signal`)
//! - `tokio_util`: cancelling background tasks
//! - `tracing`: reporting what a background task cannot return
//! - `url`: URLs in client metadata and page requests
//! - `futures`: tests only
//! - `mockall`: tests only (the ports' mocks)
//! - `proptest`: tests only (properties of the parsers that face the network)

/// Audit events and the `AuditLog` port, plus the batched writer in front of it.
pub mod audit;

/// The tracing target of the spans made for OpenTelemetry traces only (`searchgate::otel`):
/// the log layer leaves them out, so logs read as they would without them, and when no OTLP
/// exporter is configured no layer takes them, so creating one costs a disabled-callsite check.
/// Their fields use the OpenTelemetry semantic-convention names.
pub const TRACE_TARGET: &str = "searchgate::otel";
/// Bearer tokens, principals, scopes and the `AuthorizationServer` port.
pub mod auth;
/// Daily budgets shared by replicas, and the `BudgetStore` port.
pub mod budget;
/// OAuth client metadata and the `ClientRegistry` port.
pub mod clients;
/// The embedded authorization server's keys, clients and grants, and the `IssuerStore` port.
pub mod issuer;
/// The per-key rate limit shared by the web tools and client registration.
pub mod rate_limit;
/// Search requests and results and the `SearchProvider` port.
pub mod search;
/// Time as the domain records and stores it.
pub mod time;
