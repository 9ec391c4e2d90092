//! The statements both databases run the same way. Placeholders are `$1`, `$2`, … (SQLite
//! accepts them too), and times are bound by the caller rather than read from the database
//! clock, so replicas and databases agree. What differs (transactions, locks) stays in the
//! adapters.

use sqlx::{Database, Encode, QueryBuilder, Type};

use super::rows::millis;
use crate::domain::{
    audit::{AuditEvent, AuditQuery},
    clients::{ClientCursor, ClientSource, RegisteredClient},
    issuer::{ClientRecord, CodeRecord, KeyRecord, RefreshRecord},
};

/// Spent codes and refresh tokens are kept this long past expiry, so a replay is recognised as
/// one; then they are deleted.
pub(super) const KEEP_EXPIRED_SECS: i64 = 86_400;

const EVENT_COLUMNS: &str = "id, occurred_at_ms, request_id, method, tool, outcome, http_status, \
    error_code, latency_us, subject, client_id, issuer, token_hash_prefix, source_addr, provider, \
    cache_hit, upstream_attempts, upstream_request_id, query_summary";

pub(super) const HOURLY_COUNTS: &str = "SELECT (occurred_at_ms / 3600000) * 3600 AS hour, tool, \
    outcome, COUNT(*) AS n FROM audit_events WHERE occurred_at_ms >= $1 AND occurred_at_ms < $2 \
    GROUP BY hour, tool, outcome ORDER BY hour, tool IS NOT NULL, tool, outcome";

pub(super) const PRUNE_EVENTS: &str = "DELETE FROM audit_events WHERE occurred_at_ms < $1";

const CLIENT_COLUMNS: &str = "SELECT client_id, client_name, redirect_uris, grant_types, \
    token_endpoint_auth_method, source, created_at, last_seen_at, denied_at FROM clients";

pub(super) const DENY_CLIENT: &str =
    "UPDATE clients SET denied_at = COALESCE(denied_at, $1) WHERE client_id = $2";

pub(super) const DENIED_CLIENTS: &str = "SELECT client_id FROM clients WHERE denied_at IS NOT NULL";

pub(super) const ROTATE_OUT_KEYS: &str =
    "UPDATE idp_keys SET rotated_at = $1 WHERE rotated_at IS NULL";

pub(super) const COUNT_SIGNING_KEYS: &str =
    "SELECT COUNT(*) FROM idp_keys WHERE rotated_at IS NULL AND retired_at IS NULL";

pub(super) const EXTEND_KEY: &str = "UPDATE idp_keys SET tokens_expire_at = \
    CASE WHEN tokens_expire_at < $1 THEN $1 ELSE tokens_expire_at END \
    WHERE kid = $2 AND retired_at IS NULL";

pub(super) const RETIRE_KEY: &str = "UPDATE idp_keys SET retired_at = $1, \
    rotated_at = COALESCE(rotated_at, $1) WHERE kid = $2 AND retired_at IS NULL";

pub(super) const SELECT_IDP_CLIENT: &str = "SELECT client_id, client_name, redirect_uris, \
    grant_types, token_endpoint_auth_method, secret_hash, created_at FROM idp_clients \
    WHERE client_id = $1";

pub(super) const PRUNE_CODES: &str = "DELETE FROM idp_codes WHERE expires_at < $1";

pub(super) const SELECT_CODE: &str = "SELECT code_hash, client_id, redirect_uri, code_challenge, \
    scope, resource, subject, expires_at, used_at IS NOT NULL AS spent FROM idp_codes \
    WHERE code_hash = $1";

/// Spends a code; the `used_at IS NULL` condition decides which of two racing callers wins.
pub(super) const SPEND_CODE: &str =
    "UPDATE idp_codes SET used_at = $1 WHERE code_hash = $2 AND used_at IS NULL";

pub(super) const SELECT_REFRESH: &str = "SELECT token_hash, family, client_id, subject, scope, \
    resource, expires_at, (used_at IS NOT NULL OR revoked_at IS NOT NULL) AS spent \
    FROM idp_refresh_tokens WHERE token_hash = $1";

/// Spends a refresh token; as with codes, the condition picks the one winner.
pub(super) const SPEND_REFRESH: &str = "UPDATE idp_refresh_tokens SET used_at = $1 \
    WHERE token_hash = $2 AND used_at IS NULL AND revoked_at IS NULL";

pub(super) const PRUNE_REFRESH: &str = "DELETE FROM idp_refresh_tokens WHERE expires_at < $1";

pub(super) const REVOKE_FAMILY: &str = "UPDATE idp_refresh_tokens SET revoked_at = $1 \
    WHERE family = $2 AND revoked_at IS NULL";

/// Most events in one `INSERT`: 18 values each stays far below every database's limit on
/// bound parameters.
pub(super) const EVENTS_PER_INSERT: usize = 500;

/// One `INSERT` of at most [`EVENTS_PER_INSERT`] events.
pub(super) fn insert_events<DB>(events: &[AuditEvent]) -> QueryBuilder<DB>
where
    DB: Database,
    DB::Arguments: Default,
    for<'t> i64: Encode<'t, DB> + Type<DB>,
    for<'t> String: Encode<'t, DB> + Type<DB>,
    for<'t> Option<String>: Encode<'t, DB> + Type<DB>,
    for<'t> Option<i64>: Encode<'t, DB> + Type<DB>,
    for<'t> Option<bool>: Encode<'t, DB> + Type<DB>,
{
    let mut builder = QueryBuilder::new(
        "INSERT INTO audit_events (occurred_at_ms, request_id, method, tool, outcome, \
         http_status, error_code, latency_us, subject, client_id, issuer, token_hash_prefix, \
         source_addr, provider, cache_hit, upstream_attempts, upstream_request_id, \
         query_summary) ",
    );
    builder.push_values(events, |mut row, e| {
        row.push_bind(millis(e.occurred_at))
            .push_bind(text(&e.request_id))
            .push_bind(opt_text(&e.method))
            .push_bind(opt_text(&e.tool))
            .push_bind(e.outcome.as_str().to_owned())
            .push_bind(i64::from(e.http_status))
            .push_bind(opt_text(&e.error_code))
            .push_bind(i64::try_from(e.latency.as_micros()).unwrap_or(i64::MAX))
            .push_bind(opt_text(&e.subject))
            .push_bind(opt_text(&e.client_id))
            .push_bind(opt_text(&e.issuer))
            .push_bind(opt_text(&e.token_hash_prefix))
            .push_bind(opt_text(&e.source_addr))
            .push_bind(opt_text(&e.provider))
            .push_bind(e.cache_hit)
            .push_bind(e.upstream_attempts.map(i64::from))
            .push_bind(opt_text(&e.upstream_request_id))
            .push_bind(opt_text(&e.query_summary));
    });
    builder
}

/// The events `query` selects, oldest first, one more than its limit (to know if more follow).
pub(super) fn select_events<DB>(query: &AuditQuery) -> QueryBuilder<DB>
where
    DB: Database,
    DB::Arguments: Default,
    for<'t> i64: Encode<'t, DB> + Type<DB>,
    for<'t> String: Encode<'t, DB> + Type<DB>,
    for<'t> Option<String>: Encode<'t, DB> + Type<DB>,
    for<'t> Option<i64>: Encode<'t, DB> + Type<DB>,
{
    let mut builder = QueryBuilder::new(format!(
        "SELECT {EVENT_COLUMNS} FROM audit_events WHERE 1 = 1"
    ));
    if let Some(after) = query.after {
        builder.push(" AND id > ").push_bind(after);
    }
    if let Some(since) = query.since {
        builder
            .push(" AND occurred_at_ms >= ")
            .push_bind(millis(since));
    }
    if let Some(until) = query.until {
        builder
            .push(" AND occurred_at_ms < ")
            .push_bind(millis(until));
    }
    for (column, value) in [
        ("subject", &query.subject),
        ("client_id", &query.client_id),
        ("tool", &query.tool),
        ("outcome", &query.outcome),
    ] {
        if let Some(value) = value {
            builder
                .push(format!(" AND {column} = "))
                .push_bind(text(value));
        }
    }
    builder
        .push(" ORDER BY id LIMIT ")
        .push_bind(i64::from(query.limit.max(1)) + 1);
    builder
}

/// One client by id.
pub(super) fn select_client<DB>(client_id: &str) -> QueryBuilder<DB>
where
    DB: Database,
    DB::Arguments: Default,
    for<'t> String: Encode<'t, DB> + Type<DB>,
    for<'t> Option<String>: Encode<'t, DB> + Type<DB>,
    for<'t> Option<i64>: Encode<'t, DB> + Type<DB>,
{
    let mut builder = QueryBuilder::new(CLIENT_COLUMNS);
    builder
        .push(" WHERE client_id = ")
        .push_bind(text(client_id));
    builder
}

/// A page of clients after `cursor`, keyset-ordered on (created_at, client_id) so it stays
/// stable while rows are added; one more than `limit`.
pub(super) fn select_clients<DB>(after: Option<&ClientCursor>, limit: u32) -> QueryBuilder<DB>
where
    DB: Database,
    DB::Arguments: Default,
    for<'t> i64: Encode<'t, DB> + Type<DB>,
    for<'t> String: Encode<'t, DB> + Type<DB>,
    for<'t> Option<String>: Encode<'t, DB> + Type<DB>,
    for<'t> Option<i64>: Encode<'t, DB> + Type<DB>,
{
    let mut builder = QueryBuilder::new(CLIENT_COLUMNS);
    if let Some(after) = after {
        builder
            .push(" WHERE (created_at, client_id) > (")
            .push_bind(after.created_at)
            .push(", ")
            .push_bind(text(&after.client_id))
            .push(")");
    }
    builder
        .push(" ORDER BY created_at, client_id LIMIT ")
        .push_bind(i64::from(limit) + 1);
    builder
}

/// Sets `last_seen_at` of the named clients.
pub(super) fn touch_clients<DB>(client_ids: &[String], at: i64) -> QueryBuilder<DB>
where
    DB: Database,
    DB::Arguments: Default,
    for<'t> i64: Encode<'t, DB> + Type<DB>,
    for<'t> String: Encode<'t, DB> + Type<DB>,
    for<'t> Option<String>: Encode<'t, DB> + Type<DB>,
    for<'t> Option<i64>: Encode<'t, DB> + Type<DB>,
{
    let mut builder = QueryBuilder::new("UPDATE clients SET last_seen_at = ");
    builder.push_bind(at).push(" WHERE client_id IN (");
    let mut ids = builder.separated(", ");
    for id in client_ids {
        ids.push_bind(text(id));
    }
    ids.push_unseparated(")");
    builder
}

/// Remembers a registered client. A static client is registered again by every user: the
/// first row's times are kept.
pub(super) fn record_client<DB>(
    client: &RegisteredClient,
    source: ClientSource,
) -> anyhow::Result<QueryBuilder<DB>>
where
    DB: Database,
    DB::Arguments: Default,
    for<'t> i64: Encode<'t, DB> + Type<DB>,
    for<'t> String: Encode<'t, DB> + Type<DB>,
    for<'t> Option<String>: Encode<'t, DB> + Type<DB>,
    for<'t> Option<i64>: Encode<'t, DB> + Type<DB>,
{
    let metadata = &client.metadata;
    let redirect_uris = serde_json::to_string(&metadata.redirect_uris)?;
    let grant_types = serde_json::to_string(&metadata.grant_types)?;
    let created_at = client
        .created_at
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let mut builder = QueryBuilder::new(
        "INSERT INTO clients (client_id, client_name, redirect_uris, grant_types, \
         token_endpoint_auth_method, source, created_at) ",
    );
    builder.push_values([client], |mut row, client| {
        row.push_bind(text(&client.client_id))
            .push_bind(opt_text(&metadata.client_name))
            .push_bind(redirect_uris.clone())
            .push_bind(grant_types.clone())
            .push_bind(text(&metadata.token_endpoint_auth_method))
            .push_bind(source.as_str().to_owned())
            .push_bind(created_at);
    });
    builder.push(
        " ON CONFLICT (client_id) DO UPDATE SET client_name = excluded.client_name, \
         redirect_uris = excluded.redirect_uris, grant_types = excluded.grant_types, \
         token_endpoint_auth_method = excluded.token_endpoint_auth_method",
    );
    Ok(builder)
}

/// Stores a signing key.
pub(super) fn insert_key<DB>(key: &KeyRecord) -> QueryBuilder<DB>
where
    DB: Database,
    DB::Arguments: Default,
    for<'t> i64: Encode<'t, DB> + Type<DB>,
    for<'t> String: Encode<'t, DB> + Type<DB>,
    for<'t> Option<String>: Encode<'t, DB> + Type<DB>,
    for<'t> Option<i64>: Encode<'t, DB> + Type<DB>,
{
    let mut builder = QueryBuilder::new(
        "INSERT INTO idp_keys (kid, private_pem, created_at, \
         rotated_at, tokens_expire_at, retired_at) ",
    );
    builder.push_values([key], |mut row, key| {
        row.push_bind(key.kid.clone())
            .push_bind(key.private_pem.clone())
            .push_bind(key.created_at)
            .push_bind(key.rotated_at)
            .push_bind(key.tokens_expire_at)
            .push_bind(key.retired_at);
    });
    builder
}

/// Stores an embedded-server client.
pub(super) fn insert_idp_client<DB>(client: &ClientRecord) -> anyhow::Result<QueryBuilder<DB>>
where
    DB: Database,
    DB::Arguments: Default,
    for<'t> i64: Encode<'t, DB> + Type<DB>,
    for<'t> String: Encode<'t, DB> + Type<DB>,
    for<'t> Option<String>: Encode<'t, DB> + Type<DB>,
    for<'t> Option<i64>: Encode<'t, DB> + Type<DB>,
{
    let redirect_uris = serde_json::to_string(&client.redirect_uris)?;
    let grant_types = serde_json::to_string(&client.grant_types)?;
    let mut builder = QueryBuilder::new(
        "INSERT INTO idp_clients (client_id, client_name, \
         redirect_uris, grant_types, token_endpoint_auth_method, secret_hash, created_at) ",
    );
    builder.push_values([client], |mut row, client| {
        row.push_bind(text(&client.client_id))
            .push_bind(opt_text(&client.client_name))
            .push_bind(redirect_uris.clone())
            .push_bind(grant_types.clone())
            .push_bind(text(&client.token_endpoint_auth_method))
            .push_bind(client.secret_hash.clone())
            .push_bind(client.created_at);
    });
    Ok(builder)
}

/// Stores an authorization code.
pub(super) fn insert_code<DB>(code: &CodeRecord) -> QueryBuilder<DB>
where
    DB: Database,
    DB::Arguments: Default,
    for<'t> i64: Encode<'t, DB> + Type<DB>,
    for<'t> String: Encode<'t, DB> + Type<DB>,
    for<'t> Option<String>: Encode<'t, DB> + Type<DB>,
    for<'t> Option<i64>: Encode<'t, DB> + Type<DB>,
{
    let mut builder = QueryBuilder::new(
        "INSERT INTO idp_codes (code_hash, client_id, \
         redirect_uri, code_challenge, scope, resource, subject, expires_at) ",
    );
    builder.push_values([code], |mut row, code| {
        row.push_bind(code.code_hash.clone())
            .push_bind(code.client_id.clone())
            .push_bind(code.redirect_uri.clone())
            .push_bind(code.code_challenge.clone())
            .push_bind(code.scope.clone())
            .push_bind(code.resource.clone())
            .push_bind(code.subject.clone())
            .push_bind(code.expires_at);
    });
    builder
}

/// Stores a refresh token.
pub(super) fn insert_refresh<DB>(token: &RefreshRecord) -> QueryBuilder<DB>
where
    DB: Database,
    DB::Arguments: Default,
    for<'t> i64: Encode<'t, DB> + Type<DB>,
    for<'t> String: Encode<'t, DB> + Type<DB>,
    for<'t> Option<String>: Encode<'t, DB> + Type<DB>,
    for<'t> Option<i64>: Encode<'t, DB> + Type<DB>,
{
    let mut builder = QueryBuilder::new(
        "INSERT INTO idp_refresh_tokens (token_hash, family, \
         client_id, subject, scope, resource, expires_at) ",
    );
    builder.push_values([token], |mut row, token| {
        row.push_bind(token.token_hash.clone())
            .push_bind(token.family.clone())
            .push_bind(token.client_id.clone())
            .push_bind(token.subject.clone())
            .push_bind(token.scope.clone())
            .push_bind(token.resource.clone())
            .push_bind(token.expires_at);
    });
    builder
}

/// Text as stored: PostgreSQL refuses the NUL character (SQLite keeps it), so it becomes
/// U+FFFD on both. A value from a request can hold one; it must not fail the write (an audit
/// batch would be retried forever) or a lookup (it simply matches nothing).
pub(super) fn text(value: &str) -> String {
    if value.contains('\0') {
        value.replace('\0', "\u{FFFD}")
    } else {
        value.to_owned()
    }
}

fn opt_text(value: &Option<String>) -> Option<String> {
    value.as_deref().map(text)
}
