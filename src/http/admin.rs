//! The admin API under `/api/v1`, for operators: registered clients (list, show, deny). Every
//! operation needs a token with the admin scope (`auth.admin_scope`); with authentication off
//! it is refused.

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
    audit::{AuditEvent, AuditSink, Outcome},
    auth::{AuthorizationServer, Principal, ScopePolicy},
    clients::{ClientPolicy, ClientRow, ClientStore},
};

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
            source: row.source,
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
}

impl AdminGuard {
    async fn check(&self, req: &Request) -> poem::Result<Principal> {
        let Some(auth) = &self.auth else {
            return Err(poem::Error::from_string(
                "the admin API needs authentication; it is off (auth.provider = none)",
                StatusCode::FORBIDDEN,
            ));
        };
        let principal = authenticate(
            auth.as_ref(),
            &self.challenge,
            req.headers(),
            req.uri().query(),
        )
        .await
        .map_err(poem::Error::from_response)?;
        if !self
            .scopes
            .satisfies(&principal.scopes, std::slice::from_ref(&self.scope))
        {
            return Err(poem::Error::from_response(insufficient_scope(
                &self.challenge,
                &self.scope,
                "this operation needs the admin scope",
            )));
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
}

impl AdminApi {
    /// Operations on `store`, guarded by `guard`; denials also go to `policy` at once.
    pub fn new(
        guard: AdminGuard,
        store: Option<Arc<dyn ClientStore>>,
        policy: Option<ClientPolicy>,
        audit: AuditSink,
    ) -> Self {
        Self {
            guard,
            store,
            policy,
            audit,
        }
    }
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
        self.guard.check(req).await?;
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
        Ok(match store.list(cursor.0.as_deref(), limit).await {
            Ok(page) => ListResponse::Ok(Json(ClientList {
                clients: page.clients.into_iter().map(ClientView::from).collect(),
                next_cursor: page.next_cursor,
            })),
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "cannot list clients");
                ListResponse::Unavailable(error("unavailable", "the client store cannot be read"))
            }
        })
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
        self.guard.check(req).await?;
        let Some(store) = &self.store else {
            return Ok(ClientResponse::Unavailable(no_store()));
        };
        Ok(match store.client(&client_id.0).await {
            Ok(Some(row)) => ClientResponse::Ok(Json(row.into())),
            Ok(None) => ClientResponse::NotFound(error("not_found", "no such client")),
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "cannot read a client");
                ClientResponse::Unavailable(error("unavailable", "the client store cannot be read"))
            }
        })
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
        let admin = self.guard.check(req).await?;
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
        let request_id = req
            .extensions()
            .get::<RequestId>()
            .map(|r| r.0.clone())
            .unwrap_or_default();
        let mut event = AuditEvent::action(request_id, "admin/clients.deny", outcome, status);
        event.subject = Some(admin.subject);
        event.client_id = Some(client_id.0);
        event.issuer = Some(admin.issuer);
        event.token_hash_prefix = Some(admin.token_hash_prefix).filter(|h| !h.is_empty());
        event.source_addr = req
            .remote_addr()
            .as_socket_addr()
            .map(|a| a.ip().to_string());
        self.audit.record(event).await;
        Ok(response)
    }
}

fn no_store() -> Json<AdminError> {
    error("unavailable", "this server keeps no client store")
}
