//! The admin API under `/api/v1`, for operators: registered clients (list, show, deny), the
//! audit trail (filtered pages, an NDJSON export, hourly statistics). Every operation needs a
//! token with the admin scope (`auth.admin_scope`); with authentication off it is refused. Every
//! operation, and every refusal, is itself audited: [`AdminApi::audited`] does both, so each
//! handler below is only its own logic.

use std::{future::Future, sync::Arc, time::Duration};

use futures::StreamExt;
use poem::Request;
use poem_openapi::{
    ApiResponse, Object, OpenApi, Tags,
    param::{Path, Query},
    payload::{Binary, Json},
};

mod guard;

pub use guard::AdminGuard;

use self::guard::Refusal;
use super::{
    audit_view::{AuditEventView, ndjson, rfc3339},
    error::{ApiError, Reply},
    request_id::action_event,
};
use crate::domain::{
    audit::{AuditLog, AuditQuery, AuditSink, Outcome, UsageGroup, parse_filter_time},
    auth::Principal,
    clients::{ClientCursor, ClientPolicy, ClientRow, ClientStore},
    time::Timestamp,
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
    /// Which registry issued it: `upstream`, `static`, `embedded`, or `cimd` (a Client ID
    /// Metadata Document the embedded authorization server fetched).
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

/// Tool calls, errors and cost of one group in a window.
#[derive(Debug, Object)]
pub struct UsageEntry {
    /// The subject, client, backend or tool (absent for calls without one).
    #[oai(skip_serializing_if_is_none)]
    pub group: Option<String>,
    /// Tool calls.
    pub calls: u64,
    /// Those that did not succeed.
    pub errors: u64,
    /// Backend credits spent, as the backends reported them (Tavily).
    pub credits: f64,
    /// US dollars spent, as the backends reported them (Exa).
    pub cost_usd: f64,
}

/// Usage in a window.
#[derive(Debug, Object)]
pub struct Usage {
    /// The window's start (RFC 3339).
    pub since: String,
    /// The window's end (RFC 3339).
    pub until: String,
    /// What the entries are grouped by.
    pub group_by: String,
    /// One entry per group with calls, most calls first.
    pub groups: Vec<UsageEntry>,
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

/// The answer to a denial.
#[derive(ApiResponse)]
pub enum Denied {
    /// Denied: its tokens are refused with 403 from now on.
    #[oai(status = 204)]
    Denied,
}

/// The answer of an export.
#[derive(ApiResponse)]
pub enum Export {
    /// Every matching event, one JSON object per line, oldest first.
    #[oai(status = 200, content_type = "application/x-ndjson")]
    Ok(Binary<poem::Body>),
}

/// The status of a successful answer, for its audit row.
trait Success {
    /// 200 unless the answer says otherwise.
    const STATUS: u16 = 200;
}

impl<T> Success for Json<T> {}

impl Success for Export {}

impl Success for Denied {
    const STATUS: u16 = 204;
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

    /// Runs `operation` for the admin behind `req` and records it as `action` (naming `target`
    /// as the client acted on, else the admin's own client). A refusal is recorded as
    /// `admin/denied` with its status and sent instead.
    async fn audited<T, F, Fut, const A: u16, const B: u16, const C: u16, const D: u16>(
        &self,
        req: &Request,
        action: &str,
        target: Option<String>,
        operation: F,
    ) -> Reply<T, A, B, C, D>
    where
        T: Success,
        F: FnOnce(Principal) -> Fut,
        Fut: Future<Output = Result<T, ApiError>>,
    {
        let admin = match self.guard.check(req).await {
            Ok(admin) => admin,
            Err(Refusal { answer, reason }) => {
                let status = answer.status().as_u16();
                let (outcome, code) = match status {
                    401 => (Outcome::Unauthenticated, "admin_unauthenticated"),
                    403 => (Outcome::Forbidden, "admin_scope_missing"),
                    400 => (Outcome::Rejected, "malformed_authorization"),
                    _ => (Outcome::Failed, "idp_unavailable"),
                };
                let mut event = action_event(req, "admin/denied", outcome, status);
                event.error_code = Some(reason.unwrap_or(code).to_owned());
                self.audit.record(event).await;
                return Reply::Refused(answer);
            }
        };
        let answer = operation(admin.clone()).await;
        let (status, outcome) = match &answer {
            Ok(_) => (T::STATUS, Outcome::Success),
            Err(error) if error.status() >= 500 => (error.status(), Outcome::Failed),
            Err(error) => (error.status(), Outcome::Rejected),
        };
        let mut event = action_event(req, action, outcome, status);
        event.client_id = target.or(admin.client_id);
        event.subject = Some(admin.subject);
        event.issuer = Some(admin.issuer);
        event.token_hash_prefix = Some(admin.token_hash_prefix).filter(|h| !h.is_empty());
        self.audit.record(event).await;
        answer.into()
    }

    fn store(&self) -> Result<&Arc<dyn ClientStore>, ApiError> {
        self.store.as_ref().ok_or_else(|| {
            ApiError::unavailable("unavailable", "this server keeps no client store")
        })
    }

    fn log(&self) -> Result<&Arc<dyn AuditLog>, ApiError> {
        self.log.as_ref().ok_or_else(|| {
            ApiError::unavailable("unavailable", "this server's audit log cannot be queried")
        })
    }
}

/// A client store failure: logged in full, answered as a generic 503.
fn store_failed(description: &str, error: &anyhow::Error) -> ApiError {
    ApiError::failed("unavailable", description, None, error.as_ref())
}

/// `limit`, or `default`, when a number within 1..=`max`.
fn page_limit(limit: Option<&RawLimit>, default: u32, max: u32) -> Result<u32, ApiError> {
    let limit = match limit {
        None => Some(default),
        Some(RawLimit(text)) => text.parse().ok(),
    };
    match limit {
        Some(limit) if (1..=max).contains(&limit) => Ok(limit),
        _ => Err(ApiError::bad_request(
            "invalid_request",
            format!("limit must be a number between 1 and {max}"),
        )),
    }
}

/// A `limit` query parameter as sent: documented as an integer, but parsed by the operation
/// (see [`page_limit`]), so that a request without a token is answered 401 and audited before
/// a bad value is answered 400.
struct RawLimit(String);

impl poem_openapi::types::Type for RawLimit {
    const IS_REQUIRED: bool = true;
    type RawValueType = u32;
    type RawElementValueType = u32;

    fn name() -> std::borrow::Cow<'static, str> {
        u32::name()
    }

    fn schema_ref() -> poem_openapi::registry::MetaSchemaRef {
        u32::schema_ref()
    }

    fn as_raw_value(&self) -> Option<&u32> {
        None
    }

    fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a u32> + 'a> {
        Box::new(std::iter::empty())
    }
}

impl poem_openapi::types::ParseFromParameter for RawLimit {
    fn parse_from_parameter(value: &str) -> poem_openapi::types::ParseResult<Self> {
        Ok(Self(value.to_owned()))
    }
}

/// An RFC 3339 time or Unix seconds.
fn parse_time(name: &str, value: Option<&str>) -> Result<Option<Timestamp>, ApiError> {
    let Some(value) = value.filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    parse_filter_time(value).map(Some).ok_or_else(|| {
        ApiError::bad_request(
            "invalid_request",
            format!("{name} must be an RFC 3339 time (2026-11-26T19:00:00Z) or Unix seconds"),
        )
    })
}

/// The filters of `GET /audit` and `GET /audit/export`, as given.
struct AuditFilters {
    since: Query<Option<String>>,
    until: Query<Option<String>>,
    subject: Query<Option<String>>,
    client_id: Query<Option<String>>,
    tool: Query<Option<String>>,
    outcome: Query<Option<String>>,
}

impl AuditFilters {
    /// The query for a page of `limit` after `cursor`.
    fn query(self, cursor: Option<&str>, limit: u32) -> Result<AuditQuery, ApiError> {
        let after = match cursor.filter(|c| !c.is_empty()) {
            None => None,
            Some(c) => Some(c.parse::<i64>().map_err(|_| {
                ApiError::bad_request("invalid_request", "cursor must be a next_cursor value")
            })?),
        };
        Ok(AuditQuery {
            since: parse_time("since", self.since.0.as_deref())?,
            until: parse_time("until", self.until.0.as_deref())?,
            subject: self.subject.0,
            client_id: self.client_id.0,
            tool: self.tool.0,
            outcome: self
                .outcome
                .0
                .as_deref()
                .map(str::parse::<Outcome>)
                .transpose()
                .map_err(|e| ApiError::bad_request("invalid_request", e.to_string()))?,
            after,
            limit,
        })
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
        limit: Query<Option<RawLimit>>,
        /// `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
    ) -> Reply<Json<ClientList>, 400, 503> {
        self.audited(req, "admin/clients.list", None, |_| async move {
            let limit = page_limit(limit.0.as_ref(), 50, 500)?;
            let store = self.store()?;
            let cursor = match cursor.0.as_deref().filter(|c| !c.is_empty()) {
                None => None,
                Some(text) => Some(ClientCursor::parse(text).ok_or_else(|| {
                    ApiError::bad_request(
                        "invalid_request",
                        "cursor must be a next_cursor value from a previous page",
                    )
                })?),
            };
            let page = store
                .list(cursor.as_ref(), limit)
                .await
                .map_err(|e| store_failed("the client store cannot be read", &e))?;
            Ok(Json(ClientList {
                clients: page.clients.into_iter().map(ClientView::from).collect(),
                next_cursor: page.next_cursor,
            }))
        })
        .await
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
    ) -> Reply<Json<ClientView>, 404, 503> {
        self.audited(req, "admin/clients.get", None, |_| async move {
            match self.store()?.client(&client_id.0).await {
                Ok(Some(row)) => Ok(Json(row.into())),
                Ok(None) => Err(ApiError::not_found("no such client")),
                Err(e) => Err(store_failed("the client store cannot be read", &e)),
            }
        })
        .await
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
    ) -> Reply<Denied, 404, 503> {
        let client_id = client_id.0;
        let target = Some(client_id.clone());
        self.audited(req, "admin/clients.deny", target, |admin| async move {
            let store = self.store()?;
            match store
                .deny(&client_id, Timestamp::now().unix_seconds())
                .await
            {
                Ok(true) => {
                    if let Some(policy) = &self.policy {
                        policy.deny(&client_id);
                    }
                    tracing::info!(client_id = %client_id, by = %admin.subject, "denied a client");
                    Ok(Denied::Denied)
                }
                Ok(false) => Err(ApiError::not_found("no such client")),
                Err(e) => Err(store_failed("the client store cannot be written", &e)),
            }
        })
        .await
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
        limit: Query<Option<RawLimit>>,
    ) -> Reply<Json<AuditList>, 400, 503> {
        let filters = AuditFilters {
            since,
            until,
            subject,
            client_id,
            tool,
            outcome,
        };
        self.audited(req, "admin/audit.list", None, |_| async move {
            let limit = page_limit(limit.0.as_ref(), 100, 1000)?;
            let query = filters.query(cursor.0.as_deref(), limit)?;
            let page = self.log()?.query(&query).await?;
            Ok(Json(AuditList {
                events: page.events.into_iter().map(AuditEventView::from).collect(),
                next_cursor: page.next.map(|n| n.to_string()),
            }))
        })
        .await
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
    ) -> Reply<Export, 400, 503> {
        let filters = AuditFilters {
            since,
            until,
            subject,
            client_id,
            tool,
            outcome,
        };
        self.audited(req, "admin/audit.export", None, |_| async move {
            let mut query = filters.query(None, 1000)?;
            let log = self.log()?.clone();
            // Without `until` the export ends at the time of the request, so it cannot chase
            // rows written while it streams.
            query.until = query.until.or_else(|| Some(Timestamp::now()));
            // The first page is read before answering, so a store that cannot be read gets
            // 503, not a 200 with an error inside.
            let first = log.query(&query).await?;
            Ok(Export::Ok(Binary(poem::Body::from_bytes_stream(
                export_pages(log, query, first),
            ))))
        })
        .await
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
    ) -> Reply<Json<Stats>, 400, 503> {
        self.audited(req, "admin/stats", None, |_| async move {
            let since = parse_time("since", since.0.as_deref())?;
            let until = parse_time("until", until.0.as_deref())?.unwrap_or_else(Timestamp::now);
            let since = since.unwrap_or(until.saturating_sub(Duration::from_secs(86_400)));
            let rows = self.log()?.stats(since, until).await?;
            Ok(Json(Stats {
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
            }))
        })
        .await
    }

    /// Tool calls, errors and credits per subject, client, backend or tool between `since`
    /// (default: 24 hours ago) and `until` (default: now): who spends the credits.
    #[oai(path = "/usage", method = "get", operation_id = "usage")]
    async fn usage(
        &self,
        req: &Request,
        /// Window start (RFC 3339 or Unix seconds).
        since: Query<Option<String>>,
        /// Window end (RFC 3339 or Unix seconds).
        until: Query<Option<String>>,
        /// `subject` (the default), `client`, `provider` or `tool`.
        group_by: Query<Option<String>>,
    ) -> Reply<Json<Usage>, 400, 503> {
        self.audited(req, "admin/usage", None, |_| async move {
            let since = parse_time("since", since.0.as_deref())?;
            let until = parse_time("until", until.0.as_deref())?.unwrap_or_else(Timestamp::now);
            let since = since.unwrap_or(until.saturating_sub(Duration::from_secs(86_400)));
            let group = match group_by.0.as_deref() {
                None => UsageGroup::Subject,
                Some(name) => UsageGroup::from_name(name).ok_or_else(|| {
                    ApiError::bad_request(
                        "invalid_request",
                        format!("group_by must be one of: {}", UsageGroup::NAMES.join(", ")),
                    )
                })?,
            };
            let rows = self.log()?.usage(since, until, group).await?;
            Ok(Json(Usage {
                since: rfc3339(since),
                until: rfc3339(until),
                group_by: group.as_str().to_owned(),
                groups: rows
                    .into_iter()
                    .map(|r| UsageEntry {
                        group: r.group,
                        calls: r.calls,
                        errors: r.errors,
                        credits: r.credits,
                        cost_usd: r.cost_usd,
                    })
                    .collect(),
            }))
        })
        .await
    }
}

/// The export's body after its `first` page: later pages are read as the client reads. A
/// failure then aborts the response, so the client sees a truncated transfer, never a clean
/// end (and the store's text stays in the log).
fn export_pages(
    log: Arc<dyn AuditLog>,
    query: AuditQuery,
    first: crate::domain::audit::AuditPage,
) -> futures::stream::BoxStream<'static, std::io::Result<bytes::Bytes>> {
    futures::stream::unfold(Some((query, Some(first))), move |state| {
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
                    Some((Ok(bytes::Bytes::from(chunk)), next))
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot read the audit trail for an export");
                    Some((
                        Err(std::io::Error::other("the audit trail cannot be read")),
                        None,
                    ))
                }
            }
        }
    })
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_limits_are_parsed_inside_the_operation() {
        let raw = |text: &str| RawLimit(text.to_owned());
        assert_eq!(page_limit(None, 50, 500).ok(), Some(50), "the default");
        assert_eq!(page_limit(Some(&raw("500")), 50, 500).ok(), Some(500));
        for text in ["abc", "0", "501", "-1", "", "1e3"] {
            assert!(
                page_limit(Some(&raw(text)), 50, 500).is_err(),
                "{text:?} is a 400 once the caller is authenticated"
            );
        }
    }

    /// Properties over generated query parameters: whatever an admin sends, a parameter is
    /// read as documented or refused with `400 invalid_request`, and never panics.
    mod properties {
        use poem_openapi::param::Query;
        use proptest::prelude::*;

        use super::*;

        /// What a client may put in a query parameter, weighted towards what almost parses.
        fn parameter() -> impl Strategy<Value = String> {
            prop_oneof![
                "[0-9]{0,22}",
                "-?[0-9]{1,20}(\\.[0-9]{0,3})?",
                "[0-9TZtz:.+ -]{0,32}",
                (-100_000_000_000i64..400_000_000_000).prop_map(|s| {
                    chrono::DateTime::from_timestamp(s, 0)
                        .map_or_else(String::new, |t| t.to_rfc3339())
                }),
                prop::sample::select(Outcome::ALL.map(|o| o.as_str().to_owned()).to_vec()),
                any::<String>(),
            ]
        }

        fn refused_as_documented(error: &ApiError) -> Result<(), TestCaseError> {
            prop_assert_eq!((error.status(), error.code()), (400, "invalid_request"));
            Ok(())
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            #[test]
            fn a_limit_is_a_number_within_its_range_or_a_400(text in parameter(), max in 1u32..2000) {
                let wanted = text.parse::<u32>().ok().filter(|n| (1..=max).contains(n));
                match page_limit(Some(&RawLimit(text.clone())), 1, max) {
                    Ok(limit) => prop_assert_eq!(Some(limit), wanted),
                    Err(error) => {
                        prop_assert_eq!(wanted, None);
                        refused_as_documented(&error)?;
                    }
                }
            }

            #[test]
            fn audit_filters_are_read_as_documented_or_refused_with_400(
                since in prop::option::of(parameter()),
                until in prop::option::of(parameter()),
                outcome in prop::option::of(parameter()),
                cursor in prop::option::of(parameter()),
            ) {
                let filters = AuditFilters {
                    since: Query(since.clone()),
                    until: Query(until.clone()),
                    subject: Query(None),
                    client_id: Query(None),
                    tool: Query(None),
                    outcome: Query(outcome.clone()),
                };
                let time_ok = |t: &Option<String>| {
                    t.as_deref().filter(|t| !t.is_empty()).is_none_or(|t| parse_filter_time(t).is_some())
                };
                let readable = time_ok(&since)
                    && time_ok(&until)
                    && outcome.as_deref().is_none_or(|o| o.parse::<Outcome>().is_ok())
                    && cursor.as_deref().filter(|c| !c.is_empty()).is_none_or(|c| c.parse::<i64>().is_ok());
                match filters.query(cursor.as_deref(), 100) {
                    Ok(query) => {
                        prop_assert!(readable);
                        // Times read are times the answers can write back, to the millisecond.
                        for at in [query.since, query.until].into_iter().flatten() {
                            prop_assert_eq!(parse_filter_time(&rfc3339(at)), Some(at));
                        }
                    }
                    Err(error) => {
                        prop_assert!(!readable);
                        refused_as_documented(&error)?;
                    }
                }
            }

            #[test]
            fn a_client_cursor_reads_back_what_a_page_wrote(
                created_at in any::<i64>(),
                client_id in any::<String>(),
                junk in parameter(),
            ) {
                let cursor = ClientCursor { created_at, client_id };
                prop_assert_eq!(ClientCursor::parse(&cursor.to_string()), Some(cursor));
                let _ = ClientCursor::parse(&junk);
            }
        }
    }
}
