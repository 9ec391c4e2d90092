//! Liveness and readiness probes.

use std::sync::Arc;

use poem_openapi::{ApiResponse, Object, OpenApi, Tags, payload::Json};

use crate::domain::audit::AuditLog;

#[derive(Tags)]
enum ApiTags {
    /// Probes for orchestrators and load balancers.
    Health,
}

/// The probes; readiness asks the audit store whether it can be written and says how requests
/// are authenticated.
pub struct HealthApi {
    audit: Arc<dyn AuditLog>,
    auth: &'static str,
}

impl HealthApi {
    /// Probes backed by `audit`; `auth` is the authentication mode (`disabled` when off).
    pub fn new(audit: Arc<dyn AuditLog>, auth: &'static str) -> Self {
        Self { audit, auth }
    }
}

/// A probe's answer.
#[derive(Debug, Object)]
#[oai(example = true)]
pub struct HealthStatus {
    /// `ok`, `ready` or `unavailable`.
    status: String,
    /// The database, for readiness: `ok` or `unavailable`.
    #[oai(skip_serializing_if_is_none)]
    database: Option<String>,
    /// How MCP requests are authenticated, for readiness: `oidc`, `scalekit`, or `disabled`.
    #[oai(skip_serializing_if_is_none)]
    auth: Option<String>,
}

impl poem_openapi::types::Example for HealthStatus {
    fn example() -> Self {
        Self {
            status: "ready".into(),
            database: Some("ok".into()),
            auth: Some("oidc".into()),
        }
    }
}

/// Readiness results.
#[derive(ApiResponse)]
pub enum Readiness {
    /// The database is reachable and writable.
    #[oai(status = 200)]
    Ready(Json<HealthStatus>),
    /// The database cannot be written; audit events would queue up.
    #[oai(status = 503)]
    Unavailable(Json<HealthStatus>),
}

#[OpenApi(tag = "ApiTags::Health")]
impl HealthApi {
    /// Liveness: the process is up and serving HTTP.
    #[oai(path = "/healthz", method = "get", operation_id = "healthz")]
    async fn healthz(&self) -> Json<HealthStatus> {
        Json(HealthStatus {
            status: "ok".into(),
            database: None,
            auth: None,
        })
    }

    /// Readiness: the database that holds the audit trail is reachable and writable.
    #[oai(path = "/readyz", method = "get", operation_id = "readyz")]
    async fn readyz(&self) -> Readiness {
        match self.audit.check().await {
            Ok(()) => Readiness::Ready(Json(HealthStatus {
                status: "ready".into(),
                database: Some("ok".into()),
                auth: Some(self.auth.into()),
            })),
            Err(error) => {
                tracing::warn!(error = %error, "readiness check failed");
                Readiness::Unavailable(Json(HealthStatus {
                    status: "unavailable".into(),
                    database: Some("unavailable".into()),
                    auth: Some(self.auth.into()),
                }))
            }
        }
    }
}
