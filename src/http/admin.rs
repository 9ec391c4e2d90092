//! The admin API under `/api/v1`, for operators: registered clients (list, show, deny), the
//! audit trail (filtered pages, an NDJSON export, hourly statistics). Every operation needs a
//! token with the admin scope (`auth.admin_scope`); with authentication off it is refused. Every
//! operation is itself audited.

use std::sync::Arc;

use poem::{Request, http::StatusCode};
use poem_openapi::{
    ApiResponse, Object, OpenApi, Tags,
    param::{Path, Query},
    payload::Json,
};

use super::{
    RequestId,
    bearer::{Challenge, authenticate, insufficient_scope},
};
use crate::domain::{
    audit::{AuditEvent, AuditLog, AuditQuery, AuditSink, Outcome, StoredEvent, parse_filter_time},
    auth::{AuthorizationServer, Principal, ScopePolicy},
    clients::{ClientCursor, ClientPolicy, ClientRow, ClientStore},
};

use std::time::{Duration, SystemTime};

use chrono::{DateTime, SecondsFormat, Utc};

use futures::StreamExt;
use poem_openapi::payload::Binary;

#[derive(Tags)]
enum ApiTags {
    /// Operator endpoints; they need the admin scope.
    Admin,
}

/// A registered client as the admin API shows it (never its secret).
#[derive(Debug, Object)]
pub struct ClientView {
    /// The client id.
    pub client_id: String,
    /// Its name, when it gave one.
    #[oai(skip_serializing_if_is_none)]
    pub client_name: Option<String>,
    /// Its redirect URIs.
    pub redirect_uris: Vec<String>,
    /// Its grant types.
    pub grant_types: Vec<String>,
    /// How it authenticates at the token endpoint.
    pub token_endpoint_auth_method: String,
    /// Which registry issued it: `upstream`, `static` or `embedded`.
    pub source: String,
    /// When it registered (Unix seconds).
    pub created_at: i64,
    /// When a token naming it was last used (Unix seconds; recorded in batches).
    #[oai(skip_serializing_if_is_none)]
    pub last_seen_at: Option<i64>,
    /// When an operator denied it (Unix seconds); its tokens get 403 from then on.
    #[oai(skip_serializing_if_is_none)]
    pub denied_at: Option<i64>,
}

impl From<ClientRow> for ClientView {
    fn from(row: ClientRow) -> Self {
        Self {
            client_id: row.client_id,
            client_name: row.client_name,
            redirect_uris: row.redirect_uris,
            grant_types: row.grant_types,
            token_endpoint_auth_method: row.token_endpoint_auth_method,
            source: row.source.as_str().to_owned(),
            created_at: row.created_at,
            last_seen_at: row.last_seen_at,
            denied_at: row.denied_at,
        }
    }
}

/// A page of clients.
#[derive(Debug, Object)]
pub struct ClientList {
    /// Oldest first.
    pub clients: Vec<ClientView>,
    /// Pass as `cursor` for the next page; absent on the last.
    #[oai(skip_serializing_if_is_none)]
    pub next_cursor: Option<String>,
}

/// An error body.
#[derive(Debug, Object)]
pub struct AdminError {
    /// A snake_case code.
    pub error: String,
    /// What happened.
    pub error_description: String,
}

fn error(code: &str, description: impl Into<String>) -> Json<AdminError> {
    Json(AdminError {
        error: code.to_owned(),
        error_description: description.into(),
    })
}

/// Answers with a list.
#[derive(ApiResponse)]
pub enum ListResponse {
    /// A page of clients.
    #[oai(status = 200)]
    Ok(Json<ClientList>),
    /// `limit` is out of range.
    #[oai(status = 400)]
    BadRequest(Json<AdminError>),
    /// The store cannot be read.
    #[oai(status = 503)]
    Unavailable(Json<AdminError>),
}

/// Answers about one client.
#[derive(ApiResponse)]
pub enum ClientResponse {
    /// The client.
    #[oai(status = 200)]
    Ok(Json<ClientView>),
    /// No such client.
    #[oai(status = 404)]
    NotFound(Json<AdminError>),
    /// The store cannot be read.
    #[oai(status = 503)]
    Unavailable(Json<AdminError>),
}

/// Answers to a denial.
#[derive(ApiResponse)]
pub enum DenyResponse {
    /// Denied: its tokens are refused with 403 from now on.
    #[oai(status = 204)]
    Denied,
    /// No such client.
    #[oai(status = 404)]
    NotFound(Json<AdminError>),
    /// The store cannot be written.
    #[oai(status = 503)]
    Unavailable(Json<AdminError>),
}

/// Who may use the admin API.
pub struct AdminGuard {
    /// The verifier; `None` when authentication is off (then nothing passes).
    pub auth: Option<Arc<dyn AuthorizationServer>>,
    /// The admin scope.
    pub scope: String,
    /// Applies scope implications.
    pub scopes: Arc<ScopePolicy>,
    /// The challenge parameters.
    pub challenge: Challenge,
    /// The client policy: a denied client's tokens are refused here too.
    pub policy: Option<ClientPolicy>,
}

impl AdminGuard {
    /// The admin, or the refusal with its audit reason code when it is not the status's usual.
    async fn check(&self, req: &Request) -> Result<Principal, (poem::Error, Option<&'static str>)> {
        let Some(auth) = &self.auth else {
            return Err((
                poem::Error::from_string(
                    "the admin API needs authentication; it is off (auth.provider = none)",
                    StatusCode::FORBIDDEN,
                ),
                Some("admin_unavailable"),
            ));
        };
        let principal = authenticate(
            auth.as_ref(),
            &self.challenge,
            req.headers(),
            req.uri().query(),
        )
        .await
        .map_err(|response| (poem::Error::from_response(response), None))?;
        if let (Some(policy), Some(client_id)) = (&self.policy, &principal.client_id)
            && !policy.allows_client(client_id)
        {
            return Err((
                poem::Error::from_response(self.challenge.response(
                    StatusCode::FORBIDDEN,
                    Some((
                        "access_denied",
                        "this client is not allowed to use this server; ask its operator",
                    )),
                    &self.scope,
                )),
                Some("client_denied"),
            ));
        }
        if !self
            .scopes
            .satisfies(&principal.scopes, std::slice::from_ref(&self.scope))
        {
            return Err((
                poem::Error::from_response(insufficient_scope(
                    &self.challenge,
                    &self.scope,
                    "this operation needs the admin scope",
                )),
                None,
            ));
        }
        Ok(principal)
    }
}

/// The admin API.
pub struct AdminApi {
    guard: AdminGuard,
    store: Option<Arc<dyn ClientStore>>,
    policy: Option<ClientPolicy>,
    audit: AuditSink,
    log: Option<Arc<dyn AuditLog>>,
}

impl AdminApi {
    /// Operations on `store` and `log`, guarded by `guard`; denials also go to `policy` at
    /// once; admin actions are recorded through `audit`.
    pub fn new(
        guard: AdminGuard,
        store: Option<Arc<dyn ClientStore>>,
        policy: Option<ClientPolicy>,
        audit: AuditSink,
        log: Option<Arc<dyn AuditLog>>,
    ) -> Self {
        Self {
            guard,
            store,
            policy,
            audit,
            log,
        }
    }

    /// The admin behind `req`, or the refusal to send, which is audited as an authentication
    /// failure (`admin/denied`) with its status.
    async fn admit(&self, req: &Request) -> poem::Result<Principal> {
        match self.guard.check(req).await {
            Ok(admin) => Ok(admin),
            Err((refusal, reason)) => {
                let status = refusal.status().as_u16();
                let (outcome, code) = match status {
                    401 => (Outcome::Unauthenticated, "admin_unauthenticated"),
                    403 => (Outcome::Forbidden, "admin_scope_missing"),
                    400 => (Outcome::Rejected, "malformed_authorization"),
                    _ => (Outcome::Failed, "idp_unavailable"),
                };
                let request_id = req
                    .extensions()
                    .get::<RequestId>()
                    .map(|r| r.0.clone())
                    .unwrap_or_default();
                let mut event = AuditEvent::action(request_id, "admin/denied", outcome, status);
                event.error_code = Some(reason.unwrap_or(code).to_owned());
                event.source_addr = req
                    .remote_addr()
                    .as_socket_addr()
                    .map(|a| a.ip().to_string());
                self.audit.record(event).await;
                Err(refusal)
            }
        }
    }

    /// Records an admin action.
    async fn record(
        &self,
        req: &Request,
        admin: &Principal,
        action: &str,
        status: u16,
        outcome: Outcome,
        client_id: Option<String>,
    ) {
        let request_id = req
            .extensions()
            .get::<RequestId>()
            .map(|r| r.0.clone())
            .unwrap_or_default();
        let mut event = AuditEvent::action(request_id, action, outcome, status);
        event.subject = Some(admin.subject.clone());
        event.client_id = client_id.or_else(|| admin.client_id.clone());
        event.issuer = Some(admin.issuer.clone());
        event.token_hash_prefix = Some(admin.token_hash_prefix.clone()).filter(|h| !h.is_empty());
        event.source_addr = req
            .remote_addr()
            .as_socket_addr()
            .map(|a| a.ip().to_string());
        self.audit.record(event).await;
    }
}

/// One audit event as the admin API shows it.
#[derive(Debug, Object)]
pub struct AuditEventView {
    /// Its position in the log; pages continue after it.
    pub id: i64,
    /// When (RFC 3339, UTC).
    pub occurred_at: String,
    /// The request id (`x-request-id`).
    pub request_id: String,
    /// The JSON-RPC method, or the action (`oauth/register`, `admin/…`).
    #[oai(skip_serializing_if_is_none)]
    pub method: Option<String>,
    /// The tool called.
    #[oai(skip_serializing_if_is_none)]
    pub tool: Option<String>,
    /// `success`, `tool_error`, `protocol_error`, `rejected`, `unauthenticated`, `forbidden`
    /// or `failed`.
    pub outcome: String,
    /// The HTTP status answered.
    pub http_status: u16,
    /// Why it did not succeed.
    #[oai(skip_serializing_if_is_none)]
    pub error_code: Option<String>,
    /// How long it took, in milliseconds.
    pub latency_ms: f64,
    /// Who (the token's subject).
    #[oai(skip_serializing_if_is_none)]
    pub subject: Option<String>,
    /// Through which client.
    #[oai(skip_serializing_if_is_none)]
    pub client_id: Option<String>,
    /// The token's issuer.
    #[oai(skip_serializing_if_is_none)]
    pub issuer: Option<String>,
    /// The first hex digits of the token's SHA-256 (never the token).
    #[oai(skip_serializing_if_is_none)]
    pub token_hash_prefix: Option<String>,
    /// From where.
    #[oai(skip_serializing_if_is_none)]
    pub source_addr: Option<String>,
    /// The search backend used.
    #[oai(skip_serializing_if_is_none)]
    pub provider: Option<String>,
    /// Whether the result cache answered.
    #[oai(skip_serializing_if_is_none)]
    pub cache_hit: Option<bool>,
    /// Upstream requests made (retries included).
    #[oai(skip_serializing_if_is_none)]
    pub upstream_attempts: Option<u32>,
    /// The backend's request id.
    #[oai(skip_serializing_if_is_none)]
    pub upstream_request_id: Option<String>,
    /// What was searched for (200 characters at most), unless `audit.record_queries` is off.
    #[oai(skip_serializing_if_is_none)]
    pub query_summary: Option<String>,
}

impl From<StoredEvent> for AuditEventView {
    fn from(stored: StoredEvent) -> Self {
        let e = stored.event;
        Self {
            id: stored.id,
            occurred_at: rfc3339(e.occurred_at),
            request_id: e.request_id,
            method: e.method,
            tool: e.tool,
            outcome: e.outcome.as_str().to_owned(),
            http_status: e.http_status,
            error_code: e.error_code,
            latency_ms: e.latency.as_secs_f64() * 1000.0,
            subject: e.subject,
            client_id: e.client_id,
            issuer: e.issuer,
            token_hash_prefix: e.token_hash_prefix,
            source_addr: e.source_addr,
            provider: e.provider,
            cache_hit: e.cache_hit,
            upstream_attempts: e.upstream_attempts,
            upstream_request_id: e.upstream_request_id,
            query_summary: e.query_summary,
        }
    }
}

/// A page of audit events.
#[derive(Debug, Object)]
pub struct AuditList {
    /// Oldest first.
    pub events: Vec<AuditEventView>,
    /// Pass as `cursor` for the next page; absent on the last.
    #[oai(skip_serializing_if_is_none)]
    pub next_cursor: Option<String>,
}

/// Events of one hour, tool and outcome.
#[derive(Debug, Object)]
pub struct HourlyStat {
    /// The hour's start (RFC 3339, UTC).
    pub hour: String,
    /// The tool (absent for requests that called none).
    #[oai(skip_serializing_if_is_none)]
    pub tool: Option<String>,
    /// The outcome.
    pub outcome: String,
    /// How many.
    pub count: u64,
}

/// Hourly statistics.
#[derive(Debug, Object)]
pub struct Stats {
    /// The window's start (RFC 3339).
    pub since: String,
    /// The window's end (RFC 3339).
    pub until: String,
    /// One entry per hour, tool and outcome that had events.
    pub hours: Vec<HourlyStat>,
}

/// Answers with audit events.
#[derive(ApiResponse)]
pub enum AuditResponse {
    /// A page of events.
    #[oai(status = 200)]
    Ok(Json<AuditList>),
    /// A filter cannot be read.
    #[oai(status = 400)]
    BadRequest(Json<AdminError>),
    /// The audit store cannot be read.
    #[oai(status = 503)]
    Unavailable(Json<AdminError>),
}

/// Answers with an export.
#[derive(ApiResponse)]
pub enum ExportResponse {
    /// Every matching event, one JSON object per line, oldest first.
    #[oai(status = 200, content_type = "application/x-ndjson")]
    Ok(Binary<poem::Body>),
    /// A filter cannot be read.
    #[oai(status = 400)]
    BadRequest(Json<AdminError>),
    /// The audit store cannot be read.
    #[oai(status = 503)]
    Unavailable(Json<AdminError>),
}

/// Answers with statistics.
#[derive(ApiResponse)]
pub enum StatsResponse {
    /// Counts per hour, tool and outcome.
    #[oai(status = 200)]
    Ok(Json<Stats>),
    /// A time cannot be read.
    #[oai(status = 400)]
    BadRequest(Json<AdminError>),
    /// The audit store cannot be read.
    #[oai(status = 503)]
    Unavailable(Json<AdminError>),
}

fn rfc3339(at: SystemTime) -> String {
    DateTime::<Utc>::from(at).to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// An RFC 3339 time or Unix seconds.
fn parse_time(name: &str, value: Option<&str>) -> Result<Option<SystemTime>, Json<AdminError>> {
    let Some(value) = value.filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    parse_filter_time(value).map(Some).ok_or(()).map_err(|_| {
        error(
            "invalid_request",
            format!("{name} must be an RFC 3339 time (2026-11-26T19:00:00Z) or Unix seconds"),
        )
    })
}

/// The filters of `GET /audit` and `GET /audit/export`.
#[allow(clippy::too_many_arguments)]
fn audit_query(
    since: Option<&str>,
    until: Option<&str>,
    subject: Option<String>,
    client_id: Option<String>,
    tool: Option<String>,
    outcome: Option<String>,
    cursor: Option<&str>,
    limit: u32,
) -> Result<AuditQuery, Json<AdminError>> {
    let after = match cursor.filter(|c| !c.is_empty()) {
        None => None,
        Some(c) => Some(
            c.parse::<i64>()
                .map_err(|_| error("invalid_request", "cursor must be a next_cursor value"))?,
        ),
    };
    Ok(AuditQuery {
        since: parse_time("since", since)?,
        until: parse_time("until", until)?,
        subject,
        client_id,
        tool,
        outcome: outcome
            .as_deref()
            .map(str::parse::<Outcome>)
            .transpose()
            .map_err(|e| error("invalid_request", e.to_string()))?,
        after,
        limit,
    })
}

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Admin")]
impl AdminApi {
    /// Lists registered clients, oldest first, `limit` at a time (1–500, default 50).
    #[oai(path = "/clients", method = "get", operation_id = "list_clients")]
    async fn list_clients(
        &self,
        req: &Request,
        /// At most this many (1–500).
        limit: Query<Option<u32>>,
        /// `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
    ) -> poem::Result<ListResponse> {
        let admin = self.admit(req).await?;
        let limit = limit.0.unwrap_or(50);
        if !(1..=500).contains(&limit) {
            return Ok(ListResponse::BadRequest(error(
                "invalid_request",
                "limit must be between 1 and 500",
            )));
        }
        let Some(store) = &self.store else {
            return Ok(ListResponse::Unavailable(no_store()));
        };
        let cursor = match cursor.0.as_deref().filter(|c| !c.is_empty()) {
            None => None,
            Some(text) => match ClientCursor::parse(text) {
                Some(cursor) => Some(cursor),
                None => {
                    return Ok(ListResponse::BadRequest(error(
                        "invalid_request",
                        "cursor must be a next_cursor value from a previous page",
                    )));
                }
            },
        };
        let answer = match store.list(cursor.as_ref(), limit).await {
            Ok(page) => ListResponse::Ok(Json(ClientList {
                clients: page.clients.into_iter().map(ClientView::from).collect(),
                next_cursor: page.next_cursor,
            })),
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "cannot list clients");
                ListResponse::Unavailable(error("unavailable", "the client store cannot be read"))
            }
        };
        let (status, outcome) = match &answer {
            ListResponse::Ok(_) => (200, Outcome::Success),
            ListResponse::Unavailable(_) => (503, Outcome::Failed),
            _ => (400, Outcome::Rejected),
        };
        self.record(req, &admin, "admin/clients.list", status, outcome, None)
            .await;
        Ok(answer)
    }

    /// One registered client.
    #[oai(
        path = "/clients/:client_id",
        method = "get",
        operation_id = "get_client"
    )]
    async fn get_client(
        &self,
        req: &Request,
        /// The client id.
        client_id: Path<String>,
    ) -> poem::Result<ClientResponse> {
        let admin = self.admit(req).await?;
        let Some(store) = &self.store else {
            return Ok(ClientResponse::Unavailable(no_store()));
        };
        let answer = match store.client(&client_id.0).await {
            Ok(Some(row)) => ClientResponse::Ok(Json(row.into())),
            Ok(None) => ClientResponse::NotFound(error("not_found", "no such client")),
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "cannot read a client");
                ClientResponse::Unavailable(error("unavailable", "the client store cannot be read"))
            }
        };
        let (status, outcome) = match &answer {
            ClientResponse::Ok(_) => (200, Outcome::Success),
            ClientResponse::Unavailable(_) => (503, Outcome::Failed),
            ClientResponse::NotFound(_) => (404, Outcome::Rejected),
        };
        self.record(req, &admin, "admin/clients.get", status, outcome, None)
            .await;
        Ok(answer)
    }

    /// Denies a client: from now on its tokens get 403 (on every replica within 30 s). The
    /// row stays, so the denial and its history remain visible.
    #[oai(
        path = "/clients/:client_id",
        method = "delete",
        operation_id = "deny_client"
    )]
    async fn deny_client(
        &self,
        req: &Request,
        /// The client id.
        client_id: Path<String>,
    ) -> poem::Result<DenyResponse> {
        let admin = self.admit(req).await?;
        let Some(store) = &self.store else {
            return Ok(DenyResponse::Unavailable(no_store()));
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        let (response, status, outcome) = match store.deny(&client_id.0, now).await {
            Ok(true) => {
                if let Some(policy) = &self.policy {
                    policy.deny(&client_id.0);
                }
                tracing::info!(client_id = %client_id.0, by = %admin.subject, "denied a client");
                (DenyResponse::Denied, 204, Outcome::Success)
            }
            Ok(false) => (
                DenyResponse::NotFound(error("not_found", "no such client")),
                404,
                Outcome::Rejected,
            ),
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "cannot deny a client");
                (
                    DenyResponse::Unavailable(error(
                        "unavailable",
                        "the client store cannot be written",
                    )),
                    503,
                    Outcome::Failed,
                )
            }
        };
        self.record(
            req,
            &admin,
            "admin/clients.deny",
            status,
            outcome,
            Some(client_id.0),
        )
        .await;
        Ok(response)
    }

    /// Audit events, oldest first, filtered; `limit` per page (1–1000, default 100). Times are
    /// RFC 3339 or Unix seconds; `until` is exclusive.
    #[allow(clippy::too_many_arguments)]
    #[oai(path = "/audit", method = "get", operation_id = "list_audit_events")]
    async fn list_audit(
        &self,
        req: &Request,
        /// At or after this time.
        since: Query<Option<String>>,
        /// Before this time.
        until: Query<Option<String>>,
        /// The caller's subject.
        subject: Query<Option<String>>,
        /// The caller's client id.
        client_id: Query<Option<String>>,
        /// The tool.
        tool: Query<Option<String>>,
        /// The outcome.
        outcome: Query<Option<String>>,
        /// `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
        /// At most this many (1–1000).
        limit: Query<Option<u32>>,
    ) -> poem::Result<AuditResponse> {
        let admin = self.admit(req).await?;
        let limit = limit.0.unwrap_or(100);
        let answer = if !(1..=1000).contains(&limit) {
            AuditResponse::BadRequest(error("invalid_request", "limit must be between 1 and 1000"))
        } else {
            match audit_query(
                since.0.as_deref(),
                until.0.as_deref(),
                subject.0,
                client_id.0,
                tool.0,
                outcome.0,
                cursor.0.as_deref(),
                limit,
            ) {
                Err(bad) => AuditResponse::BadRequest(bad),
                Ok(query) => match &self.log {
                    None => AuditResponse::Unavailable(no_log()),
                    Some(log) => match log.query(&query).await {
                        Ok(page) => AuditResponse::Ok(Json(AuditList {
                            events: page.events.into_iter().map(AuditEventView::from).collect(),
                            next_cursor: page.next.map(|n| n.to_string()),
                        })),
                        Err(e) => {
                            tracing::error!(error = %e, "cannot query the audit trail");
                            AuditResponse::Unavailable(error("unavailable", e.to_string()))
                        }
                    },
                },
            }
        };
        let (status, outcome) = match &answer {
            AuditResponse::Ok(_) => (200, Outcome::Success),
            AuditResponse::BadRequest(_) => (400, Outcome::Rejected),
            AuditResponse::Unavailable(_) => (503, Outcome::Failed),
        };
        self.record(req, &admin, "admin/audit.list", status, outcome, None)
            .await;
        Ok(answer)
    }

    /// Every matching audit event as NDJSON (one JSON object per line), streamed page by page;
    /// the same filters as `GET /audit`.
    #[allow(clippy::too_many_arguments)]
    #[oai(
        path = "/audit/export",
        method = "get",
        operation_id = "export_audit_events"
    )]
    async fn export_audit(
        &self,
        req: &Request,
        /// At or after this time.
        since: Query<Option<String>>,
        /// Before this time.
        until: Query<Option<String>>,
        /// The caller's subject.
        subject: Query<Option<String>>,
        /// The caller's client id.
        client_id: Query<Option<String>>,
        /// The tool.
        tool: Query<Option<String>>,
        /// The outcome.
        outcome: Query<Option<String>>,
    ) -> poem::Result<ExportResponse> {
        let admin = self.admit(req).await?;
        let query = match audit_query(
            since.0.as_deref(),
            until.0.as_deref(),
            subject.0,
            client_id.0,
            tool.0,
            outcome.0,
            None,
            1000,
        ) {
            Ok(query) => query,
            Err(bad) => return Ok(ExportResponse::BadRequest(bad)),
        };
        let Some(log) = self.log.clone() else {
            return Ok(ExportResponse::Unavailable(no_log()));
        };
        // Without `until` the export ends at the time of the request, so it cannot chase rows
        // written while it streams.
        let mut query = query;
        query.until = query.until.or_else(|| Some(SystemTime::now()));
        // The first page is read before answering, so a store that cannot be read gets 503,
        // not a 200 with an error inside.
        let first = match log.query(&query).await {
            Ok(page) => page,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the audit trail for an export");
                self.record(
                    req,
                    &admin,
                    "admin/audit.export",
                    503,
                    Outcome::Failed,
                    None,
                )
                .await;
                return Ok(ExportResponse::Unavailable(error(
                    "unavailable",
                    "the audit trail cannot be read now (the database is unavailable); try again",
                )));
            }
        };
        self.record(
            req,
            &admin,
            "admin/audit.export",
            200,
            Outcome::Success,
            None,
        )
        .await;
        // Later pages are read as the client reads. A failure then writes an error line and
        // aborts the response, so the client sees a truncated transfer, never a clean end.
        let pages = futures::stream::unfold(Some((query, Some(first))), move |state| {
            let log = log.clone();
            async move {
                let (mut query, ready) = state?;
                let page = match ready {
                    Some(page) => Ok(page),
                    None => log.query(&query).await,
                };
                match page {
                    Ok(page) => {
                        let chunk = ndjson(page.events);
                        let next = page.next.map(|after| {
                            query.after = Some(after);
                            (query, None)
                        });
                        Some((Ok::<_, std::io::Error>(bytes::Bytes::from(chunk)), next))
                    }
                    Err(e) => Some((Err(std::io::Error::other(e.to_string())), None)),
                }
            }
        })
        .boxed();
        Ok(ExportResponse::Ok(Binary(poem::Body::from_bytes_stream(
            pages,
        ))))
    }

    /// Calls per hour, tool and outcome between `since` (default: 24 hours ago) and `until`
    /// (default: now).
    #[oai(path = "/stats", method = "get", operation_id = "audit_stats")]
    async fn stats(
        &self,
        req: &Request,
        /// Window start (RFC 3339 or Unix seconds).
        since: Query<Option<String>>,
        /// Window end (RFC 3339 or Unix seconds).
        until: Query<Option<String>>,
    ) -> poem::Result<StatsResponse> {
        let admin = self.admit(req).await?;
        let now = SystemTime::now();
        let window = parse_time("since", since.0.as_deref()).and_then(|s| {
            parse_time("until", until.0.as_deref()).map(|u| {
                let until = u.unwrap_or(now);
                (s.unwrap_or(until - Duration::from_secs(86_400)), until)
            })
        });
        let answer = match (window, &self.log) {
            (Err(bad), _) => StatsResponse::BadRequest(bad),
            (Ok(_), None) => StatsResponse::Unavailable(no_log()),
            (Ok((since, until)), Some(log)) => match log.stats(since, until).await {
                Ok(rows) => StatsResponse::Ok(Json(Stats {
                    since: rfc3339(since),
                    until: rfc3339(until),
                    hours: rows
                        .into_iter()
                        .map(|r| HourlyStat {
                            hour: rfc3339(r.hour),
                            tool: r.tool,
                            outcome: r.outcome,
                            count: r.count,
                        })
                        .collect(),
                })),
                Err(e) => StatsResponse::Unavailable(error("unavailable", e.to_string())),
            },
        };
        let (status, outcome) = match &answer {
            StatsResponse::Ok(_) => (200, Outcome::Success),
            StatsResponse::BadRequest(_) => (400, Outcome::Rejected),
            StatsResponse::Unavailable(_) => (503, Outcome::Failed),
        };
        self.record(req, &admin, "admin/stats", status, outcome, None)
            .await;
        Ok(answer)
    }
}

fn no_log() -> Json<AdminError> {
    error("unavailable", "this server's audit log cannot be queried")
}

fn no_store() -> Json<AdminError> {
    error("unavailable", "this server keeps no client store")
}

/// Events as NDJSON lines.
fn ndjson(events: Vec<StoredEvent>) -> Vec<u8> {
    let mut chunk = Vec::new();
    for event in events {
        let view = AuditEventView::from(event);
        if let Ok(line) = serde_json::to_vec(&poem_openapi::types::ToJSON::to_json(&view)) {
            chunk.extend_from_slice(&line);
            chunk.push(b'\n');
        }
    }
    chunk
}
