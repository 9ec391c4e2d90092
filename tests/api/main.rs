//! Integration tests: the real server on 127.0.0.1:0 (in process, or the real binary), driven
//! by real clients over loopback. One test binary, one module per behaviour.

mod audit;
mod audit_outage;
mod backends;
mod bad_input;
mod bearer_answers;
mod binary;
mod budgets;
mod client_policy;
mod clients;
mod connections;
mod consent;
mod dashboard;
mod deploy;
mod doctor;
mod embedded;
mod framework;
mod gaps;
mod health;
mod helpers;
mod hostile_bodies;
mod idp;
mod jwks;
mod mcp_flow;
mod oidc;
mod openapi;
mod operations;
mod proxies;
mod python_client;
mod registration;
mod replicas;
mod scalekit;
mod stores;
mod tavily;
mod tls;
mod traces;
