//! searchgate: a self-hosted MCP server that gives AI agents web search behind OAuth 2.1.
//!
//! The crate is a library plus a thin binary. The library is also a framework: build an
//! [`startup::Searchgate`] with your own implementations of the ports in [`domain`] and serve them
//! with everything else unchanged.

/// Outbound adapters: the concrete search providers and stores behind the domain ports.
pub mod adapters;
/// The command-line interface of the `searchgate` binary.
pub mod cli;
/// Layered, validated settings (defaults → TOML → environment).
pub mod config;
/// The core: types, rules and ports; no framework or driver crates.
pub mod domain;
/// The plain HTTP surface (poem + poem-openapi) and the MCP endpoint's transport guards.
pub mod http;
/// The MCP server (rmcp): tool definitions, argument parsing and result mapping.
pub mod mcp;
/// The composition root: names the concrete adapters, builds and runs the server.
pub mod startup;
/// Tracing subscriber set-up (human-readable or JSON).
pub mod telemetry;
