//! Liveness and readiness probes.

use std::sync::Arc;

use poem_openapi::{ApiResponse, Object, OpenApi, Tags, payload::Json};

use crate::domain::audit::{AuditLog, AuditSink};

#[derive(Tags)]
enum ApiTags {
    /// Probes for orchestrators and load balancers.
    Health,
}

/// The probes; readiness asks the audit store whether it can be written and the audit writer
/// whether it keeps up, and says how requests are authenticated.
pub struct HealthApi {
    audit: Arc<dyn AuditLog>,
    writer: AuditSink,
    auth: &'static str,
}

impl HealthApi {
    /// Probes backed by `audit` and the writer behind `writer`; `auth` is the authentication
    /// mode (`disabled` when off).
    pub fn new(audit: Arc<dyn AuditLog>, writer: AuditSink, auth: &'static str) -> Self {
        Self {
            audit,
            writer,
            auth,
        }
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
    /// The audit writer, for readiness: `ok`, `failing` (its writes have failed for more than
    /// a few seconds) or `queue_full` (over 90% of its queue is in use).
    #[oai(skip_serializing_if_is_none)]
    audit_writer: Option<String>,
    /// How MCP requests are authenticated, for readiness: `oidc`, `scalekit`, or `disabled`.
    #[oai(skip_serializing_if_is_none)]
    auth: Option<String>,
}

impl poem_openapi::types::Example for HealthStatus {
    fn example() -> Self {
        Self {
            status: "ready".into(),
            database: Some("ok".into()),
            audit_writer: Some("ok".into()),
            auth: Some("oidc".into()),
        }
    }
}

/// Readiness results.
#[derive(ApiResponse)]
pub enum Readiness {
    /// The database is reachable and writable, and the audit writer keeps up.
    #[oai(status = 200)]
    Ready(Json<HealthStatus>),
    /// The database cannot be written, or the audit writer has been failing or its queue is
    /// nearly full: audited requests would wait, then be refused.
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
            audit_writer: None,
            auth: None,
        })
    }

    /// Readiness: the audit trail can be stored and the audit writer keeps up.
    ///
    /// 503 while the database cannot be written, while the audit writer's writes have been
    /// failing for more than a few seconds, or while over 90% of its queue is in use.
    #[oai(path = "/readyz", method = "get", operation_id = "readyz")]
    async fn readyz(&self) -> Readiness {
        let database = match self.audit.check().await {
            Ok(()) => "ok",
            Err(error) => {
                tracing::warn!(error = %error, "readiness check failed: the database");
                "unavailable"
            }
        };
        let health = self.writer.health();
        let writer = health.problem().unwrap_or("ok");
        if writer != "ok" {
            tracing::warn!(
                problem = writer,
                depth = health.depth,
                capacity = health.capacity,
                failing_secs = health.failing_for.map(|f| f.as_secs()),
                "readiness check failed: the audit writer"
            );
        }
        let status = HealthStatus {
            status: if database == "ok" && writer == "ok" {
                "ready"
            } else {
                "unavailable"
            }
            .into(),
            database: Some(database.into()),
            audit_writer: Some(writer.into()),
            auth: Some(self.auth.into()),
        };
        if status.status == "ready" {
            Readiness::Ready(Json(status))
        } else {
            Readiness::Unavailable(Json(status))
        }
    }
}
